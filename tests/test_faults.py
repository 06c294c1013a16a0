"""Faults the monitor must survive, or report, never hide.

- SIGINT, SIGTERM and SIGHUP end it cleanly: headless JSON lines on a pipe keep every line and
  end with a whole one; the full-screen monitor, in a real pseudo-terminal, gives the terminal
  back as it found it (the recording side is in test_capture_e2e.py).
- A ring buffer too small for the traffic loses records: the loss is counted, with numbers, on
  stderr while it happens and at exit, in the recording, and in the full-screen header.
- Hooked files change under the monitor: a libssl deleted and put back as another file at the
  same path, a binary replaced on disk by a rename. The monitor keeps running and captures the
  processes that use the new files.

Root/bcc tests call require_bpf(). Other tests may trace this host at the same time: everything
is matched by this test's own pids.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import orjson
import pytest

from conftest import REPO, require_bpf
from harness import Monitor, TlsServer, finish_client, run_client, start_client

from llmspy_tui.capture.recordfile import RecordingReader

CLIENTS = Path(__file__).resolve().parent / "support" / "clients"
CURL = shutil.which("curl")
NODE = shutil.which("node")
SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"]


def stop_reason(sig: str) -> str:
    """What the summary line says ended the capture (cli._StopRequest, MonitorApp.request_stop)."""
    return "interrupted" if sig == "SIGINT" else f"{sig} received"


def read_lines(path: Path) -> list[dict]:
    """The whole lines of a JSON-lines file that may still be growing."""
    raw = path.read_bytes()
    return [orjson.loads(line) for line in raw[: raw.rfind(b"\n") + 1].splitlines() if line.strip()]


def connections(lines: list[dict], pid: int) -> list[tuple[bytes, bytes]]:
    """(sent, received) plaintext of each TLS connection of `pid` in raw lines, in order.

    An SSL* is often reused for the next connection once freed: a `close` line ends one."""
    done: list[tuple[bytes, bytes]] = []
    open_: dict[str, dict[str, bytearray]] = {}
    for line in lines:
        if line.get("pid") != pid:
            continue
        if line["type"] in ("lost", "truncated"):
            raise AssertionError(f"{line['type']} {line['len']} bytes of pid {pid}: {line}")
        if line["type"] == "chunk":
            streams = open_.setdefault(line["conn"], {"send": bytearray(), "recv": bytearray()})
            buf = streams[line["dir"]]
            assert line["offset"] == len(buf), f"gap or overlap in {line['conn']} {line['dir']}: {line}"
            buf += base64.b64decode(line["data_b64"])
        elif line["type"] == "close" and line["conn"] in open_:
            s = open_.pop(line["conn"])
            done.append((bytes(s["send"]), bytes(s["recv"])))
    done.extend((bytes(s["send"]), bytes(s["recv"])) for s in open_.values())
    return done


def assert_matches_server(captured: list[tuple[bytes, bytes]], server: TlsServer, expected: int) -> None:
    """Each captured connection is, byte for byte in both directions, one the server logged."""
    truth = server.connections(wait_for=expected)
    assert captured, "nothing captured"
    for sent, received in captured:
        assert (sent, received) in truth, (
            f"captured {len(sent)} bytes sent / {len(received)} received, which match no server "
            f"connection (server: {[(len(r), len(s)) for r, s in truth]})")


def counters_of(record: Path) -> tuple[dict, dict]:
    reader = RecordingReader(str(record))
    for _ in reader:
        pass
    assert reader.info.complete, reader.info.problem
    return reader.info.counters, reader.info.footer


# -- 1a: headless, JSON lines on a pipe ------------------------------------------------------------

@pytest.mark.bpf
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("reader", ["reading", "stalled"])
def test_headless_signal_flushes_every_line_and_exits_cleanly(tls_cert, tmp_path, sig, reader):
    """The signal comes the moment the client is done, before the monitor could print all it
    captured: the rest is drained and printed, in whole lines, then it exits 0. `stalled`: the
    reader of the pipe does not read until after the signal, so the monitor is blocked writing
    to a full pipe when the signal interrupts it."""
    require_bpf()
    if not CURL:
        pytest.fail("curl is needed (./setup --dev installs it)", pytrace=False)
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server")
    body = tmp_path / "body.json"
    body.write_bytes(b'{"model":"gpt-4o-mini","input":"' + b"x" * 200_000 + b'"}')
    curl = tmp_path / "llmspy-fcurl"  # a name of its own: only this client is copied (-c)
    curl.symlink_to(CURL)
    err = tmp_path / "monitor.err"
    with err.open("wb") as err_file:
        mon = subprocess.Popen([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "--show-secrets",
                                "-c", curl.name], stdout=subprocess.PIPE, stderr=err_file, cwd=str(REPO))
    out = bytearray()

    def pump() -> None:
        while chunk := os.read(mon.stdout.fileno(), 1 << 16):
            out.extend(chunk)

    pumping = threading.Thread(target=pump, daemon=True)
    if reader == "reading":
        pumping.start()
    try:
        deadline = time.monotonic() + 60
        while b"Tracing" not in err.read_bytes():
            assert mon.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        client = run_client([str(curl), "-sS", "--cacert", str(cert), "--data-binary", f"@{body}",
                             "-o", "/dev/null", f"https://localhost:{server.port}/bulk?size=700000&plain=1"])
        if reader == "stalled":
            time.sleep(0.5)  # about 1.2 MB of lines wait for a 64 KiB pipe: the monitor is blocked
        seen_at_signal = bytes(out)
        mon.send_signal(getattr(signal, sig))
        if reader == "stalled":
            time.sleep(0.3)
            pumping.start()
        rc = mon.wait(timeout=30)
        pumping.join(timeout=10)
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait()
        mon.stdout.close()
        server.stop()
    stderr = err.read_text(errors="replace")
    assert rc == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert f"llmspy-tui: {stop_reason(sig)}: " in stderr, stderr
    data = bytes(out)
    assert data.startswith(seen_at_signal)
    assert data.endswith(b"\n"), data[-200:]
    lines = [orjson.loads(line) for line in data.splitlines()]  # every line is whole JSON
    captured = connections(lines, client.pid)
    assert len(captured) == 1, f"{len(seen_at_signal)} of {len(data)} bytes were out at the signal"
    assert_matches_server(captured, server, 1)


def test_headless_replay_signal_ends_with_whole_lines(tmp_path):
    """--replay to a pipe nobody reads for a while, then SIGTERM: whole lines only, exit 0, and
    stderr says the replay stopped early (no root needed)."""
    mon = subprocess.Popen([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "--demo", "--speed", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    try:
        time.sleep(1.5)  # the demo's lines fill the pipe: the monitor is blocked writing
        assert mon.poll() is None
        mon.send_signal(signal.SIGTERM)
        out, err = mon.communicate(timeout=30)
    finally:
        if mon.poll() is None:
            mon.kill()
    assert mon.returncode == 0 and b"Traceback" not in err, err
    assert len(out) > 65536 and out.endswith(b"\n")
    for line in out.splitlines():
        orjson.loads(line)
    assert b"SIGTERM received: the replay of" in err and b"stopped before its end" in err, err


# -- 1c: the full-screen monitor in a real terminal ------------------------------------------------

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")


class Pty:
    """A process on a fresh pseudo-terminal (its controlling terminal), 100x30, xterm-256color."""

    def __init__(self, args: list[str], cols: int = 100, rows: int = 30) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.termios_before = termios.tcgetattr(self.slave)
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
        for k in ("NO_COLOR", "TEXTUAL", "LLMSPY_DEBUG"):
            env.pop(k, None)

        def controlling_tty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen([sys.executable, "-m", "llmspy_tui", *args], stdin=self.slave,
                                     stdout=self.slave, stderr=self.slave, env=env, cwd=str(REPO),
                                     preexec_fn=controlling_tty)
        self.out = bytearray()

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], 0.01)
            if r:
                try:
                    data = os.read(self.master, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                self.out.extend(data)

    def wait_for(self, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.out and needle not in self.text:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.text[-2000:]!r}"
            assert time.monotonic() < deadline, f"never saw {needle!r}: {self.text[-2000:]!r}"
            self.pump(0.02)

    def stop_by(self, sig: str, timeout: float) -> tuple[int, float]:
        """Send the signal; (exit code, seconds it took to exit)."""
        start = time.monotonic()
        self.proc.send_signal(getattr(signal, sig))
        rc = self.wait_exit(timeout)
        return rc, time.monotonic() - start

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        self.pump(0.2)  # what it wrote last
        return self.proc.poll()

    @property
    def text(self) -> bytes:
        return ANSI.sub(b"", bytes(self.out))

    def close(self) -> list:
        after = termios.tcgetattr(self.slave)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)
        return after


def assert_terminal_restored(t: Pty, after: list) -> None:
    out = bytes(t.out)
    assert b"\x1b[?1049h" in out, "the monitor never took the screen"
    assert out.rfind(b"\x1b[?1049l") > out.rfind(b"\x1b[?1049h"), "alternate screen not left"
    assert out.rfind(b"\x1b[?25h") > out.rfind(b"\x1b[?25l"), "cursor not shown again"
    for mode in (b"1000", b"1003", b"1006"):  # mouse tracking: buttons, motion, SGR encoding
        on, off = out.rfind(b"\x1b[?" + mode + b"h"), out.rfind(b"\x1b[?" + mode + b"l")
        assert off > on, f"mouse mode {mode.decode()} left on"
    assert after == t.termios_before, "termios settings differ from before the monitor started"
    assert b"Traceback" not in t.text, t.text[-3000:]


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("when", ["drawn", "entering"])
def test_full_screen_demo_signal_restores_the_terminal(sig, when):
    """--demo (no root). `drawn`: the demo is on screen and streaming. `entering`: the signal
    comes as the terminal is switched to the alternate screen, before the app handles signals."""
    t = Pty(["--demo"])
    try:
        if when == "drawn":
            t.wait_for(b"DEMO", 30)
            t.wait_for(b"calls", 30)
            t.pump(0.5)
        else:
            t.wait_for(b"\x1b[?1049h", 30)
        rc, took = t.stop_by(sig, 10)
    finally:
        after = t.close()
    assert rc == 0, t.text[-2000:]
    assert took < 5, took
    assert_terminal_restored(t, after)


@pytest.mark.bpf
@pytest.mark.parametrize("sig", SIGNALS)
def test_full_screen_live_signal_restores_the_terminal_and_reports(sig, tmp_path):
    """Live, recording: the terminal comes back, the summary names the signal, the recording
    is closed with its end frame."""
    require_bpf()
    record = tmp_path / "tui.llmspy"
    t = Pty(["-c", "llmspy-none", "--record", str(record)])
    try:
        t.wait_for(b"Waiting for LLM calls", 90)
        t.pump(0.3)
        rc, took = t.stop_by(sig, 15)
    finally:
        after = t.close()
    assert rc == 0, t.text[-2000:]
    assert took < 10, took
    assert_terminal_restored(t, after)
    text = b" ".join(t.text.split()).decode(errors="replace")
    # the summary is printed after the screen is given back, and says why it ended
    assert re.search(rf"llmspy-tui: {stop_reason(sig)}: \d+ SSL calls", text), text[-1500:]
    _, footer = counters_of(record)
    assert footer["reason"] == stop_reason(sig)


def catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for `sig` (the SigCgt mask in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.bpf
def test_full_screen_live_signal_while_the_probes_attach(tmp_path):
    """SIGTERM after the monitor took the signals but before the probes are attached (the
    "Tracing" line): the attach finishes, the screen is never taken, the recording is closed."""
    require_bpf()
    record = tmp_path / "early.llmspy"
    t = Pty(["-c", "llmspy-none", "--record", str(record)])
    try:
        deadline = time.monotonic() + 30
        while not catches(t.proc.pid, signal.SIGTERM):
            assert t.proc.poll() is None and time.monotonic() < deadline, t.text[-2000:]
            t.pump(0.002)
        assert b"Tracing" not in t.out
        t.proc.send_signal(signal.SIGTERM)
        rc = t.wait_exit(30)
    finally:
        after = t.close()
    assert rc == 0, t.text[-2000:]
    assert after == t.termios_before
    out = bytes(t.out)
    assert out.rfind(b"\x1b[?1049l") >= out.rfind(b"\x1b[?1049h")  # never taken, or given back
    text = b" ".join(t.text.split()).decode(errors="replace")
    assert "Traceback" not in text and "llmspy-tui: SIGTERM received: " in text, text[-1500:]
    _, footer = counters_of(record)
    assert footer["reason"] == "SIGTERM received"


def test_ring_mb_must_be_at_least_one():
    cp = subprocess.run([sys.executable, "-m", "llmspy_tui", "--headless", "--ring-mb", "0"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert cp.stderr.strip() == "llmspy-tui: --ring-mb must be at least 1"


# -- 2: ring-buffer overflow is counted and shown -------------------------------------------------

FLOOD_SIZE = 4_000_000  # bytes per SSL_write: 4 times the 1 MiB ring
FLOOD_COUNT = 20


@pytest.fixture(scope="module")
def flood(tls_cert, tmp_path_factory):
    """`--ring-mb 1` (the smallest) watching only a client that writes 20 x 4 MB as fast as it can."""
    require_bpf()
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("flood")
    go = work / "go"
    client = start_client([sys.executable, str(CLIENTS / "py_flood.py"), str(cert), str(key),
                           str(FLOOD_SIZE), str(FLOOD_COUNT)], env={"LLMSPY_TEST_START_WHEN": str(go)})
    try:
        assert client.stdout.readline() == b"waiting\n"
        mon = Monitor(work, ["-p", str(client.pid), "--ring-mb", "1"], mode=())
        try:
            go.touch()
            written, received = map(int, finish_client(client).stdout.split())
            assert written == received == FLOOD_SIZE * FLOOD_COUNT
            # said while it runs, not only at exit (counters are read every second)
            warned = mon.wait_for_stderr("warning: events lost so far", timeout=10)
            running = mon.proc.poll() is None
        finally:
            rc = mon.stop()
    finally:
        if client.poll() is None:
            client.kill()
    return {"mon": mon, "rc": rc, "warned": warned, "running": running, "written": written}


@pytest.mark.bpf
def test_ring_overflow_is_counted_on_stderr_and_in_the_recording(flood):
    mon = flood["mon"]
    err = mon.stderr
    assert flood["rc"] == 0 and "Traceback" not in err, err
    assert flood["warned"] and flood["running"], err
    warn = re.search(r"warning: events lost so far: .*?ring buffer (\d+) records \((\d+) bytes\)", err)
    final = re.search(r"interrupted: (\d+) SSL calls, (\d+) bytes captured; lost: ring buffer (\d+) records "
                      r"\((\d+) bytes\)", err)
    assert warn and final, err
    assert int(warn.group(1)) > 0 and int(warn.group(2)) > 0
    calls, captured, lost_records, lost_bytes = map(int, final.groups())
    assert lost_records >= int(warn.group(1)) and lost_bytes > 0
    counters, _ = counters_of(mon.record)
    assert counters["ringbuf_fail"] == lost_records and counters["ringbuf_fail_bytes"] == lost_bytes
    assert counters["internal_errors"] == 0 and counters["read_fail"] == 0
    # nothing vanished silently: every byte written was either captured or counted as lost
    assert calls == FLOOD_COUNT and captured == counters["bytes"]
    assert captured + lost_bytes == flood["written"], (captured, lost_bytes, flood["written"])


@pytest.mark.bpf
def test_ring_overflow_shows_in_the_full_screen_header(flood):
    """The recording of that run, in the full-screen monitor: the header carries the loss badge."""
    import asyncio

    from llmspy_tui.sources import ReplaySource
    from llmspy_tui.tui.app import MonitorApp

    counters, _ = counters_of(flood["mon"].record)
    lost = counters["ringbuf_fail"] + counters["read_fail"] + counters["stash_fail"]
    assert lost > 0

    async def run() -> str:
        app = MonitorApp(ReplaySource(str(flood["mon"].record)))
        async with app.run_test(size=(160, 45)) as pilot:
            deadline = time.monotonic() + 30
            while not app.fed.is_set() and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            return str(app.screen.query_one("#totals").render())

    header = asyncio.run(run())
    assert f"⚠ lost {lost:,} events" in header, header


@pytest.mark.bpf
def test_a_stalled_consumer_keeps_memory_bounded_and_counts_what_it_dropped(tls_cert, tmp_path):
    """Nobody reads the monitor's output while a client pushes 80 MB: the printer blocks on the
    full pipe, so the capture's backlog hits --backlog 1M. Data past it is dropped, counted
    (summary and recording), and marked in its stream as lost at the right offsets, while exec,
    exit and close events still flow; the ring buffer itself never overflows."""
    require_bpf()
    cert, key = tls_cert
    go = tmp_path / "go"
    client = start_client([sys.executable, str(CLIENTS / "py_flood.py"), str(cert), str(key),
                           str(FLOOD_SIZE), str(FLOOD_COUNT)], env={"LLMSPY_TEST_START_WHEN": str(go)})
    record = tmp_path / "capture.llmspy"
    err_path = tmp_path / "monitor.err"
    with open(err_path, "wb") as err:
        mon = subprocess.Popen([sys.executable, "-m", "llmspy_tui", "--headless", "--raw", "-p", str(client.pid),
                                "--backlog", "1M", "--record", str(record)],
                               stdout=subprocess.PIPE, stderr=err, cwd=str(REPO))
    try:
        assert client.stdout.readline() == b"waiting\n"
        deadline = time.monotonic() + 60
        while b"Tracing" not in err_path.read_bytes():
            assert mon.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
        go.touch()
        written, _ = map(int, finish_client(client).stdout.split())
        time.sleep(1.5)  # a counters tick
        peak_kb = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{mon.pid}/status").read_text()).group(1))
        mon.send_signal(signal.SIGINT)
        out = mon.stdout.read()  # now drain the pipe: the monitor finishes its lines and exits
        rc = mon.wait(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
        if mon.poll() is None:
            mon.kill()
    err = err_path.read_text(errors="replace")
    assert rc == 0 and "Traceback" not in err, err
    assert "dropped while the parser was over its backlog limit (--backlog)" in err, err
    counters, _ = counters_of(record)
    assert counters["backlog_drop"] > 0 and counters["backlog_drop_bytes"] > 0
    assert counters["ringbuf_fail"] == 0 and counters["internal_errors"] == 0, counters
    lines = [orjson.loads(x) for x in out.splitlines()]
    shown = sum(x["len"] for x in lines if x["type"] == "chunk" and x["dir"] == "send")
    marked = sum(x["len"] for x in lines if x["type"] == "lost" and x["dir"] == "send")
    assert marked > 0 and shown + marked == written, (shown, marked, written)
    # the stream positions add up: each lost line starts where the previous line ended
    pos = 0
    for x in (x for x in lines if x["type"] in ("chunk", "lost") and x["dir"] == "send"):
        assert x["offset"] == pos, x
        pos += x["len"]
    # bounded: the backlog (1 MiB) plus the interpreter and bcc, far below the 80 MB pushed
    assert peak_kb < 400_000, peak_kb


# -- 3: hooked files that change on disk ----------------------------------------------------------

def system_libssl() -> str:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        name, _, path = line.partition("=>")
        if name.split()[:1] == ["libssl.so.3"]:
            return path.strip()
    pytest.skip("no libssl.so.3 in the linker cache")


def wait_for_capture(mon: Monitor, pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(line.get("pid") == pid and line["type"] == "chunk" for line in read_lines(mon.out_path)):
            return True
        time.sleep(0.05)
    return False


def assert_clean_run(mon: Monitor, rc: int) -> dict:
    err = mon.stderr
    assert rc == 0, err
    assert "Traceback" not in err and "error" not in err and "could not attach" not in err, err
    counters, footer = counters_of(mon.record)
    for key in ("internal_errors", "ringbuf_fail", "read_fail", "stash_fail"):
        assert counters[key] == 0, counters
    return footer


@pytest.mark.bpf
def test_libssl_deleted_then_replaced_at_the_same_path(tls_cert, tmp_path):
    """A process uses a private copy of libssl (LD_LIBRARY_PATH), found by the rescan of its maps
    after its exec; it exits; the file is deleted; a host rescan passes; another copy appears at
    the same path (another inode) and a new process uses it: captured too, nothing breaks."""
    from llmspy_tui.capture.live import HOST_RESCAN_EVERY

    require_bpf()
    cert, key = tls_cert
    libdir = tmp_path / "lib"
    libdir.mkdir()
    lib = libdir / "libssl.so.3"
    shutil.copy2(system_libssl(), lib)
    # a recognisable process name, so that only these clients are copied (-c)
    python = tmp_path / "llmspy-fault-py"
    python.symlink_to(os.path.realpath(sys.executable))
    server = TlsServer(cert, key, tmp_path / "server")
    mon = Monitor(tmp_path, ["--show-secrets", "-c", python.name])
    env = {"LD_LIBRARY_PATH": str(libdir)}

    def client(tag: str) -> int:
        stop = tmp_path / f"stop-{tag}"
        p = start_client([str(python), str(CLIENTS / "py_repeat.py"), str(cert), str(server.port), str(stop)],
                         env=env)
        seen = wait_for_capture(mon, p.pid)
        stop.touch()
        out = finish_client(p).stdout.decode().split()
        assert seen, f"no call of pid {p.pid} ({tag}) captured: {mon.stderr}"
        assert out[0] == str(lib), f"the client did not load the copy: {out}"
        return p.pid

    try:
        first_ino = lib.stat().st_ino
        pid_a = client("a")
        lib.unlink()
        time.sleep(HOST_RESCAN_EVERY + 1.5)  # a host rescan runs while the hooked file is gone
        assert mon.proc.poll() is None, mon.stderr
        tmp = libdir / ".libssl.new"
        shutil.copy2(system_libssl(), tmp)
        with tmp.open("ab") as f:
            f.write(b"\0" * 4096)  # not the same bytes either
        os.replace(tmp, lib)
        assert lib.stat().st_ino != first_ino
        pid_b = client("b")
        n_conns = len(list((tmp_path / "server").glob("conn-*.done")))
    finally:
        rc = mon.stop()
        server.stop()
    footer = assert_clean_run(mon, rc)
    lines = mon.lines()
    for pid in (pid_a, pid_b):
        assert_matches_server(connections(lines, pid), server, n_conns)
    hooked = [t for t in footer["targets"] if t["path"] == str(lib)]
    assert len(hooked) == 2 and hooked[0]["ino"] == first_ino != hooked[1]["ino"], footer["targets"]
    assert all("ssl_write_internal" in t["functions"] or "SSL_write" in t["functions"] for t in hooked)


@pytest.mark.bpf
def test_binary_replaced_on_disk_is_hooked_again(tls_cert, tmp_path):
    """A copy of node (which carries OpenSSL itself) run, then replaced by a rename of a new
    file over it, and run again: both runs captured whole."""
    require_bpf()
    if not NODE:
        pytest.fail("node is needed (./setup --dev installs it)", pytrace=False)
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server")
    body = tmp_path / "body.json"
    body.write_bytes(b'{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}')
    exe = tmp_path / "llmspy-fnode"
    shutil.copy2(os.path.realpath(NODE), exe)
    mon = Monitor(tmp_path, ["--show-secrets", "-c", exe.name])
    url = f"https://localhost:{server.port}/bulk?size=50000&plain=1"

    def client(tag: str) -> int:
        go = tmp_path / f"go-{tag}"
        p = start_client([str(exe), str(CLIENTS / "node_fetch.mjs"), url, str(body)],
                         env={"NODE_EXTRA_CA_CERTS": str(cert), "LLMSPY_TEST_START_WHEN": str(go)})
        hooked = mon.wait_for_stderr(f"hooked {exe} (new, started as pid {p.pid})")
        go.touch()
        assert finish_client(p).stdout.split()[:2] == [b"200", b"50000"]
        assert hooked, f"pid {p.pid} ({tag}): the monitor never said it hooked {exe}: {mon.stderr}"
        return p.pid

    try:
        first_ino = exe.stat().st_ino
        pid_a = client("a")
        new = tmp_path / ".llmspy-fnode.new"
        shutil.copy2(os.path.realpath(NODE), new)
        with new.open("ab") as f:
            f.write(b"\0" * 4096)
        os.replace(new, exe)
        assert exe.stat().st_ino != first_ino
        pid_b = client("b")
    finally:
        rc = mon.stop()
        server.stop()
    footer = assert_clean_run(mon, rc)
    lines = mon.lines()
    for pid in (pid_a, pid_b):
        captured = connections(lines, pid)
        assert len(captured) == 1, captured
        assert_matches_server(captured, server, 2)
    hooked = [t for t in footer["targets"] if t["path"] == str(exe)]
    assert len(hooked) == 2 and hooked[0]["ino"] == first_ino != hooked[1]["ino"], footer["targets"]
