"""A long fuzz run of the protocol layer (the test suite runs 100k cases; this runs more).

    .venv/bin/python bench/protocol_fuzz.py [--cases 1000000] [--seed N]

Garbage and mutated HTTP/1.1 and HTTP/2 conversations, cut into random chunks with lost and
overlapping ranges, through ProtocolTracker. Stops at the first escaped exception or parser
error and prints the case's seed; otherwise prints the counts and the rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

from fuzzing import fuzz  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args()
    done = 0
    start = time.perf_counter()
    total_bytes = 0
    while done < args.cases:
        n = min(args.batch, args.cases - done)
        stats = fuzz(n, seed=args.seed + done)
        done += stats["cases"]
        total_bytes += stats["bytes"]
        rate = done / (time.perf_counter() - start)
        print(f"{done} cases, {total_bytes / 1e6:.0f} MB, {rate:.0f} cases/s, no escape (seed {args.seed})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
