"""End to end, as root: the real monitor captures real clients talking to a loopback TLS server.

Every plaintext byte each client wrote must appear in the capture, attributed to the client's
pid and process name, in order and without gaps, and every byte it read likewise; the server's
own log of what it received and sent on each connection is the ground truth.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_bpf
from harness import Monitor, TlsServer, finish_client, run_client, start_client, streams_for

from llmspy_tui.capture.recordfile import RecordingReader

CLIENTS = Path(__file__).resolve().parent / "support" / "clients"
REQUEST_SIZE = 3_000_000  # one SSL_write of 3 MB: a chain of programs emits it (tail calls)
REPLY_SIZE = 700_000
NODE = shutil.which("node")
CURL = shutil.which("curl")


def recorded_targets(record: Path) -> list[dict]:
    reader = RecordingReader(str(record))
    for _ in reader:
        pass
    return reader.info.footer.get("targets", [])


def request_body(size: int) -> bytes:
    head = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
    tail = b'"}]}'
    filler = (b"Summarise the capture layer of a TLS monitor. " * (size // 40 + 1))
    return head + filler[: size - len(head) - len(tail)] + tail


@pytest.fixture(scope="module")
def run(tls_cert, tmp_path_factory):
    """One monitor session watching every client in turn."""
    require_bpf()
    if not NODE or not CURL:
        pytest.fail("node and curl are needed (./setup --dev installs them)", pytrace=False)
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("e2e")
    body = work / "body.json"
    body.write_bytes(request_body(REQUEST_SIZE))
    server = TlsServer(cert, key, work / "server")
    mon = Monitor(work, ["--show-secrets"])
    clients: dict[str, dict] = {}
    url = f"https://localhost:{server.port}/bulk?size={REPLY_SIZE}&plain=1"
    try:
        p = run_client([sys.executable, str(CLIENTS / "py_httpclient.py"), str(cert), str(server.port),
                        f"/bulk?size={REPLY_SIZE}&plain=1", str(body)])
        clients["python-http.client"] = {"pid": p.pid, "exe": sys.executable, "out": p.stdout}
        p = run_client([CURL, "--http2", "-sS", "--cacert", str(cert), "--data-binary", f"@{body}",
                        "-H", "content-type: application/json", "-o", "/dev/null",
                        "-w", "%{http_version} %{size_download}", url])
        clients["curl-http2"] = {"pid": p.pid, "exe": CURL, "out": p.stdout}
        env = {"NODE_EXTRA_CA_CERTS": str(cert)}
        p = run_client([NODE, str(CLIENTS / "node_fetch.mjs"), url, str(body)], env=env)
        clients["node-fetch"] = {"pid": p.pid, "exe": NODE, "out": p.stdout}
        # A binary the monitor has never seen, created and started after it attached. It is
        # hooked when its exec is seen, tens of ms later (the latency is in the recording): the
        # client holds its first request until the monitor says it hooked the binary.
        copy = work / "llmspy-nodecopy"
        shutil.copy2(os.path.realpath(NODE), copy)
        go = work / "go"
        p = start_client([str(copy), str(CLIENTS / "node_fetch.mjs"), url, str(body)],
                         env={**env, "LLMSPY_TEST_START_WHEN": str(go)})
        hooked = mon.wait_for_stderr(f"hooked {copy}")
        go.touch()
        p = finish_client(p)
        assert hooked, f"the monitor never reported hooking {copy}: {mon.stderr}"
        clients["node-copy-new-path"] = {"pid": p.pid, "exe": str(copy), "out": p.stdout}
        conns = server.connections(wait_for=len(clients))
    finally:
        rc = mon.stop()
        server.stop()
    lines = mon.lines()
    return {"clients": clients, "conns": conns, "lines": lines, "rc": rc, "mon": mon,
            "body": body.read_bytes(), "server_pid": server.pid, "cert": cert}


@pytest.mark.bpf
@pytest.mark.parametrize("client", ["python-http.client", "curl-http2", "node-fetch", "node-copy-new-path"])
def test_every_byte_captured_for_the_right_process(run, client, record_property):
    c = run["clients"][client]
    s = streams_for(run["lines"], c["pid"])
    assert not s.problems, s.problems
    assert s.comms == {os.path.basename(c["exe"])[:15]}, (
        f"{client} pid {c['pid']} ({c['exe']}): comms {s.comms}; monitor said: {run['mon'].stderr}; "
        f"targets: {recorded_targets(run['mon'].record)}")
    assert s.exes == {os.path.realpath(c["exe"])}, s.exes
    assert s.send, f"nothing captured for {client} (pid {c['pid']})"
    server_conns = {recv: sent for recv, sent in run["conns"]}
    matched = 0
    for conn, sent_by_client in s.send.items():
        assert sent_by_client in server_conns, (
            f"{client} {conn}: captured {len(sent_by_client)} bytes sent, which match no server connection "
            f"(server saw {[len(r) for r, _ in run['conns']]})"
        )
        assert s.recv.get(conn, b"") == server_conns[sent_by_client], (
            f"{client} {conn}: captured {len(s.recv.get(conn, b''))} bytes received, "
            f"server sent {len(server_conns[sent_by_client])}"
        )
        matched += 1
    assert matched == 1
    sent = sum(len(v) for v in s.send.values())
    recvd = sum(len(v) for v in s.recv.values())
    truth_sent = sum(len(r) for r in s.send.values() if r in server_conns)  # server received
    truth_recv = sum(len(server_conns[r]) for r in s.send.values() if r in server_conns)
    assert sent > REQUEST_SIZE and recvd > REPLY_SIZE
    assert run["body"] in b"".join(s.send.values()) or client == "curl-http2"
    record_property("captured_send_bytes", sent)
    record_property("captured_recv_bytes", recvd)
    print(f"\n{client}: pid {c['pid']}: captured/sent {sent}/{truth_sent} = {sent / truth_sent:.3f}, "
          f"captured/received {recvd}/{truth_recv} = {recvd / truth_recv:.3f}")


@pytest.mark.bpf
def test_monitor_exits_cleanly_with_zero_loss(run):
    assert run["rc"] == 0, run["mon"].stderr
    err = run["mon"].stderr
    assert "Tracing" in err
    reader = RecordingReader(str(run["mon"].record))
    events = list(reader)
    assert events
    assert reader.info.complete, reader.info.problem
    counters = reader.info.counters
    for key in ("ringbuf_fail", "read_fail", "stash_fail", "truncated_calls"):
        assert counters[key] == 0, counters
    assert counters["bytes"] > 4 * (REQUEST_SIZE + REPLY_SIZE)
    assert "lost: ring buffer 0 records" in err
    # the loopback server's side of every call (inbound: it is the TLS server) was never copied
    assert counters["skipped"] > 0, counters
    assert run["server_pid"] not in {getattr(e, "pid", None) for e in events}
    targets = reader.info.footer["targets"]
    # node was found among the programs at start, so its processes are hooked from their first byte
    assert any(t["path"] == os.path.realpath(NODE) and t["origin"] == "bin" for t in targets), targets
    # the never-seen node copy was found through its exec
    copy = [t for t in targets if t["path"].endswith("llmspy-nodecopy")]
    assert len(copy) == 1 and copy[0]["origin"].startswith("exe:"), targets
    assert "SSL_write" in copy[0]["functions"]
    print(f"\nnever-seen binary hooked {copy[0]['attach_ms_after_exec']} ms after its exec")


@pytest.mark.bpf
def test_libssl_is_probed_at_its_internal_functions_when_they_are_found(run):
    """The cheap placement (probepoints.py) is what actually captured the clients above."""
    from llmspy_tui.capture.probepoints import internal_hooks

    libs = [t for t in recorded_targets(run["mon"].record) if "libssl" in os.path.basename(t["path"])]
    assert libs, recorded_targets(run["mon"].record)
    for t in libs:
        hooks, why = internal_hooks(t["path"])
        if hooks is None:
            assert "SSL_read_ex" in t["functions"], (t, why)
        else:
            assert {"ssl_read_internal", "ssl_write_internal", "SSL_free"} <= set(t["functions"]), t
            assert "SSL_read" not in t["functions"]


@pytest.mark.bpf
def test_recording_is_private_and_replays_identically(run, tmp_path):
    rec = run["mon"].record
    assert stat.S_IMODE(rec.stat().st_mode) == 0o600
    out = subprocess.run([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "--show-secrets",
                          "--replay", str(rec)], capture_output=True, check=True)
    import orjson

    replayed = [orjson.loads(l) for l in out.stdout.splitlines()]
    assert replayed == run["lines"]


@pytest.mark.bpf
def test_secrets_masked_unless_asked(run):
    rec = run["mon"].record
    out = subprocess.run([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "--replay", str(rec),
                          "-p", str(run["clients"]["python-http.client"]["pid"])],
                         capture_output=True, check=True)
    import orjson

    data = b"".join(base64.b64decode(orjson.loads(l)["data_b64"]) for l in out.stdout.splitlines()
                    if b'"chunk"' in l)
    assert b"Authorization: Bearer *****" in data
    assert b"sk-test-0123456789" not in data
    # and the raw line count is unchanged by masking: same lengths
    assert len(data) > REQUEST_SIZE


@pytest.mark.bpf
def test_inbound_connections_are_captured_when_asked(tls_cert, tmp_path):
    require_bpf()
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server")
    mon = Monitor(tmp_path, ["--inbound"])
    try:
        p = run_client([CURL, "-sS", "--cacert", str(cert), "-o", "/dev/null",
                        f"https://localhost:{server.port}/bulk?size=50000&plain=1"])
        ((received, sent),) = server.connections(wait_for=1)
    finally:
        rc = mon.stop()
        server.stop()
    assert rc == 0, mon.stderr
    events = list(RecordingReader(str(mon.record)))
    def stream(pid, d):
        return b"".join(e.data for e in events if getattr(e, "pid", None) == pid and getattr(e, "dir", "") == d)
    # the server's side is there too, byte for byte, mirroring the client's
    assert stream(server.pid, "recv") == received == stream(p.pid, "send")
    assert stream(server.pid, "send") == sent == stream(p.pid, "recv")


@pytest.mark.bpf
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_terminating_signals_leave_a_complete_recording(tls_cert, tmp_path, sig):
    import signal

    require_bpf()
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server")
    mon = Monitor(tmp_path, ["-c", "curl"])
    try:
        p = run_client([CURL, "-sS", "--cacert", str(cert), "-o", "/dev/null",
                        f"https://localhost:{server.port}/bulk?size=100000&plain=1"])
        ((_, sent),) = server.connections(wait_for=1)
    finally:
        rc = mon.stop(getattr(signal, sig))
        server.stop()
    assert rc == 0, mon.stderr
    reason = "interrupted" if sig == "SIGINT" else f"{sig} received"
    assert f"llmspy-tui: {reason}: " in mon.stderr and "Traceback" not in mon.stderr
    reader = RecordingReader(str(mon.record))
    events = list(reader)
    assert reader.info.complete, reader.info.problem
    got = b"".join(e.data for e in events if getattr(e, "pid", None) == p.pid and getattr(e, "dir", "") == "recv")
    assert len(got) > 100_000 and got == sent
    assert reader.info.footer["reason"] == reason
