"""The capture file: versioned, self-describing, append-only, and readable up to a crash.

Layout:
    MAGIC (10 bytes: b"LLMSPYCAP\\n")
    frame*   where frame = <u32 payload length><u32 crc32(type byte + payload)><u8 type><payload>

The first frame is a JSON header (format name, version, host, kernel, tool version, options,
targets). Every event is one frame, written with a single os.write on an O_APPEND descriptor, so
SIGINT, SIGTERM or a crash loses at most the frame being written; a reader stops at the first
incomplete or corrupt frame and says how many bytes it ignored. Counter frames are appended
periodically and at the end, so a crashed recording still carries recent loss counters.
"""

from __future__ import annotations

import os
import platform
import socket
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import orjson

from .. import __version__
from ..errors import UserError
from .events import (
    CaptureEvent,
    ChunkEvent,
    ConnClosed,
    Counters,
    ProcessExec,
    ProcessExit,
    ProcessInfo,
    ProcessSeen,
)

MAGIC = b"LLMSPYCAP\n"
FORMAT_NAME = "llmspy-capture"
FORMAT_VERSION = 1

FRAME = struct.Struct("<IIB")
T_HEADER, T_PROCESS, T_CHUNK, T_CLOSE, T_EXEC, T_EXIT, T_COUNTERS, T_END = range(1, 9)

# ts, pid, tid, conn, seq, offset, total_len, chunk, lost, flags, dir, comm-length
CHUNK = struct.Struct("<QIIQIQQIIBBB")
F_TRUNCATED = 1
MAX_FRAME = 64 << 20


def _frame(ftype: int, payload: bytes) -> bytes:
    tb = bytes((ftype,))
    return FRAME.pack(len(payload), zlib.crc32(payload, zlib.crc32(tb)), ftype) + payload


def encode_event(ev: CaptureEvent) -> bytes:
    if type(ev) is ChunkEvent:
        comm = ev.thread_comm.encode()[:255]
        head = CHUNK.pack(ev.ts, ev.pid, ev.tid, ev.conn, ev.seq, ev.offset, ev.total_len,
                          ev.chunk, ev.lost, F_TRUNCATED if ev.truncated else 0,
                          1 if ev.dir == "recv" else 0, len(comm))
        return _frame(T_CHUNK, head + comm + ev.data)
    if type(ev) is ProcessSeen:
        return _frame(T_PROCESS, orjson.dumps({"ts": ev.ts, **ev.info.to_json()}))
    if type(ev) is ConnClosed:
        return _frame(T_CLOSE, orjson.dumps({"ts": ev.ts, "pid": ev.pid, "conn": ev.conn}))
    if type(ev) is ProcessExec:
        return _frame(T_EXEC, orjson.dumps({"ts": ev.ts, "pid": ev.pid, "filename": ev.filename}))
    if type(ev) is ProcessExit:
        return _frame(T_EXIT, orjson.dumps({"ts": ev.ts, "pid": ev.pid}))
    if type(ev) is Counters:
        return _frame(T_COUNTERS, orjson.dumps({"ts": ev.ts, "values": ev.values}))
    raise TypeError(f"not a capture event: {type(ev).__name__}")


def _u64(value) -> int:
    """A time, pid or connection of a JSON frame: in the range the binary frames have."""
    n = int(value)
    if not 0 <= n < 1 << 64:
        raise ValueError(f"{n} is out of range")
    return n


def decode_frame(ftype: int, payload: bytes) -> CaptureEvent | None:
    if ftype == T_CHUNK:
        (ts, pid, tid, conn, seq, offset, total, chunk, lost, flags, d, clen) = CHUNK.unpack_from(payload)
        pos = CHUNK.size
        comm = payload[pos : pos + clen].decode("utf-8", "replace")
        return ChunkEvent(ts, pid, tid, conn, "recv" if d else "send", seq, offset, total,
                          payload[pos + clen :], chunk, lost, bool(flags & F_TRUNCATED), comm)
    if ftype in (T_HEADER, T_END):
        return None
    d = orjson.loads(payload)
    if not isinstance(d, dict):
        raise ValueError(f"payload is a JSON {type(d).__name__}, not an object")
    if ftype == T_PROCESS:
        info = ProcessInfo.from_json(d)
        _u64(info.pid)
        return ProcessSeen(_u64(d.get("ts", 0)), info)
    if ftype == T_CLOSE:
        return ConnClosed(_u64(d["ts"]), _u64(d["pid"]), _u64(d["conn"]))
    if ftype == T_EXEC:
        return ProcessExec(_u64(d["ts"]), _u64(d["pid"]), str(d["filename"]))
    if ftype == T_EXIT:
        return ProcessExit(_u64(d["ts"]), _u64(d["pid"]))
    if ftype == T_COUNTERS:
        values = d["values"]
        if not isinstance(values, dict):
            raise ValueError("counter values are not an object")
        return Counters(_u64(d.get("ts", 0)), {str(k): int(v) for k, v in values.items()})
    return None  # unknown frame types from a newer minor writer are skipped


def open_private(path: str) -> int:
    """Create `path` for writing: mode 0600, never through a symlink, never over an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileExistsError:
        raise UserError(f"llmspy-tui: {path} already exists; choose another name or remove it first") from None
    except OSError as e:
        raise UserError(f"llmspy-tui: cannot create {path}: {e.strerror}") from None


class Recorder:
    """Appends events to a capture file; each event is one write(2)."""

    def __init__(self, path: str) -> None:
        """Create the file now (so a bad path fails early); the header comes with start()."""
        self.path = path
        self._fd = open_private(path)
        os.fchmod(self._fd, 0o600)  # umask cannot widen it, but be explicit
        self.events = 0
        self._started = False

    def start(self, header_extra: dict | None = None) -> None:
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "tool": "llmspy-tui",
            "tool_version": __version__,
            "host": socket.gethostname(),
            "kernel": platform.release(),
            "machine": platform.machine(),
            **(header_extra or {}),
        }
        self._write(MAGIC + _frame(T_HEADER, orjson.dumps(header)))
        self._started = True

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def write(self, ev: CaptureEvent) -> None:
        self._write(encode_event(ev))
        self.events += 1

    def write_many(self, events: list[CaptureEvent]) -> None:
        for ev in events:
            self.write(ev)

    def discard(self) -> None:
        """Remove a recording that never got any data (capture failed to start)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def close(self, footer: dict | None = None) -> None:
        if self._fd < 0:
            return
        try:
            if not self._started:
                self.start()
            self._write(_frame(T_END, orjson.dumps({"events": self.events, **(footer or {})})))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1


@dataclass
class Recording:
    """What a reader learned besides the events: header, last counters, and damage found."""

    header: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
    complete: bool = False  # an end frame was found
    footer: dict = field(default_factory=dict)  # the end frame: final counters, every target
    ignored_bytes: int = 0  # incomplete or corrupt tail
    problem: str = ""


class RecordingReader:
    """Iterate the events of a capture file; damage stops iteration with a note, never an exception."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.info = Recording()
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as e:
            raise UserError(f"llmspy-tui: cannot open {path}: {e.strerror}") from None
        magic = self._f.read(len(MAGIC))
        if magic != MAGIC:
            self._f.close()
            raise UserError(f"llmspy-tui: {path} is not an llmspy-tui capture file")
        first = self._read_frame()
        if first is None or first[0] != T_HEADER:
            self._f.close()
            raise UserError(f"llmspy-tui: {path} has no readable header ({self.info.problem or 'empty'})")
        try:
            self.info.header = orjson.loads(first[1])
        except orjson.JSONDecodeError:
            self.info.header = None
        if not isinstance(self.info.header, dict):
            self._f.close()
            raise UserError(f"llmspy-tui: {path} has a corrupt header")
        version = self.info.header.get("version")
        if self.info.header.get("format") != FORMAT_NAME or not isinstance(version, int):
            self._f.close()
            raise UserError(f"llmspy-tui: {path} is not an llmspy-tui capture file")
        if version > FORMAT_VERSION:
            self._f.close()
            raise UserError(
                f"llmspy-tui: {path} is format version {version}; this llmspy-tui reads up to "
                f"{FORMAT_VERSION}. Upgrade llmspy-tui to replay it."
            )

    def _read_frame(self) -> tuple[int, bytes] | None:
        start = self._f.tell()
        head = self._f.read(FRAME.size)
        if not head:
            return None
        if len(head) < FRAME.size:
            return self._damage(start, "incomplete frame header at the end")
        length, crc, ftype = FRAME.unpack(head)
        if length > MAX_FRAME:
            return self._damage(start, f"frame length {length} out of range")
        payload = self._f.read(length)
        if len(payload) < length:
            return self._damage(start, "incomplete last frame (recording was cut off)")
        if zlib.crc32(payload, zlib.crc32(bytes((ftype,)))) != crc:
            return self._damage(start, "checksum mismatch")
        return ftype, payload

    def _damage(self, start: int, what: str) -> None:
        end = os.fstat(self._f.fileno()).st_size
        self.info.ignored_bytes = end - start
        self.info.problem = f"{what}: ignored {end - start} bytes from offset {start}"
        self._f.seek(end)
        return None

    def __iter__(self) -> Iterator[CaptureEvent]:
        try:
            while True:
                fr = self._read_frame()
                if fr is None:
                    return
                ftype, payload = fr
                if ftype == T_END:
                    self.info.complete = True
                    try:
                        self.info.footer = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        self.info.problem = "undecodable end frame"
                    continue
                try:
                    ev = decode_frame(ftype, payload)
                except (orjson.JSONDecodeError, struct.error, KeyError, TypeError, ValueError, RecursionError) as e:
                    self.info.problem = f"undecodable frame of type {ftype} skipped ({e})"
                    continue
                if ev is None:
                    continue
                if type(ev) is Counters:
                    self.info.counters = ev.values
                yield ev
        finally:
            self._f.close()
