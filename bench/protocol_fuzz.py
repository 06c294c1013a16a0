"""A long fuzz run of the protocol layer alone: bench/fuzz.py --only protocol.

    .venv/bin/python bench/protocol_fuzz.py [--cases 1000000] [--seed N]

Garbage and mutated HTTP/1.1 and HTTP/2 conversations, cut into random chunks with lost and
overlapping ranges, through ProtocolTracker. Stops at the first escaped exception or parser
error and prints the case's seed; otherwise prints the counts and the rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(only="protocol"))
