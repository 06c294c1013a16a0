"""Pipeline throughput on a recording of real clients: protocol + providers + store.

    .venv/bin/python bench/pipeline.py [--runs 3] [--batch 256] [--rerecord [--monitor-tree DIR]]
                                       [--recording FILE]

Replays bench/.cache/mix-10k.llmspy (made by bench/record_mix.py on first use, or with
--rerecord; recording needs root): over 10,000 LLM calls that the official openai and anthropic
SDKs, curl and Node's fetch made over HTTP/1.1 and HTTP/2, streamed and not, as captured by the
live monitor. The capture events are loaded into memory first; what is timed is feeding them,
in batches, through llmspy_tui.pipeline.Pipeline and its finish(), best of N runs, with a
gc.collect() before each, in both of its modes: headless (finished exchanges only, as
`--headless` prints them) and live (a progress event per batch for every call still streaming,
with running token estimates and cost, as the full-screen UI uses it).

The yardstick is bare orjson.loads over the same JSON the pipeline has to understand: every
request body, every response body that is not streamed, every SSE `data:` payload of the
streamed ones (the protocol layer's own output, decompressed, collected before timing). Any
consumer of this traffic must at least decode that JSON; the figure is
    orjson seconds / pipeline seconds   (target >= 0.3: at most 3.3x the bare decoding time).
The protocol layer alone is timed too, so the cost of the LLM layers shows by difference.

Checks, so a fast figure cannot come from work not done: the pipeline must find exactly the
number of exchanges the clients made (the recording says how many), every one an LLM call,
complete, with no internal error.

Ends with one line: BENCH-RESULT {json}.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import orjson  # noqa: E402

from llmspy_tui.capture.events import ChunkEvent  # noqa: E402
from llmspy_tui.capture.recordfile import RecordingReader  # noqa: E402
from llmspy_tui.pipeline import Pipeline  # noqa: E402
from llmspy_tui.protocol import ProtocolTracker  # noqa: E402
from llmspy_tui.protocol import events as pe  # noqa: E402
from llmspy_tui.providers import estimate  # noqa: E402

TARGET = 0.3


def load(path: Path) -> tuple[list, dict]:
    """Every capture event of the recording, in order, and the note record_mix.py left in it."""
    reader = RecordingReader(str(path))
    events = list(reader)
    if reader.info.problem or not reader.info.complete:
        raise SystemExit(f"bench/pipeline.py: {path}: {reader.info.problem or 'no end marker'}; "
                         "record it again with --rerecord")
    return events, reader.info.footer.get("mix") or {}


def json_bodies(events: list) -> tuple[list, Counter]:
    """The JSON documents in the traffic, as the protocol layer delivers them (bodies after
    Content-Encoding is undone, SSE data as text), in the order they complete: request bodies,
    response bodies not streamed, SSE `data:` payloads and streamed-JSON items. Only what parses
    is kept ("[DONE]" is not JSON). Untimed: this only builds the baseline's input."""
    tracker = ProtocolTracker()
    out: list = []
    kinds: Counter = Counter()
    bodies: dict[tuple, list[bytes]] = defaultdict(list)
    streamed: set[tuple] = set()

    def keep(doc, kind: str) -> None:
        try:
            orjson.loads(doc)
        except orjson.JSONDecodeError:
            kinds[f"{kind} (not JSON, left out)"] += 1
            return
        out.append(doc)
        kinds[kind] += 1

    def handle(evs: list) -> None:
        for e in evs:
            t = type(e)
            if t is pe.BodyData:
                bodies[(e.conn, e.stream, e.side)].append(e.data)
            elif t is pe.SseEvent:
                streamed.add((e.conn, e.stream, e.side))
                keep(e.data, "SSE data payloads")
            elif t is pe.JsonItem:
                streamed.add((e.conn, e.stream, e.side))
                keep(e.text, "streamed JSON items")
            elif t is pe.MessageEnd:
                key = (e.conn, e.stream, e.side)
                body = b"".join(bodies.pop(key, ()))
                if key in streamed:
                    streamed.discard(key)
                elif body:
                    keep(body, f"{e.side} bodies")

    for ev in events:
        handle(tracker.feed(ev))
    handle(tracker.finish(0))
    return out, kinds


def time_orjson(docs: list) -> float:
    gc.collect()
    loads = orjson.loads
    start = time.perf_counter()
    for d in docs:
        loads(d)
    return time.perf_counter() - start


def time_protocol(events: list, batch: int) -> tuple[float, int]:
    """The protocol layer as the pipeline drives it: feed_raw() in batches (bodies as one
    BodyFlush per body and batch, not one event per piece)."""
    gc.collect()
    t = ProtocolTracker()
    n = 0
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        n += len(t.feed_raw(events[i : i + batch]))
    n += len(t.finish_raw(0))
    elapsed = time.perf_counter() - start
    assert t.internal_errors == 0, f"protocol layer: {t.internal_errors} internal errors"
    return elapsed, n


def time_pipeline(events: list, live: bool, batch: int) -> tuple[float, list]:
    """One run: (seconds, the finished exchange views). Batches are sliced before timing."""
    batches = [events[i:i + batch] for i in range(0, len(events), batch)]
    gc.collect()
    pl = Pipeline(live=live)
    views: list = []
    start = time.perf_counter()
    for b in batches:
        views += pl.feed(b)
    views += pl.finish()
    elapsed = time.perf_counter() - start
    assert pl.internal_errors == 0, f"pipeline: {pl.internal_errors} internal errors"
    return elapsed, views


def check(views: list, expected: int, mode: str) -> list[str]:
    """What is wrong with a run's result, if anything."""
    problems = []
    if len(views) != expected:
        problems.append(f"{mode}: {len(views)} exchanges found, the clients made {expected}")
    not_llm = sum(1 for v in views if not v.exchange.is_llm)
    incomplete = [v.exchange for v in views if not v.exchange.complete]
    if not_llm:
        problems.append(f"{mode}: {not_llm} exchanges not recognised as LLM calls")
    if incomplete:
        x = incomplete[0]
        problems.append(f"{mode}: {len(incomplete)} exchanges incomplete, e.g. {x.id} {x.path}: {x.problem}")
    return problems


def best(runs: list[tuple[float, list]]) -> tuple[float, list]:
    return min(runs, key=lambda r: r[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recording", type=Path, help="a recording to replay (default: the cached mix)")
    ap.add_argument("--rerecord", action="store_true", help="record the mix again first (root)")
    ap.add_argument("--runs", type=int, default=3, help="best of this many runs per mode")
    ap.add_argument("--batch", type=int, default=256, help="capture events per Pipeline.feed() call")
    ap.add_argument("--monitor-tree", type=Path, metavar="DIR",
                    help="when recording: run the monitor from this checkout (see record_mix.py)")
    args = ap.parse_args()

    path = args.recording
    if path is None:
        import record_mix

        path = record_mix.DEFAULT_OUT
        if args.rerecord or not path.exists():
            print(f"recording {path} (needs root; a few minutes) ...", flush=True)
            record_mix.record(path, monitor_tree=args.monitor_tree)
    elif args.rerecord:
        raise SystemExit("bench/pipeline.py: --rerecord only applies to the cached mix")

    t0 = time.perf_counter()
    events, mix = load(path)
    load_s = time.perf_counter() - t0
    chunks = [e for e in events if type(e) is ChunkEvent]
    mb = sum(len(c.data) for c in chunks) / 1e6
    expected = mix.get("exchanges")
    docs, kinds = json_bodies(events)
    json_mb = sum(len(d) for d in docs) / 1e6
    estimate.count("warm up the tokenizer", "gpt-4o-mini")  # loading the encoder is not throughput

    print(f"recording: {path} ({path.stat().st_size / 1e6:.1f} MB on disk; loaded in {load_s:.1f} s)")
    if mix:
        loss = mix.get("loss", {})
        print(f"  recorded by record_mix.py from {mix.get('clients')} client processes in "
              f"{mix.get('clients_seconds')} s: " + ", ".join(f"{k} {v}" for k, v in mix.get("by_kind", {}).items()))
        print("  capture loss counters: " + ", ".join(f"{k} {v}" for k, v in loss.items()))
    print(f"  {len(events):,} capture events, {len(chunks):,} chunks, {mb:.1f} MB of plaintext")
    print(f"  JSON for the baseline: {len(docs):,} documents, {json_mb:.1f} MB: "
          + ", ".join(f"{n:,} {k}" for k, n in kinds.items()))
    print(f"  batches of {args.batch} events; best of {args.runs} runs\n")

    json_s = min(time_orjson(docs) for _ in range(args.runs))
    proto_s, _ = best([time_protocol(events, args.batch) for _ in range(args.runs)])
    headless_s, headless_views = best([time_pipeline(events, False, args.batch) for _ in range(args.runs)])
    live_s, live_views = best([time_pipeline(events, True, args.batch) for _ in range(args.runs)])
    n = len(headless_views)

    problems = []
    if expected is None:
        problems.append("the recording does not say how many exchanges it holds (not made by record_mix.py?)")
        expected = n
    problems += check(headless_views, expected, "headless") + check(live_views, expected, "live")
    versions = Counter(v.exchange.http_version for v in headless_views)
    providers = Counter(f"{v.exchange.provider}/{v.exchange.api}" for v in headless_views)
    streamed = sum(1 for v in headless_views if v.exchange.request and v.exchange.request.stream)

    print(f"{'layers':<30}{'s':>8}{'exchanges/s':>13}{'MB/s':>8}{'orjson/this':>13}")
    print(f"{'orjson.loads, same JSON':<30}{json_s:>8.3f}{'':>13}{json_mb / json_s:>8.1f}{'1.00':>13}")
    for name, secs in (("protocol only", proto_s), ("pipeline, headless", headless_s),
                       ("pipeline, live (UI)", live_s)):
        print(f"{name:<30}{secs:>8.3f}{n / secs:>13,.0f}{mb / secs:>8.1f}{json_s / secs:>13.2f}")
    print(f"\n{n:,} exchanges: {versions.get('1.1', 0):,} over HTTP/1.1, {versions.get('2', 0):,} over HTTP/2; "
          f"{streamed:,} streamed; " + ", ".join(f"{k} {v:,}" for k, v in providers.most_common()))
    print("MB/s counts captured plaintext bytes (requests and responses as on the wire, TLS removed); "
          "orjson MB/s counts the JSON it decoded")
    for p in problems:
        print(f"PROBLEM: {p}")

    ratio = json_s / headless_s
    met = ratio >= TARGET and not problems
    summary = (f"{n:,} exchanges, {mb:.0f} MB: {n / headless_s:,.0f} exchanges/s, {mb / headless_s:.1f} MB/s "
               f"headless ({n / live_s:,.0f}/s live); orjson {json_s:.2f} s vs pipeline {headless_s:.2f} s "
               f"(live {live_s:.2f} s)")
    print(f"\norjson/pipeline time ratio: {ratio:.2f} headless, {json_s / live_s:.2f} live "
          f"(target >= {TARGET}): {'met' if met else 'NOT met'}")
    print("BENCH-RESULT " + json.dumps({
        "bench": "pipeline", "figure": "orjson/pipeline time ratio (headless)", "value": round(ratio, 3),
        "target": f">= {TARGET}", "met": met, "summary": summary}))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
