"""Process attribution from /proc, including hostile process names."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from llmspy_tui.capture.procinfo import ProcessTable, read_process


def test_reads_own_process():
    info = read_process(os.getpid())
    assert info is not None
    assert info.pid == os.getpid()
    assert info.ppid == os.getppid()
    assert info.start_time > 0
    assert os.path.realpath(info.exe) == os.path.realpath(sys.executable)
    assert info.cmdline and "python" in info.cmdline[0]


def test_hostile_comm_with_parentheses_and_spaces():
    script = ("import ctypes,time; ctypes.CDLL(None).prctl(15, b'a) b (c', 0, 0, 0); "
              "print('ok', flush=True); time.sleep(10)")
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ok"
        info = read_process(p.pid)
        assert info.comm == "a) b (c"
        assert info.ppid == os.getpid()
        assert info.start_time > 0
    finally:
        p.kill()
        p.wait()


def test_gone_process_and_pid_reuse():
    p = subprocess.Popen(["true"])
    p.wait()
    time.sleep(0.05)
    assert read_process(p.pid) is None
    table = ProcessTable()
    fallback = table.get(p.pid, fallback_comm="thread-name")
    assert fallback.comm == "thread-name" and fallback.exe == ""
    # after an exec or exit the cached identity is dropped, so a reused pid is read afresh
    table.forget(p.pid)
    assert table.known(p.pid) is None
