"""Run the real monitor, a loopback TLS server and real clients; collect what each side saw."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]


def make_cert(directory: Path, names: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost and any other host `names` (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    san = ",".join(f"DNS:{n}" for n in ("localhost", *names)) + ",IP:127.0.0.1"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True,
    )
    return cert, key


class TlsServer:
    def __init__(self, cert: Path, key: Path, log_dir: Path, sse_pause: float = 0.0, port: int = 0,
                 latency: float = 0.0, script: Path | None = None) -> None:
        self.log_dir = log_dir
        self.proc = subprocess.Popen(
            [sys.executable, str(SUPPORT / "tls_server.py"), "--cert", str(cert), "--key", str(key),
             "--log-dir", str(log_dir), "--sse-pause", str(sse_pause), "--port", str(port),
             "--latency", str(latency), *(["--script", str(script)] if script else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"test server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def connections(self, wait_for: int, timeout: float = 20.0) -> list[tuple[bytes, bytes]]:
        """(received, sent) plaintext of every finished connection, once `wait_for` have finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = sorted(self.log_dir.glob("conn-*.done"))
            if len(done) >= wait_for:
                break
            time.sleep(0.05)
        out = []
        for d in sorted(self.log_dir.glob("conn-*.done"), key=lambda p: int(p.stem.split("-")[1])):
            stem = d.with_suffix("")
            out.append((stem.with_suffix(".recv").read_bytes(), stem.with_suffix(".sent").read_bytes()))
        return out

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Monitor:
    """`llmspy-tui --headless --raw` (or another output `mode`) as a subprocess, as a user would run it."""

    def __init__(self, workdir: Path, extra_args: list[str] = (), ready_timeout: float = 60.0,
                 mode: tuple[str, ...] = ("--raw",)) -> None:
        self.out_path = workdir / "monitor.jsonl"
        self.err_path = workdir / "monitor.err"
        self.record = workdir / "capture.llmspy"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmspy_tui", "--headless", *mode, "--record", str(self.record),
             *extra_args],
            stdout=self._out, stderr=self._err, cwd=str(REPO),
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if b"Tracing" in self.err_path.read_bytes():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"monitor did not start: {self.err_path.read_text(errors='replace')}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self._out.close()
        self._err.close()
        return rc

    def wait_for_stderr(self, text: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr:
                return True
            time.sleep(0.02)
        return False

    def lines(self) -> list[dict]:
        return [orjson.loads(l) for l in self.out_path.read_bytes().splitlines() if l.strip()]

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


@dataclass
class Streams:
    """Reassembled per-connection byte streams of one process, from raw JSON lines."""

    send: dict[str, bytes] = field(default_factory=dict)
    recv: dict[str, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    comms: set[str] = field(default_factory=set)
    exes: set[str] = field(default_factory=set)


def streams_for(lines: list[dict], pid: int) -> Streams:
    s = Streams()
    pieces: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    for l in lines:
        if l.get("pid") != pid:
            continue
        if l["type"] in ("lost", "truncated"):
            s.problems.append(f"{l['type']} {l['len']} bytes at {l['conn']} {l['dir']} {l['offset']}")
            continue
        if l["type"] != "chunk":
            continue
        s.comms.add(l["comm"])
        s.exes.add(l["exe"])
        pieces.setdefault((l["conn"], l["dir"]), []).append((l["offset"], base64.b64decode(l["data_b64"])))
    for (conn, d), parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        buf = bytearray()
        for off, data in parts:
            if off != len(buf):
                s.problems.append(f"gap or overlap in {conn} {d} at {len(buf)} (next chunk at {off})")
            buf[off : off + len(data)] = data
        (s.send if d == "send" else s.recv)[conn] = bytes(buf)
    return s


def start_client(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def finish_client(p: subprocess.Popen, timeout: float = 60.0) -> subprocess.CompletedProcess:
    cmd = p.args
    out, err = p.communicate(timeout=timeout)
    cp = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    cp.pid = p.pid  # type: ignore[attr-defined]
    if p.returncode != 0:
        raise RuntimeError(f"client {cmd[0]} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return cp


def run_client(cmd: list[str], env: dict | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return finish_client(start_client(cmd, env), timeout)
