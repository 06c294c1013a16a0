"""Record the bundled demo capture (llmspy_tui/data/demo.llmspy) from real clients.

Run as root from the repository: `sudo .venv/bin/python tests/support/record_demo.py`.
Starts the loopback TLS server (OpenAI and Anthropic wire formats, paced SSE), the real monitor
with --record, and real clients: Python http.client, curl --http2 and Node fetch, including a
three-turn conversation. The recording is then reduced to the clients' own processes (the
server and unrelated processes on the host are dropped); nothing in it is hand-written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
sys.path.insert(0, str(SUPPORT))
sys.path.insert(0, str(REPO))

from harness import make_cert, Monitor, TlsServer, run_client  # noqa: E402

from llmspy_tui.capture.events import ChunkEvent, Counters, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder, RecordingReader  # noqa: E402

OUT = REPO / "llmspy_tui" / "data" / "demo.llmspy"
CLIENTS = SUPPORT / "clients"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="llmspy-demo-"))
    cert, key = make_cert(work)
    server = TlsServer(cert, key, work / "server", sse_pause=0.03)
    mon = Monitor(work)
    base = f"https://localhost:{server.port}"
    pids: set[int] = set()

    def body(name: str, obj: dict) -> str:
        p = work / f"{name}.json"
        p.write_text(json.dumps(obj))
        return str(p)

    def py(path: str, obj: dict, name: str) -> None:
        cp = run_client([sys.executable, str(CLIENTS / "py_httpclient.py"), str(cert), str(server.port),
                         path, body(name, obj)])
        pids.add(cp.pid)

    try:
        system = "You are a concise assistant that explains systems tools."
        turns = ["What does an eBPF uprobe do?", "And a uretprobe?", "Why hook SSL_write rather than the socket?"]
        messages = [{"role": "system", "content": system}]
        for i, question in enumerate(turns):
            messages.append({"role": "user", "content": question})
            py("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages}, f"turn{i}")
            _, sent = server.connections(wait_for=i + 1)[-1]
            reply = json.loads(sent.split(b"\r\n\r\n", 1)[1])
            messages.append({"role": "assistant", "content": reply["choices"][0]["message"]["content"]})
        py("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
                                    "messages": [{"role": "user", "content": "Stream me a haiku about TLS."}]},
           "stream")
        anthropic = body("anthropic", {"model": "claude-3-5-haiku-20241022", "max_tokens": 256, "stream": True,
                                       "system": "Answer in one sentence.",
                                       "messages": [{"role": "user", "content": "What is HPACK?"}]})
        cp = run_client([shutil.which("curl"), "--http2", "-sS", "--cacert", str(cert), "-o", "/dev/null",
                         "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
                         "-H", "x-api-key: sk-ant-demo-not-a-real-key", "--data-binary", f"@{anthropic}",
                         f"{base}/v1/messages"])
        pids.add(cp.pid)
        node_body = body("node", {"model": "gpt-4o-mini", "stream": True,
                                  "messages": [{"role": "user", "content": "Name three TLS libraries."}]})
        cp = run_client([shutil.which("node"), str(CLIENTS / "node_fetch.mjs"), f"{base}/v1/chat/completions",
                         node_body], env={"NODE_EXTRA_CA_CERTS": str(cert)})
        pids.add(cp.pid)
        server.connections(wait_for=6)
    finally:
        mon.stop()
        server.stop()

    reader = RecordingReader(str(mon.record))
    keep = []
    for ev in reader:
        pid = ev.info.pid if type(ev) is ProcessSeen else getattr(ev, "pid", None)
        if type(ev) is Counters or pid in pids:
            keep.append(ev)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if OUT.exists():
        OUT.unlink()
    rec = Recorder(str(OUT))
    rec.start({**{k: v for k, v in reader.info.header.items() if k not in ("format", "version")},
               "demo": "recorded by tests/support/record_demo.py from real clients; reduced to client pids",
               "argv": []})
    rec.write_many(keep)
    rec.close({"counters": reader.info.counters})
    os.chmod(OUT, 0o644)  # shipped in the package: holds only loopback test traffic
    chunks = sum(1 for e in keep if type(e) is ChunkEvent)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {chunks} chunks from {len(pids)} processes)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
