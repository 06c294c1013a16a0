"""Events produced by the capture layer (live or replayed) and consumed by everything after it.

Frozen and slotted: they cross threads and are kept in recordings, so they must never change
after creation, and there are many of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEND = "send"
RECV = "recv"


def conn_id(pid: int, conn: int) -> str:
    """Connection key as text: an SSL* value is only unique within one process."""
    return f"{pid}:{conn:x}"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What /proc said about a process when it was first seen. (pid, start_time) is its identity."""

    pid: int
    start_time: int  # clock ticks since boot (/proc/PID/stat field 22); 0 when unknown
    comm: str
    exe: str
    cmdline: tuple[str, ...]
    ppid: int

    def to_json(self) -> dict:
        return {
            "pid": self.pid,
            "start_time": self.start_time,
            "comm": self.comm,
            "exe": self.exe,
            "cmdline": list(self.cmdline),
            "ppid": self.ppid,
        }

    @classmethod
    def from_json(cls, d: dict) -> "ProcessInfo":
        return cls(
            pid=int(d["pid"]),
            start_time=int(d.get("start_time", 0)),
            comm=str(d.get("comm", "")),
            exe=str(d.get("exe", "")),
            cmdline=tuple(str(a) for a in d.get("cmdline", ())),
            ppid=int(d.get("ppid", 0)),
        )


@dataclass(frozen=True, slots=True)
class ChunkEvent:
    """Plaintext bytes of one SSL call (or part of one: calls are split into chunks).

    `offset` is the position of data[0] in the connection's byte stream in this direction,
    counted from when the monitor first saw the connection. `total_len` is what the call
    returned. `lost` > 0 means `lost` bytes at `offset` exist but were not captured: read
    failures, data dropped because the parser was over its backlog limit, or with `truncated`
    set, the part of a call beyond --max-capture.
    """

    ts: int  # nanoseconds since the Unix epoch
    pid: int
    tid: int
    conn: int  # SSL* in the process
    dir: str  # SEND or RECV
    seq: int  # call number on (conn, dir)
    offset: int
    total_len: int
    data: bytes
    chunk: int = 0
    lost: int = 0
    truncated: bool = False
    thread_comm: str = ""

    @property
    def conn_id(self) -> str:
        return conn_id(self.pid, self.conn)


@dataclass(frozen=True, slots=True)
class ConnClosed:
    ts: int
    pid: int
    conn: int

    @property
    def conn_id(self) -> str:
        return conn_id(self.pid, self.conn)


@dataclass(frozen=True, slots=True)
class ProcessSeen:
    """Identity of a process, emitted before its first other event (and again after exec)."""

    ts: int
    info: ProcessInfo


@dataclass(frozen=True, slots=True)
class ProcessExec:
    ts: int
    pid: int
    filename: str


@dataclass(frozen=True, slots=True)
class ProcessExit:
    ts: int
    pid: int


@dataclass(frozen=True, slots=True)
class Counters:
    """Loss and volume counters summed over CPUs. Every loss counter must be 0 for a whole capture."""

    ts: int = 0
    values: dict = field(default_factory=dict)

    LOSS_KEYS = ("ringbuf_fail", "read_fail", "stash_fail", "internal_errors", "backlog_drop")

    @property
    def lost(self) -> int:
        return sum(int(self.values.get(k, 0)) for k in self.LOSS_KEYS)

    def summary(self) -> str:
        v = self.values
        return (
            f"{v.get('calls', 0)} SSL calls, {v.get('bytes', 0)} bytes captured; "
            f"lost: ring buffer {v.get('ringbuf_fail', 0)} records ({v.get('ringbuf_fail_bytes', 0)} bytes), "
            f"read failures {v.get('read_fail', 0)} ({v.get('read_fail_bytes', 0)} bytes), "
            f"stash failures {v.get('stash_fail', 0)}; "
            f"truncated by --max-capture: {v.get('truncated_calls', 0)} calls ({v.get('truncated_bytes', 0)} bytes)"
            + (f"; records dropped by internal errors: {v['internal_errors']}" if v.get("internal_errors") else "")
            + (f"; dropped while the parser was over its backlog limit (--backlog): {v['backlog_drop']} records "
               f"({v.get('backlog_drop_bytes', 0)} bytes)" if v.get("backlog_drop") else "")
            + (f"; {v['skipped']} calls on inbound connections not copied (--inbound copies them)"
               if v.get("skipped") else "")
            + (f"; {v['ringbuf_retried']} ring-buffer writes went through on a retry"
               if v.get("ringbuf_retried") else "")
        )


CaptureEvent = ChunkEvent | ConnClosed | ProcessSeen | ProcessExec | ProcessExit | Counters
