"""Live capture with an in-kernel process filter and a small --max-capture: what is outside the
filter is never copied, and what exceeds the cap is reported with its true length, not dropped
silently."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import require_bpf
from harness import Monitor, TlsServer, run_client, streams_for

from llmspy_tui.capture.recordfile import RecordingReader

CLIENTS = Path(__file__).resolve().parent / "support" / "clients"
CAP = 64 * 1024
BODY = 300_000


@pytest.fixture(scope="module")
def run(tls_cert, tmp_path_factory):
    require_bpf()
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("limits")
    body = work / "body.json"
    body.write_bytes(b'{"input":"' + b"x" * (BODY - 12) + b'"}')
    server = TlsServer(cert, key, work / "server")
    mon = Monitor(work, ["--show-secrets", "--max-capture", "64K", "-c", "python"])
    try:
        py = run_client([sys.executable, str(CLIENTS / "py_httpclient.py"), str(cert), str(server.port),
                         "/bulk?size=5000&plain=1", str(body)])
        curl = run_client([shutil.which("curl"), "-sS", "--cacert", str(cert), "-o", "/dev/null",
                           f"https://localhost:{server.port}/bulk?size=5000&plain=1"])
        server.connections(wait_for=2)
    finally:
        rc = mon.stop()
        server.stop()
    return {"py": py.pid, "curl": curl.pid, "server": server.pid, "lines": mon.lines(), "mon": mon, "rc": rc}


@pytest.mark.bpf
def test_filter_keeps_other_processes_out(run):
    assert run["rc"] == 0
    pids = {l["pid"] for l in run["lines"]}
    assert run["py"] in pids
    assert run["curl"] not in pids and run["server"] not in pids


@pytest.mark.bpf
def test_oversized_call_is_truncated_with_true_length(run):
    lines = [l for l in run["lines"] if l["pid"] == run["py"] and l.get("dir") == "send"]
    trunc = [l for l in lines if l["type"] == "truncated"]
    assert len(trunc) == 1, lines
    t = trunc[0]
    assert t["total_len"] == BODY and t["len"] == BODY - CAP
    call_chunks = [l for l in lines if l["type"] == "chunk" and l["seq"] == t["seq"]]
    assert sum(l["len"] for l in call_chunks) == CAP
    assert t["offset"] == call_chunks[0]["offset"] + CAP
    counters = RecordingReader(str(run["mon"].record))
    list(counters)
    c = counters.info.counters
    assert c["truncated_calls"] == 1 and c["truncated_bytes"] == BODY - CAP
    assert c["ringbuf_fail"] == 0 and c["read_fail"] == 0
    # the reply still arrives whole: truncation is per call, not per connection
    s = streams_for(run["lines"], run["py"])
    (recv,) = s.recv.values()
    assert recv.endswith(b'"}') and len(recv) > 5000
