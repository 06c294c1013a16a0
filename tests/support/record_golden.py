"""Record the golden streams in tests/golden/ from real clients (run as root).

    .venv/bin/python tests/support/record_golden.py

For each client in scenarios.NAMES: the real monitor captures it talking to the loopback TLS
server; the recording, reduced to that client's process, becomes tests/golden/NAME.llmspy, and
the server's account of the exchanges becomes tests/golden/NAME.truth.json. The protocol tests
replay these without root. Nothing in them is written by hand.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(REPO))

from harness import make_cert  # noqa: E402
from scenarios import run_all  # noqa: E402

from llmspy_tui.capture.events import Counters, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder, RecordingReader  # noqa: E402

OUT = REPO / "tests" / "golden"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="llmspy-golden-"))
    cert, key = make_cert(work)
    results, mon = run_all(cert, key, work, sse_pause=0.002)
    reader = RecordingReader(str(mon.record))
    events = list(reader)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        keep = [e for e in events if type(e) is Counters
                or (e.info.pid if type(e) is ProcessSeen else getattr(e, "pid", None)) == r["pid"]]
        path = OUT / f"{name}.llmspy"
        if path.exists():
            path.unlink()
        rec = Recorder(str(path))
        rec.start({**{k: v for k, v in reader.info.header.items() if k not in ("format", "version")},
                   "golden": f"recorded by tests/support/record_golden.py: {name}", "argv": []})
        rec.write_many(keep)
        rec.close({"counters": reader.info.counters})
        os.chmod(path, 0o644)  # loopback test traffic only
        (OUT / f"{name}.truth.json").write_text(json.dumps(
            {"pid": r["pid"], "client_stdout": r["stdout"], "exchanges": r["exchanges"]}, indent=1))
        print(f"{path.name}: {path.stat().st_size} bytes, {len(r['exchanges'])} exchanges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
