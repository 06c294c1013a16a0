"""Record tests/golden/llm-clients.llmspy from real LLM clients (run as root).

    .venv/bin/python tests/support/record_llm_golden.py

The openai and anthropic SDKs (HTTP/1.1 and HTTP/2), curl --http2 (Gemini SSE) and Node fetch
talk to the loopback TLS server while the real monitor records. The recording, reduced to the
clients' processes, is kept with what each client itself received (llm-clients.truth.json), so
the provider tests can check real SDK traffic without root. Nothing in them is written by hand.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
sys.path[:0] = [str(SUPPORT), str(REPO)]

from harness import Monitor, TlsServer, make_cert  # noqa: E402
from llm_scenarios import SDK_SCENARIOS, run_curl_gemini, run_node, run_sdk  # noqa: E402

from llmspy_tui.capture.events import Counters, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder, RecordingReader  # noqa: E402

OUT = REPO / "tests" / "golden"
SKIP = {"anthropic-big-system"}  # 330 KB of prompt; the live test covers it


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="llmspy-llm-golden-"))
    cert, key = make_cert(work)
    server = TlsServer(cert, key, work / "server")
    mon = Monitor(work, mode=())
    try:
        results = {name: run_sdk(script, scen, h2, server.port, cert)
                   for name, script, scen, h2 in SDK_SCENARIOS if name not in SKIP}
        gem = run_curl_gemini(server.port, cert, work)
        results["curl-gemini-h2"] = {"pid": gem["pid"], "body_b64": base64.b64encode(gem["body"]).decode()}
        results["node-fetch"] = run_node(server.port, cert)
    finally:
        server.stop()
        mon.stop()
    pids = {r["pid"] for r in results.values()}
    reader = RecordingReader(str(mon.record))
    keep = [e for e in reader if type(e) is Counters
            or (e.info.pid if type(e) is ProcessSeen else getattr(e, "pid", None)) in pids]
    path = OUT / "llm-clients.llmspy"
    if path.exists():
        path.unlink()
    rec = Recorder(str(path))
    rec.start({**{k: v for k, v in reader.info.header.items() if k not in ("format", "version")},
               "golden": "recorded by tests/support/record_llm_golden.py", "argv": []})
    rec.write_many(keep)
    rec.close({"counters": reader.info.counters})
    os.chmod(path, 0o644)  # loopback test traffic only
    (OUT / "llm-clients.truth.json").write_text(json.dumps(results, indent=1))
    print(f"{path.name}: {path.stat().st_size} bytes, {len(results)} clients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
