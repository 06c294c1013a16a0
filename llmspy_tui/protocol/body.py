"""One message body on its way through: de-framed bytes in; decoded data, stream items and the
message's end out. Shared by HTTP/1 and HTTP/2, which differ only in how bodies are framed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .content import make_decoder
from .events import BodyData, Headers, JsonItem, MessageEnd, SseEvent, header
from .framing import SseFramer, framer_for


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one connection's memory in check; see ProtocolTracker."""

    max_decoded_body: int = 64 * 1024 * 1024  # a decoded body stops here (decompression bombs)
    max_head: int = 256 * 1024  # HTTP/1 start line plus headers
    max_header_list: int = 1024 * 1024  # HTTP/2 decoded header block
    max_streams: int = 1000  # open HTTP/2 streams kept per connection
    resync_window: int = 256 * 1024  # bytes kept while looking for the next message


_SSE_SNIFF = re.compile(rb"(?:^|\n)(?:data|event):")


class Body:
    """State of one request or response body, appending its events to `out`."""

    __slots__ = ("out", "conn", "pid", "stream", "side", "first_ts", "last_ts", "wire", "decoded",
                 "problems", "_decoder", "_framer", "ended", "_sniff")

    def __init__(self, out: list, conn: str, pid: int, stream: int, side: str, headers: Headers,
                 first_ts: int, limits: Limits, streamable: bool = True) -> None:
        self.out = out
        self.conn, self.pid, self.stream, self.side = conn, pid, stream, side
        self.first_ts = self.last_ts = first_ts
        self.wire = 0
        self.decoded = 0
        self.problems: list[str] = []
        self.ended = False
        self._decoder = make_decoder(header(headers, "content-encoding"), limits.max_decoded_body)
        if self._decoder is not None and self._decoder.problem:
            self.problems.append(self._decoder.problem)
        self._framer = framer_for(header(headers, "content-type")) if streamable else None
        # Without headers (joined mid-stream) an event stream is recognised by its first bytes.
        self._sniff = streamable and not headers

    def data(self, chunk: bytes, ts: int) -> None:
        if not chunk:
            return
        self.last_ts = ts
        self.wire += len(chunk)
        if self._decoder is not None:
            chunk = self._decoder.feed(chunk)
        self._deliver(chunk, ts)

    def _deliver(self, chunk: bytes, ts: int) -> None:
        if not chunk:
            return
        self.decoded += len(chunk)
        if self._sniff:
            self._sniff = False
            if self._framer is None and _SSE_SNIFF.search(chunk, 0, 4096):
                self._framer = SseFramer()
        self.out.append(BodyData(ts, self.conn, self.pid, self.stream, self.side, chunk))
        if self._framer is not None:
            self._items(self._framer.feed(chunk), ts)

    def _items(self, items: list, ts: int) -> None:
        if not items:
            return
        c, p, s, side = self.conn, self.pid, self.stream, self.side
        if isinstance(self._framer, SseFramer):
            self.out.extend(SseEvent(ts, c, p, s, side, e.event, e.data, e.id, e.retry, e.terminated)
                            for e in items)
        else:
            kind = self._framer.kind
            self.out.extend(JsonItem(ts, c, p, s, side, t, kind) for t in items)

    def gap(self, length: int, ts: int) -> None:
        """`length` body bytes were not captured."""
        self.last_ts = ts
        self.wire += length
        self.problems.append(f"{length} body bytes not captured")
        if self._decoder is not None and self._decoder.active:
            self._decoder.problem = "compressed body broken by missing bytes"
        if self._framer is not None:
            self._items(self._framer.gap(), ts)

    def damaged(self, why: str, ts: int) -> None:
        """Bytes may be missing from this body, at an unknown place."""
        self.problems.append(why)
        if self._decoder is not None and self._decoder.active:
            self._decoder.problem = "compressed body broken by missing bytes"
        if self._framer is not None:
            self._items(self._framer.gap(), ts)

    def end(self, ts: int, complete: bool = True, problem: str = "", trailers: Headers = ()) -> None:
        """The message is over; `ts` is when its last byte (or the news of its end) arrived."""
        if self.ended:
            return
        self.ended = True
        if self._decoder is not None:
            self._deliver(self._decoder.finish(), ts)
            if self._decoder.capped:
                self.problems.append(f"decoded body capped at {self._decoder.cap} bytes")
            elif self._decoder.problem and self._decoder.problem not in self.problems:
                self.problems.append(self._decoder.problem)
        if self._framer is not None:
            self._items(self._framer.finish(), ts)
            if self._framer.dropped:
                self.problems.append(f"{self._framer.dropped} incomplete stream item(s) dropped")
        if problem:
            self.problems.insert(0, problem)
        ok = complete and not self.problems
        self.out.append(MessageEnd(ts, self.conn, self.pid, self.stream, self.side, self.first_ts,
                                   max(self.last_ts, ts), self.wire, self.decoded, ok,
                                   "; ".join(self.problems), trailers))
