"""From capture events to protocol events: one entry point for the whole protocol layer.

ProtocolTracker keeps, per connection, the byte stream of each direction (reassembled by
offset; what is missing becomes a StreamGap, never glued bytes), works out what the connection
speaks and which side the traced process is on, and feeds an HTTP/1 or HTTP/2 parser. It never
raises: an unexpected error in a parser is reported as a notice and that connection is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..capture.events import RECV, SEND, ChunkEvent, ConnClosed, ProcessExit, conn_id
from .body import Limits
from .events import ConnectionDetected, ConnectionEnd, ProtocolNotice, StreamGap
from .http1 import Http1Connection
from .http2 import H2Connection
from .sync import WAIT, Finder

_OTHER = {SEND: RECV, RECV: SEND}


@dataclass(slots=True)
class _Direction:
    expected: int = 0  # next stream offset
    buf: bytearray = field(default_factory=bytearray)  # held while the protocol is unknown
    pos: int = 0
    skipped: int = 0


class _Conn:
    __slots__ = ("name", "pid", "dirs", "handler", "given_up", "finder")

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.pid = pid
        self.dirs = {SEND: _Direction(), RECV: _Direction()}
        self.handler = None
        self.given_up = False
        self.finder = Finder(request=True, status=True, h2=True)


class ProtocolTracker:
    """Sans-IO: feed() capture events, get protocol events back. Single-threaded by design."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._conns: dict[tuple[int, int], _Conn] = {}
        self._generation: dict[tuple[int, int], int] = {}
        self._out: list = []  # every parser appends here; each feed() hands over a copy
        self.internal_errors = 0

    # -- input -----------------------------------------------------------------------------
    def feed(self, ev) -> list:
        t = type(ev)
        if t is ChunkEvent:
            self._chunk(ev)
        elif t is ConnClosed:
            c = self._conns.pop((ev.pid, ev.conn), None)
            if c is not None:
                self._close(c, ev.ts, "closed")
        elif t is ProcessExit:
            for key in [k for k in self._conns if k[0] == ev.pid]:
                self._close(self._conns.pop(key), ev.ts, "process exit")
        return self._take()

    def feed_many(self, events) -> list:
        out: list = []
        for ev in events:
            out.extend(self.feed(ev))
        return out

    def finish(self, ts: int) -> list:
        """End of the capture: every open message ends, incomplete where it was cut off."""
        for key in list(self._conns):
            self._close(self._conns.pop(key), ts, "end of capture")
        return self._take()

    def _take(self) -> list:
        if not self._out:
            return []
        out = self._out.copy()  # parsers and bodies hold this very list: empty it, keep it
        self._out.clear()
        return out

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # -- connections -----------------------------------------------------------------------
    def _conn(self, ev: ChunkEvent) -> _Conn:
        key = (ev.pid, ev.conn)
        c = self._conns.get(key)
        if c is None:
            gen = self._generation.get(key, 0)
            self._generation[key] = gen + 1
            name = conn_id(ev.pid, ev.conn) + (f".{gen}" if gen else "")
            c = self._conns[key] = _Conn(name, ev.pid)
        return c

    def _chunk(self, ev: ChunkEvent) -> None:
        c = self._conn(ev)
        if c.given_up:
            return
        d = c.dirs[ev.dir]
        try:
            if ev.lost or ev.truncated or not ev.data:
                end = ev.offset + ev.lost
                if ev.lost and end > d.expected:
                    start = max(ev.offset, d.expected)
                    self._gap(c, ev.dir, d, start, end - start, ev.ts)
                return
            data = ev.data
            if ev.offset > d.expected:
                self._gap(c, ev.dir, d, d.expected, ev.offset - d.expected, ev.ts)
            elif ev.offset < d.expected:
                overlap = d.expected - ev.offset
                if overlap >= len(data):
                    return  # already seen
                data = data[overlap:]
            d.expected += len(data)
            self._data(c, ev.dir, d, data, ev.ts)
        except Exception as e:  # a parser bug must cost one connection, never the monitor
            self._internal_error(c, ev.ts, e)

    def _gap(self, c: _Conn, direction: str, d: _Direction, start: int, length: int, ts: int) -> None:
        d.expected = start + length
        self._out.append(StreamGap(ts, c.name, c.pid, direction, start, length))
        if c.handler is not None:
            c.handler.gap(direction, length, ts)
        else:
            d.skipped += len(d.buf) - d.pos
            d.buf.clear()
            d.pos = 0

    def _data(self, c: _Conn, direction: str, d: _Direction, data: bytes, ts: int) -> None:
        if c.handler is not None:
            c.handler.feed(direction, data, ts)
            return
        d.buf += data
        kind, at = c.finder.find(d.buf, d.pos)
        if kind is None or kind == WAIT:
            if at > d.pos:
                d.skipped += at - d.pos
                d.pos = at
            if d.pos > self.limits.resync_window:
                del d.buf[: d.pos]
                d.pos = 0
            return
        self._detected(c, direction, kind, at, ts)

    def _detected(self, c: _Conn, direction: str, kind: str, at: int, ts: int) -> None:
        d = c.dirs[direction]
        other_dir = _OTHER[direction]
        other = c.dirs[other_dir]
        skipped = d.skipped + at - d.pos
        # Seen from its start: nothing came before the message start in either direction.
        from_start = skipped == 0 and other.skipped == 0 and other.pos == 0
        if kind in ("h1-request", "h2-preface"):
            client_dir = direction
        elif kind == "h1-status":
            client_dir = other_dir
        else:  # HTTP/2 frames without a preface: the process is taken for the client
            client_dir = SEND
        if kind in ("h1-request", "h1-status"):
            synced = {direction: True, other_dir: from_start}
            handler = Http1Connection(self._out, c.name, c.pid, client_dir, self.limits, synced)
        else:
            preface = kind == "h2-preface"
            synced = {direction: True, other_dir: preface and from_start}
            handler = H2Connection(self._out, c.name, c.pid, client_dir, self.limits, synced, preface)
        mid = not from_start or kind == "h2-frames"
        self._out.append(ConnectionDetected(ts, c.name, c.pid, handler.protocol,
                                            "client" if client_dir == SEND else "server", mid))
        if skipped:
            self._out.append(ProtocolNotice(ts, c.name, c.pid,
                                            f"joined mid-connection: skipped {skipped} bytes "
                                            f"({direction})"))
        c.handler = handler
        held = {direction: bytes(d.buf[at:]), other_dir: bytes(other.buf[other.pos:])}
        for dd in (d, other):
            dd.buf = bytearray()
            dd.pos = 0
        for name in (client_dir, _OTHER[client_dir]):  # requests first, so responses pair up
            if held[name]:
                handler.feed(name, held[name], ts)

    def _close(self, c: _Conn, ts: int, reason: str) -> None:
        try:
            if c.handler is not None:
                c.handler.close(ts, reason)
            elif not c.given_up:
                held = sum(d.skipped + len(d.buf) - d.pos for d in c.dirs.values())
                if held:
                    self._out.append(ProtocolNotice(ts, c.name, c.pid,
                                                    f"{held} bytes that were not recognised as HTTP"))
        except Exception as e:
            self._internal_error(c, ts, e)
        self._out.append(ConnectionEnd(ts, c.name, c.pid, reason))

    def _internal_error(self, c: _Conn, ts: int, e: Exception) -> None:
        self.internal_errors += 1
        c.given_up = True
        c.handler = None
        self._out.append(ProtocolNotice(ts, c.name, c.pid,
                                        f"internal error, connection no longer followed: "
                                        f"{type(e).__name__}: {e}"))
