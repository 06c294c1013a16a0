"""Long fuzz runs of every parser and provider (the test suite runs 100k cases of each; this runs more).

    .venv/bin/python bench/fuzz.py [--cases 1000000] [--only protocol|provider] [--seed N]

protocol: garbage and mutated HTTP/1.1 and HTTP/2 conversations, cut into random chunks with
lost and overlapping ranges, through ProtocolTracker (tests/support/fuzzing.py).
provider: real LLM calls of every API with wrong JSON values, broken bytes and streams, odd
hosts, paths and endings, as protocol events through the provider layer, the store, the JSON /
JSONL / Markdown exports and redaction; a few in a hundred damaged recordings through the
reader and the pipeline (tests/support/provider_fuzzing.py).

Each runs `--cases` cases, in batches of `--batch` (a batch's seed is the run's seed plus the
cases done before it), printing counts and the rate after each batch. The first escaped
exception or internal error stops the run with the failing case's seed; exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support"), str(ROOT / "tests")]


def fuzzers() -> dict:
    """name -> (fuzz(cases, seed) -> stats, what to report of the stats)."""
    import fuzzing
    import provider_fuzzing

    def protocol_line(s: dict) -> str:
        return f"{s['bytes'] / 1e6:.0f} MB, {s['events']} events"

    def provider_line(s: dict) -> str:
        return f"{s['exchanges']} exchanges ({s['llm']} LLM calls), {s['bytes'] / 1e6:.0f} MB rendered"

    return {"protocol": (fuzzing.fuzz, protocol_line), "provider": (provider_fuzzing.fuzz, provider_line)}


def run(name: str, cases: int, seed: int, batch: int) -> bool:
    """One fuzzer for `cases` cases; False at its first failure (printed with the case's seed)."""
    fuzz, line = fuzzers()[name]
    done = 0
    total: dict = {}
    start = time.perf_counter()
    while done < cases:
        n = min(batch, cases - done)
        try:
            stats = fuzz(n, seed=seed + done)
        except AssertionError as e:
            print(f"{name}: FAILED after {done} cases (batch seed {seed + done}): {e}", flush=True)
            return False
        done += stats["cases"]
        for k, v in stats.items():
            total[k] = total.get(k, 0) + v
        took = time.perf_counter() - start
        print(f"{name}: {done} cases, {line(total)}, {done / took:.0f} cases/s, {took:.0f} s, no escape "
              f"(seed {seed})", flush=True)
    return True


def main(argv=None, only: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1_000_000, help="cases of each fuzzer")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--only", choices=("protocol", "provider"), default=only)
    args = ap.parse_args(argv)
    names = [args.only] if args.only else ["protocol", "provider"]
    ok = all([run(name, args.cases, args.seed, args.batch) for name in names])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
