"""Protocol-layer throughput: HTTP/1.1 chunked SSE and HTTP/2 multiplexed SSE streams.

    .venv/bin/python bench/protocol_throughput.py [--exchanges N] [--events N] [--batch N]

Prints MB/s of captured bytes through ProtocolTracker (reassembly, HTTP framing, SSE framing)
and the ratio of that time to bare orjson.loads of the same JSON payloads, measured in one
run. The ratio is what matters: it says how much the protocol layer costs next to the JSON
decoding that any consumer of these streams must do anyway. Two ways in: one capture event at
a time through feed() (public events, one per body piece and stream item), and batches through
feed_raw(), as the pipeline calls it (body output in bulk).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

import orjson  # noqa: E402
from wire import H2Pair, h1_request, to_chunks  # noqa: E402

from llmspy_tui.capture.events import ChunkEvent, ConnClosed  # noqa: E402
from llmspy_tui.protocol import ProtocolTracker  # noqa: E402


def chat_request(i: int) -> bytes:
    msgs = [{"role": "user" if k % 2 == 0 else "assistant",
             "content": f"turn {k} of conversation {i}: " + "context words " * 20} for k in range(6)]
    return json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": msgs}).encode()


def sse_payloads(i: int, n: int) -> list[bytes]:
    base = {"id": f"chatcmpl-{i:08d}", "object": "chat.completion.chunk", "created": 1763769600,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench"}
    return [json.dumps({**base, "choices": [{"index": 0, "delta": {"content": f" token{k}"},
                                             "logprobs": None, "finish_reason": None}]}).encode()
            for k in range(n)]


def http1_workload(exchanges: int, events: int):
    """One keep-alive connection; every SSE event arrives in its own chunk, as SSL_read gives it."""
    chunks, payloads = [], []
    off = {"send": 0, "recv": 0}
    ts = 0

    def add(d: str, data: bytes) -> None:
        nonlocal ts
        ts += 1
        chunks.append(ChunkEvent(ts, 100, 100, 1, d, 0, off[d], len(data), data))
        off[d] += len(data)

    for i in range(exchanges):
        body = chat_request(i)
        payloads.append(body)
        add("send", h1_request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"}))
        add("recv", b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in sse_payloads(i, events):
            payloads.append(p)
            ev = b"data: " + p + b"\n\n"
            add("recv", b"%x\r\n%s\r\n" % (len(ev), ev))
        add("recv", b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n"))
    chunks.append(ConnClosed(ts + 1, 100, 1))
    return chunks, payloads


def http2_workload(exchanges: int, events: int, concurrent: int = 20):
    """One connection; `concurrent` streams at a time, their DATA frames interleaved."""
    p = H2Pair()
    payloads = []
    sid = 1
    for batch in range(0, exchanges, concurrent):
        sids = []
        for i in range(batch, min(exchanges, batch + concurrent)):
            body = chat_request(i)
            payloads.append(body)
            p.request(sid, "POST", "/v1/chat/completions", body, extra=[("content-type", "application/json")])
            p.respond(sid, 200, [("content-type", "text/event-stream")])
            sids.append((sid, sse_payloads(i, events)))
            sid += 2
        for k in range(events):
            for s, ps in sids:
                payloads.append(ps[k])
                p.server.send_data(s, b"data: " + ps[k] + b"\n\n")
            p._pump()
        for s, _ in sids:
            p.data(s, b"data: [DONE]\n\n", end=True)
    chunks = to_chunks(p.conv, pid=200, ssl=2)
    chunks.append(ConnClosed(chunks[-1].ts + 1, 200, 2))
    return chunks, payloads


def time_parse(chunks) -> tuple[float, int]:
    gc.collect()
    t = ProtocolTracker()
    n = 0
    start = time.perf_counter()
    for ev in chunks:
        n += len(t.feed(ev))
    n += len(t.finish(0))
    elapsed = time.perf_counter() - start
    assert t.internal_errors == 0
    return elapsed, n


def time_parse_batched(chunks, batch: int = 64) -> tuple[float, int]:
    batches = [chunks[i:i + batch] for i in range(0, len(chunks), batch)]
    gc.collect()
    t = ProtocolTracker()
    n = 0
    start = time.perf_counter()
    for b in batches:
        n += len(t.feed_raw(b))
    n += len(t.finish_raw(0))
    elapsed = time.perf_counter() - start
    assert t.internal_errors == 0
    return elapsed, n


def time_orjson(payloads) -> float:
    gc.collect()
    loads = orjson.loads
    start = time.perf_counter()
    for p in payloads:
        loads(p)
    return time.perf_counter() - start


def best_of(fn, arg, runs: int):
    return min((fn(arg) for _ in range(runs)), key=lambda r: r[0] if isinstance(r, tuple) else r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exchanges", type=int, default=200)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="capture events per feed_raw() call")
    args = ap.parse_args()
    print(f"{args.exchanges} exchanges x {args.events} SSE events each; best of {args.runs} runs\n")
    print(f"{'workload':<26}{'way in':<22}{'MB':>6}{'events':>9}{'parse s':>9}{'MB/s':>8}{'orjson s':>10}"
          f"{'ratio':>7}")
    for name, build in (("HTTP/1.1 chunked SSE", http1_workload), ("HTTP/2 20 streams, SSE", http2_workload)):
        chunks, payloads = build(args.exchanges, args.events)
        mb = sum(len(c.data) for c in chunks if type(c) is ChunkEvent) / 1e6
        json_s = best_of(time_orjson, payloads, args.runs)
        for way, fn in (("feed(), per event", time_parse),
                        (f"feed_raw(), {args.batch}/batch", lambda c: time_parse_batched(c, args.batch))):
            parse_s, n_events = best_of(fn, chunks, args.runs)
            print(f"{name:<26}{way:<22}{mb:>6.1f}{n_events:>9}{parse_s:>9.3f}{mb / parse_s:>8.1f}{json_s:>10.3f}"
                  f"{parse_s / json_s:>7.2f}")
    print("\nratio = protocol-layer time / orjson.loads time for the same request bodies and SSE payloads;"
          "\nevents: protocol events out (feed_raw() hands on body output in bulk, so fewer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
