"""The bundled demo capture: recorded live from real clients, replayable without root."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import orjson

from llmspy_tui.capture.events import ChunkEvent, ProcessSeen
from llmspy_tui.capture.recordfile import RecordingReader
from llmspy_tui.cli import demo_path


def test_demo_is_complete_and_from_real_clients():
    reader = RecordingReader(demo_path())
    events = list(reader)
    assert reader.info.complete and not reader.info.problem
    assert "record_demo.py" in reader.info.header["demo"]
    procs = [e.info for e in events if type(e) is ProcessSeen]
    assert {"curl", "node"} <= {p.comm for p in procs}
    assert any(os.path.basename(p.exe).startswith("python") for p in procs)  # the SDK clients
    assert len({p.pid for p in procs}) >= 4
    chunks = [e for e in events if type(e) is ChunkEvent]
    assert not any(e.lost or e.truncated for e in chunks)
    sent = b"".join(e.data for e in chunks if e.dir == "send")
    assert b"POST /v1/chat/completions HTTP/1.1" in sent
    assert sent.count(b"PRI * HTTP/2.0") == 2  # curl --http2 and the anthropic SDK
    recv = b"".join(e.data for e in chunks if e.dir == "recv")
    assert b"event: message_start" in recv and b"data: [DONE]" in recv
    for key in ("ringbuf_fail", "read_fail", "stash_fail"):
        assert reader.info.counters[key] == 0


def test_demo_flag_prints_raw_lines_with_secrets_masked():
    out = subprocess.run([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "--demo"],
                         capture_output=True, check=True, timeout=60)
    lines = [orjson.loads(l) for l in out.stdout.splitlines()]
    assert len(lines) > 50
    chunk = next(l for l in lines if l["type"] == "chunk")
    assert {"ts", "pid", "tid", "comm", "exe", "conn", "dir", "offset", "len", "data_b64"} <= set(chunk)
    procs = [l for l in lines if l["type"] == "process"]
    assert {p["comm"] for p in procs} >= {"curl", "node"}
    assert any(os.path.basename(p["exe"]).startswith("python") for p in procs)
    first = {}
    for l in lines:
        first.setdefault(l["pid"], l["type"])
    assert set(first.values()) == {"process"}  # identity comes before a process's first chunk
    assert all(p["start_time"] > 0 and p["ppid"] > 0 and p["cmdline"] for p in procs)
    data = b"".join(base64.b64decode(l["data_b64"]) for l in lines if l["type"] == "chunk")
    assert b"authorization: bearer ****" in data.lower()
    assert b"sk-proj-demo" not in data  # the openai clients' key, masked
    assert "Traceback" not in out.stderr.decode()
