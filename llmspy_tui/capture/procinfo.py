"""Process attribution from /proc: records are attributed to the process (tgid), not the thread."""

from __future__ import annotations

import os

from .events import ProcessInfo


def read_process(pid: int, proc: str = "/proc") -> ProcessInfo | None:
    """Read a process's identity; None when it has already gone."""
    base = f"{proc}/{pid}"
    try:
        with open(f"{base}/stat", "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm is in parentheses and may itself contain ') ': split at the last one.
    lpar, rpar = stat.find("("), stat.rfind(")")
    comm = stat[lpar + 1 : rpar] if lpar >= 0 and rpar > lpar else ""
    fields = stat[rpar + 2 :].split()
    try:
        ppid = int(fields[1])
        start_time = int(fields[19])
    except (IndexError, ValueError):
        ppid, start_time = 0, 0
    try:
        with open(f"{base}/comm", "rb") as f:
            comm = f.read().decode("utf-8", "replace").rstrip("\n") or comm
    except OSError:
        pass
    try:
        exe = os.readlink(f"{base}/exe")
    except OSError:
        exe = ""
    try:
        with open(f"{base}/cmdline", "rb") as f:
            raw = f.read()
        cmdline = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
    except OSError:
        cmdline = ()
    return ProcessInfo(pid=pid, start_time=start_time, comm=comm, exe=exe, cmdline=cmdline, ppid=ppid)


def list_pids(proc: str = "/proc") -> list[int]:
    try:
        return [int(n) for n in os.listdir(proc) if n.isdigit()]
    except OSError:
        return []


class ProcessTable:
    """Cache of ProcessInfo by pid, invalidated on exec and exit so a reused pid is a new process.

    Owned by the drain worker (single writer); the info objects themselves are immutable.
    """

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._by_pid: dict[int, ProcessInfo] = {}

    def get(self, pid: int, fallback_comm: str = "") -> ProcessInfo:
        info = self._by_pid.get(pid)
        if info is None:
            info = read_process(pid, self._proc) or ProcessInfo(pid, 0, fallback_comm, "", (), 0)
            self._by_pid[pid] = info
        return info

    def known(self, pid: int) -> ProcessInfo | None:
        return self._by_pid.get(pid)

    def refresh(self, pid: int, fallback_comm: str = "", fallback_exe: str = "") -> ProcessInfo:
        info = read_process(pid, self._proc) or ProcessInfo(pid, 0, fallback_comm, fallback_exe, (), 0)
        self._by_pid[pid] = info
        return info

    def put(self, info: ProcessInfo) -> None:
        self._by_pid[info.pid] = info

    def forget(self, pid: int) -> None:
        self._by_pid.pop(pid, None)
