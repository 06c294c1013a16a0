"""One message body on its way through: de-framed bytes in; decoded data, stream items and the
message's end out. Shared by HTTP/1 and HTTP/2, which differ only in how bodies are framed.

Body output goes out as BodyFlush records (see events.py). In coalescing mode (the pipeline's)
a body keeps the pieces of a batch and frames them in one go when it is flushed: at the end of
the batch, before any other event is emitted (so events keep their order), and before its own
end or a gap. Otherwise every piece is flushed as it comes, which gives the public events one
by one exactly as they arrived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .content import make_decoder
from .events import BodyFlush, Headers, MessageEnd, header
from .framing import SseFramer, framer_for


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one connection's memory in check; see ProtocolTracker."""

    max_decoded_body: int = 64 * 1024 * 1024  # a decoded body stops here (decompression bombs)
    max_head: int = 256 * 1024  # HTTP/1 start line plus headers
    max_header_list: int = 1024 * 1024  # HTTP/2 decoded header block
    max_streams: int = 1000  # open HTTP/2 streams kept per connection
    resync_window: int = 256 * 1024  # bytes kept while looking for the next message


class Out:
    """Where the parsers of one ProtocolTracker put their output.

    ProtocolTracker parses a batch one connection at a time, so every output carries a tag: the
    position in the batch of the capture event it comes of (`tag`, set by whoever is parsing),
    and take() puts them back in that order, which is the order parsing the batch event by
    event would have given. A body's coalesced output is tagged with its first piece.

    `append` is for every event but body output: it flushes the bodies holding pieces first,
    so that nothing overtakes what came before it. Bodies add their records through `put`.
    """

    __slots__ = ("items", "tags", "tag", "pending", "coalesce")

    def __init__(self) -> None:
        self.items: list = []
        self.tags: list[int] = []
        self.tag = 0
        self.pending: dict[Body, None] = {}  # bodies holding unflushed pieces, in order of first piece
        self.coalesce = False

    def append(self, ev) -> None:
        if self.pending:
            self.flush()
        self.items.append(ev)
        self.tags.append(self.tag)

    def put(self, ev, tag: int) -> None:
        self.items.append(ev)
        self.tags.append(tag)

    def flush(self) -> None:
        pending = self.pending
        for body in pending:
            body.flush()
        pending.clear()

    def take(self) -> list:
        if self.pending:
            self.flush()
        items, tags = self.items, self.tags
        self.items, self.tags = [], []
        prev = -1
        for t in tags:  # usually in order already (one connection, or one after another)
            if t < prev:
                order = sorted(range(len(items)), key=tags.__getitem__)  # stable: ties keep their order
                return [items[i] for i in order]
            prev = t
        return items


_SSE_SNIFF = re.compile(rb"(?:^|\n)(?:data|event):")


class Body:
    """State of one request or response body, putting its output in `out`."""

    __slots__ = ("out", "conn", "pid", "stream", "side", "first_ts", "last_ts", "wire", "decoded",
                 "problems", "_decoder", "_framer", "ended", "_sniff", "_pieces", "_queued", "_tag")

    def __init__(self, out: Out, conn: str, pid: int, stream: int, side: str, headers: Headers,
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
        self._pieces: list[tuple[bytes, int]] = []  # decoded, not flushed yet
        self._queued = False  # in out.pending
        self._tag = 0  # the output tag of the first piece held

    def data(self, chunk: bytes, ts: int) -> None:
        if not chunk:
            return
        self.last_ts = ts
        self.wire += len(chunk)
        if self._decoder is None and not self._sniff:  # as _deliver, inline: once per DATA frame
            self.decoded += len(chunk)
            self._pieces.append((chunk, ts))
            self._enqueue()
            return
        if self._decoder is not None:
            chunk = self._decoder.feed(chunk)
        self._deliver(chunk, ts)

    def pieces(self, pieces: list[tuple[bytes, int]]) -> None:
        """Several non-empty pieces in a row, as data() one by one would take them."""
        out = self.out
        if self._decoder is not None or self._sniff or not out.coalesce:
            for chunk, ts in pieces:
                self.data(chunk, ts)
            return
        size = 0
        for chunk, _ in pieces:
            size += len(chunk)
        self.wire += size
        self.decoded += size
        self.last_ts = pieces[-1][1]
        self._pieces += pieces
        if not self._queued:
            self._tag = out.tag
            self._queued = True
            out.pending[self] = None

    def _deliver(self, chunk: bytes, ts: int) -> None:
        if not chunk:
            return
        self.decoded += len(chunk)
        if self._sniff:
            self._sniff = False
            if self._framer is None and _SSE_SNIFF.search(chunk, 0, 4096):
                self._framer = SseFramer()
        self._pieces.append((chunk, ts))
        self._enqueue()

    def _enqueue(self) -> None:
        """After a piece was added: flush now, or join this batch's pending bodies (coalescing)."""
        if self._queued:
            return
        out = self.out
        self._tag = out.tag
        if not out.coalesce:
            self.flush()
            return
        self._queued = True
        out.pending[self] = None

    def flush(self) -> None:
        """Frame the pieces held and hand them on."""
        self._queued = False
        pieces = self._pieces
        if pieces:
            self._pieces = []
            if self._framer is None:
                self._emit(pieces, None)
            else:
                items, joined = self._frame(self._framer, pieces)
                self._emit(pieces, items, joined)

    def _emit(self, pieces: list, items: list | None, joined: bytes | None = None) -> None:
        framer = self._framer
        self.out.put(BodyFlush(self.conn, self.pid, self.stream, self.side, pieces, items,
                               framer.kind if framer is not None else "", joined), self._tag)

    @staticmethod
    def _frame(framer, pieces: list) -> tuple[list, bytes | None]:
        """(stream items of the pieces, each stamped with the time of the piece that completed
        it; the pieces joined, if that was done)."""
        if type(framer) is not SseFramer:
            out = []
            for k, (data, ts) in enumerate(pieces):
                out += [(ts, "", t, None, None, True, k) for t in framer.feed(data)]
            return out, None
        if len(pieces) == 1:
            data, ts = pieces[0]
            items = framer.feed_items(data, [len(data)], [ts])
            if items is not None:
                return items, None
            return [(ts, e, d, i, r, True, 0) for _, e, d, i, r in framer.feed_raw(data)], None
        joined = b"".join([p[0] for p in pieces])
        ends = []
        size = 0
        for data, _ in pieces:
            size += len(data)
            ends.append(size)
        items = framer.feed_items(joined, ends, [p[1] for p in pieces])
        if items is not None:
            return items, joined
        # A CR at the end of a piece may be half a CRLF, so when it ends a line depends on the
        # next piece: with CRs about, or at the start, pieces go one at a time, as they came.
        out = []
        for k, (data, ts) in enumerate(pieces):
            out += [(ts, e, d, i, r, True, k) for _, e, d, i, r in framer.feed_raw(data)]
        return out, joined

    def _flush_before(self) -> None:
        """Everything held so far (by any body) goes out before what is about to happen here."""
        if self.out.pending:
            self.out.flush()

    def gap(self, length: int, ts: int) -> None:
        """`length` body bytes were not captured."""
        self._flush_before()
        self.last_ts = ts
        self.wire += length
        self.problems.append(f"{length} body bytes not captured")
        if self._decoder is not None and self._decoder.active:
            self._decoder.problem = "compressed body broken by missing bytes"
        if self._framer is not None:
            self._framer.gap()

    def damaged(self, why: str, ts: int) -> None:
        """Bytes may be missing from this body, at an unknown place."""
        self._flush_before()
        self.problems.append(why)
        if self._decoder is not None and self._decoder.active:
            self._decoder.problem = "compressed body broken by missing bytes"
        if self._framer is not None:
            self._framer.gap()

    def end(self, ts: int, complete: bool = True, problem: str = "", trailers: Headers = ()) -> None:
        """The message is over; `ts` is when its last byte (or the news of its end) arrived."""
        if self.ended:
            return
        self.ended = True
        self._flush_before()
        if self._decoder is not None:
            self._deliver(self._decoder.finish(), ts)
            if self._decoder.capped:
                self.problems.append(f"decoded body capped at {self._decoder.cap} bytes")
            elif self._decoder.problem and self._decoder.problem not in self.problems:
                self.problems.append(self._decoder.problem)
        framer = self._framer
        if framer is not None:
            # the decoder's tail, if held, then whatever the end completes: one record
            pieces, self._pieces = self._pieces, []
            if self._queued:
                self._queued = False
                self.out.pending.pop(self, None)
            items, joined = self._frame(framer, pieces) if pieces else ([], None)
            k = len(pieces)  # after every piece
            if type(framer) is SseFramer:
                items += [(ts, e, d, i, r, False, k) for _, e, d, i, r in framer.finish_raw()]
            else:
                items += [(ts, "", t, None, None, True, k) for t in framer.finish()]
            if pieces or items:
                self._tag = self.out.tag  # all of it happens now, at the end
                self._emit(pieces, items, joined)
            if framer.dropped:
                self.problems.append(f"{framer.dropped} incomplete stream item(s) dropped")
        elif self._pieces:
            self.flush()
        if problem:
            self.problems.insert(0, problem)
        ok = complete and not self.problems
        self.out.append(MessageEnd(ts, self.conn, self.pid, self.stream, self.side, self.first_ts,
                                   max(self.last_ts, ts), self.wire, self.decoded, ok,
                                   "; ".join(self.problems), trailers))
