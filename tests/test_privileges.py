"""What the monitor does as root: it writes nothing but the files the user named.

The live monitor runs under strace (every file-system call of every thread) while a client makes
a TLS call, then stops on SIGINT. Files opened for writing, created, renamed, removed, linked or
chmod'ed, directories made and mounts are collected: the only ones allowed are the recording the
user asked for and the terminal / null devices. The kernel side (BPF programs, uprobes through
perf_event_open, the ring buffer map) involves no files at all, so it shows up here as nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import require_bpf
from harness import REPO, TlsServer, run_client

STRACE = shutil.which("strace")
CURL = shutil.which("curl")
WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")
CHANGES = re.compile(r"^(\d+ +)?(mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir|symlink|symlinkat|link|"
                     r"linkat|truncate|chmod|fchmodat|chown|fchownat|lchown|mount|umount2|mknod|mknodat)\(")


def _changed_paths(log: str) -> list[str]:
    out = []
    for line in log.splitlines():
        if " = -1 " in line:
            continue  # a call that failed changed nothing
        m = re.search(r'^(?:\d+ +)?(open|openat|creat)\((?:AT_FDCWD, )?"([^"]*)", ([^,)]*)', line)
        if m and (m.group(1) == "creat" or WRITE_FLAGS.search(m.group(3))):
            out.append(m.group(2))
        elif CHANGES.search(line):
            out.append(line.split(None, 1)[-1] if line[:1].isdigit() else line)
    return out


@pytest.mark.bpf
def test_live_monitor_writes_only_the_recording_it_was_asked_for(tls_cert, tmp_path):
    require_bpf()
    if not STRACE or not CURL:
        pytest.fail("strace and curl are needed (./setup --dev installs them)", pytrace=False)
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server")
    work = tmp_path / "cwd"
    work.mkdir()
    record = work / "capture.llmspy"
    log = tmp_path / "strace.log"
    err = open(tmp_path / "monitor.err", "wb")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # Python's own .pyc cache is not ours
    proc = subprocess.Popen(
        [STRACE, "-f", "-qq", "-e", "trace=%file,mount,umount2", "-o", str(log),
         sys.executable, "-m", "llmspy_tui", "--headless", "--record", str(record), "-c", "curl"],
        stdout=subprocess.DEVNULL, stderr=err, cwd=str(work), env={**env, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 90
        while b"Tracing" not in (tmp_path / "monitor.err").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "monitor.err").read_text(errors="replace")
            time.sleep(0.1)
        run_client([CURL, "-sS", "--cacert", str(cert), "-o", "/dev/null",
                    f"https://localhost:{server.port}/bulk?size=20000&plain=1"])
        server.connections(wait_for=1)
        time.sleep(0.5)
    finally:
        monitor = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        for pid in monitor:
            os.kill(pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
        err.close()
        server.stop()
    stderr = (tmp_path / "monitor.err").read_text(errors="replace")
    assert rc == 0 and "Traceback" not in stderr, stderr
    assert record.stat().st_size > 0 and oct(record.stat().st_mode & 0o777) == "0o600"
    changed = _changed_paths(log.read_text(errors="replace"))
    allowed = {str(record), "/dev/null", "/dev/tty"}
    unexpected = [p for p in changed if p not in allowed and not p.startswith("/dev/pts/")]
    assert not unexpected, unexpected
    assert str(record) in changed  # the trace did see the monitor's own writes
    assert sorted(os.listdir(work)) == ["capture.llmspy"]  # nothing else in the working directory
