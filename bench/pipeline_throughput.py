"""Whole-pipeline throughput: capture events -> protocol -> providers -> store.

    .venv/bin/python bench/pipeline_throughput.py [--exchanges N] [--events N] [--runs N]

The same workloads as protocol_throughput.py (OpenAI-style SSE chat streams over HTTP/1.1, and
over HTTP/2 with 20 interleaved streams), through the whole Pipeline in its two modes: headless
(finished exchanges only) and live (a progress event per batch for each streaming call, with
running token estimates and cost, as the UI uses it). Prints MB/s and the ratio of that time to
bare orjson.loads of the same payloads, measured in one run, plus what the protocol layer alone
takes, so the cost of the LLM layers shows by difference.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol_throughput import best_of, http1_workload, http2_workload, time_orjson, time_parse  # noqa: E402

from llmspy_tui.capture.events import ChunkEvent  # noqa: E402
from llmspy_tui.pipeline import Pipeline  # noqa: E402
from llmspy_tui.providers import estimate  # noqa: E402


def time_pipeline(chunks, live: bool, batch: int = 64) -> tuple[float, int]:
    gc.collect()
    pl = Pipeline(live=live)
    n = 0
    start = time.perf_counter()
    for i in range(0, len(chunks), batch):
        n += len(pl.feed(chunks[i:i + batch]))
    n += len(pl.finish())
    elapsed = time.perf_counter() - start
    assert pl.internal_errors == 0
    return elapsed, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exchanges", type=int, default=200)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    estimate.count("warm up the tokenizer", "gpt-4o-mini")  # loading cl100k is not throughput
    print(f"{args.exchanges} exchanges x {args.events} SSE events each; batches of 64 capture events; "
          f"best of {args.runs} runs\n")
    print(f"{'workload':<26}{'layers':<22}{'MB':>7}{'calls':>7}{'s':>8}{'MB/s':>8}{'x orjson':>10}")
    for name, build in (("HTTP/1.1 chunked SSE", http1_workload), ("HTTP/2 20 streams, SSE", http2_workload)):
        chunks, payloads = build(args.exchanges, args.events)
        mb = sum(len(c.data) for c in chunks if type(c) is ChunkEvent) / 1e6
        json_s = best_of(time_orjson, payloads, args.runs)
        rows = [("protocol only", best_of(time_parse, chunks, args.runs)[0], "-"),
                ("pipeline, headless", *best_of(lambda c: time_pipeline(c, False), chunks, args.runs)),
                ("pipeline, live (UI)", *best_of(lambda c: time_pipeline(c, True), chunks, args.runs))]
        for layers, secs, calls in rows:
            print(f"{name:<26}{layers:<22}{mb:>7.1f}{calls!s:>7}{secs:>8.3f}{mb / secs:>8.1f}{secs / json_s:>10.2f}")
    print("\nx orjson = time / orjson.loads time for the same request bodies and SSE payloads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
