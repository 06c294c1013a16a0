"""From capture events to protocol events: one entry point for the whole protocol layer.

ProtocolTracker keeps, per connection, the byte stream of each direction (reassembled by
offset; what is missing becomes a StreamGap, never glued bytes), works out what the connection
speaks and which side the traced process is on, and feeds an HTTP/1 or HTTP/2 parser. It never
raises: an unexpected error in a parser is reported as a notice and that connection is dropped.

A batch is parsed one connection at a time: a connection's chunks in their order, those of one
direction in a row handed to the parser as one run (they parse as if they came one by one, at
their own times, with one call per run instead of per chunk). Every output is tagged with the
batch position of the event it comes of and put back in batch order, so what comes out is what
feeding the events one by one gives, whatever the batches. feed() and feed_many() return the
public events; feed_raw() and finish_raw(), for the pipeline, leave body output in its bulk
form (BodyFlush), coalesced per body over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..capture.events import RECV, SEND, ChunkEvent, ConnClosed, ProcessExit, conn_id
from .body import Limits, Out
from .events import ConnectionDetected, ConnectionEnd, ProtocolNotice, StreamGap, expand
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
        self._out = Out()  # every parser puts its output here
        self.internal_errors = 0

    # -- input -----------------------------------------------------------------------------
    def feed(self, ev) -> list:
        """One capture event; the protocol events it completes."""
        return self.feed_many((ev,))

    def feed_many(self, events) -> list:
        """Capture events in order; the protocol events they complete, in order."""
        self._out.coalesce = False
        self._events(events if isinstance(events, (list, tuple)) else list(events))
        return expand(self._out.take())

    def feed_raw(self, events: list) -> list:
        """As feed_many, with body output as BodyFlush records, one per body and batch (and
        per stretch between other events of the same connection)."""
        self._out.coalesce = True
        self._events(events)
        return self._out.take()

    def finish(self, ts: int) -> list:
        """End of the capture: every open message ends, incomplete where it was cut off."""
        return expand(self.finish_raw(ts))

    def finish_raw(self, ts: int) -> list:
        for key in list(self._conns):
            self._close(self._conns.pop(key), ts, "end of capture")
        return self._out.take()

    def _events(self, events) -> None:
        """The batch, one connection at a time: each connection's chunks in their order, in runs
        of one direction (the two directions of a connection depend on each other). Output is
        tagged with the index of the event it comes of and put back in batch order by Out."""
        out = self._out
        groups: dict[tuple[int, int], list[int]] = {}  # connection -> indices of its chunks
        for i, ev in enumerate(events):
            t = type(ev)
            if t is ChunkEvent:
                key = (ev.pid, ev.conn)
                g = groups.get(key)
                if g is None:
                    groups[key] = [i]
                else:
                    g.append(i)
            elif t is ConnClosed:
                g = groups.pop((ev.pid, ev.conn), None)
                if g is not None:
                    self._group(events, g)
                c = self._conns.pop((ev.pid, ev.conn), None)
                if c is not None:
                    out.tag = i
                    self._close(c, ev.ts, "closed")
            elif t is ProcessExit:
                for key in [k for k in groups if k[0] == ev.pid]:
                    self._group(events, groups.pop(key))
                out.tag = i
                for key in [k for k in self._conns if k[0] == ev.pid]:
                    self._close(self._conns.pop(key), ev.ts, "process exit")
        for g in groups.values():
            self._group(events, g)

    def _group(self, events: list, idxs: list[int]) -> None:
        """Chunks of one connection (indices into events), in order. Their bytes go to the
        parser in runs of one direction that no gap interrupts."""
        first = events[idxs[0]]
        c = self._conn(first)
        if c.given_up:
            return
        out = self._out
        direction = first.dir
        d = c.dirs[direction]
        expected = d.expected
        datas: list[bytes] = []
        run: list[int] = []  # indices of the chunks in datas
        ts = first.ts
        try:
            for i in idxs:
                ev = events[i]
                data = ev.data
                if ev.dir != direction:
                    d.expected = expected
                    if datas:
                        self._data(c, direction, d, datas, [events[j].ts for j in run], run)
                        datas, run = [], []
                    direction = ev.dir
                    d = c.dirs[direction]
                    expected = d.expected
                if data and ev.offset == expected and not ev.lost and not ev.truncated:  # the usual
                    expected += len(data)
                    datas.append(data)
                    run.append(i)
                    continue
                ts = ev.ts
                d.expected = expected
                if datas:
                    self._data(c, direction, d, datas, [events[j].ts for j in run], run)
                    datas, run = [], []
                if ev.lost or ev.truncated or not data:
                    end = ev.offset + ev.lost
                    if ev.lost and end > d.expected:
                        start = max(ev.offset, d.expected)
                        out.tag = i
                        self._gap(c, direction, d, start, end - start, ts)
                elif ev.offset > d.expected:
                    out.tag = i
                    self._gap(c, direction, d, d.expected, ev.offset - d.expected, ts)
                    d.expected += len(data)
                    datas.append(data)
                    run.append(i)
                else:
                    overlap = d.expected - ev.offset
                    if overlap < len(data):  # else already seen
                        data = data[overlap:]
                        d.expected += len(data)
                        self._data(c, direction, d, [data], [ts], [i])
                expected = d.expected
                if c.given_up:
                    return
            d.expected = expected
            if datas:
                ts = events[run[-1]].ts
                self._data(c, direction, d, datas, [events[j].ts for j in run], run)
        except Exception as e:  # a parser bug must cost one connection, never the monitor
            self._internal_error(c, ts, e)

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

    def _gap(self, c: _Conn, direction: str, d: _Direction, start: int, length: int, ts: int) -> None:
        d.expected = start + length
        self._out.append(StreamGap(ts, c.name, c.pid, direction, start, length))
        if c.handler is not None:
            c.handler.gap(direction, length, ts)
        else:
            d.skipped += len(d.buf) - d.pos
            d.buf.clear()
            d.pos = 0

    def _data(self, c: _Conn, direction: str, d: _Direction, datas: list[bytes], tss: list[int],
              tags: list[int]) -> None:
        if c.handler is None:  # not known yet: chunk by chunk until it is
            for k in range(len(datas)):
                self._out.tag = tags[k]
                self._detect(c, direction, d, datas[k], tss[k])
                if c.handler is not None:
                    if k + 1 < len(datas):
                        c.handler.feed_run(direction, datas[k + 1 :], tss[k + 1 :], tags[k + 1 :])
                    return
            return
        c.handler.feed_run(direction, datas, tss, tags)

    def _detect(self, c: _Conn, direction: str, d: _Direction, data: bytes, ts: int) -> None:
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
