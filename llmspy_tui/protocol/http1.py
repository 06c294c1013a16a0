"""Passive HTTP/1.x: both directions of a connection, parsed from the outside.

h11 and httptools are endpoints (one role, strict, stop at the first error); a monitor has to
follow both sides of a pipelined connection, survive garbage and lost bytes, and pick up a
connection in the middle. Hence this small parser: Content-Length, chunked with trailers,
keep-alive, pipelining, 1xx and 100-continue, bodiless responses (HEAD, 204, 304),
close-delimited bodies, upgrades and CONNECT tunnels (whose bytes are then left alone).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import accumulate

from .body import Body, Limits
from .events import (REQUEST, RESPONSE, Headers, ProtocolNotice, RequestHead, ResponseHead, connection_ended,
                     header)
from .sync import REQUEST_LINE, STATUS_LINE, WAIT, Finder

# side states
HEAD, BODY_LEN, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, BODY_CLOSE, RESYNC, OPAQUE, HEAD_SKIP = range(10)

_COMPACT_AT = 64 * 1024
_FAST = frozenset({BODY_LEN, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS})


@dataclass(slots=True)
class _Pending:
    stream: int
    method: str
    first_ts: int
    expect_continue: bool


class _Side:
    """One direction: requests (client side) or responses (server side).

    A batch's bytes of this direction arrive together (feed_run) and are parsed as one buffer
    (in place when nothing was held over), but the parser behaves as if they came chunk by
    chunk, as they were captured: `lim` is the end of the chunk being looked at, nothing past it
    is read, and `ts` of what happens is that chunk's. Only body bytes and chunked framing are
    taken across chunks in one go (_fast), where the outcome is the same either way: each piece
    still carries the time of the chunk it came in.
    """

    def __init__(self, conn: "Http1Connection", is_request: bool, synced: bool) -> None:
        self.c = conn
        self.is_request = is_request
        self.side = REQUEST if is_request else RESPONSE
        self.buf = bytearray()
        self.pos = 0
        self.lim = 0  # end of the bytes arrived so far (of the chunk being parsed, in feed_run)
        self.state = HEAD if synced else RESYNC
        self.head_ts: int | None = None  # ts of the first byte of the head being collected
        self.head_scan = 0  # where the search for the head's end resumes
        self.remaining = 0
        self.body: Body | None = None
        self.skipped = 0  # bytes passed over while resyncing, not yet reported
        self.long_head: tuple[bytes, int, int] | None = None  # HEAD_SKIP: (head kept, its ts, bytes dropped)
        self.finder = Finder(request=is_request, status=not is_request, h2=False)

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes, ts: int) -> None:
        self.feed_run([data], [ts], [self.c.out.tag])

    def feed_run(self, datas: list[bytes], tss: list[int], tags: list[int]) -> None:
        """Consecutive chunks of this direction (no gap between them), with their times and
        output tags (see Out)."""
        if self.state == OPAQUE:
            return
        buf, start = _run_buffer(self, datas)
        if len(datas) == 1:
            ends = [len(buf)]
        else:
            ends = list(accumulate(map(len, datas), initial=start))
            del ends[0]
        n = len(ends)
        out = self.c.out
        k = 0
        try:
            while k < n:
                if self.state in _FAST and self.body is not None:
                    k = self._fast(ends, tss, tags, k)
                    if k == n:
                        break
                self.lim = ends[k]
                out.tag = tags[k]
                self._run(tss[k])
                if self.state == OPAQUE:
                    self.pos = len(buf)  # the rest is not HTTP/1: dropped, as later chunks will be
                    break
                k += 1
        finally:
            _keep_rest(self)

    def _run(self, ts: int) -> None:
        while self.pos < self.lim:
            st = self.state
            if st == HEAD:
                if not self._head(ts):
                    return
            elif st == BODY_LEN or st == CHUNK_DATA:
                self._take_body(ts)
            elif st == CHUNK_SIZE:
                if not self._chunk_size(ts):
                    return
            elif st == CHUNK_END:
                if not self._chunk_end(ts):
                    return
            elif st == TRAILERS:
                if not self._trailers(ts):
                    return
            elif st == BODY_CLOSE:
                self.body.data(bytes(self.buf[self.pos : self.lim]), ts)
                self.pos = self.lim
            elif st == RESYNC:
                if not self._resync(ts):
                    return
            elif st == HEAD_SKIP:
                if not self._skip_head(ts):
                    return
            else:  # OPAQUE
                self.pos = self.lim

    def _fast(self, ends: list[int], tss: list[int], tags: list[int], k: int) -> int:
        """Body bytes and chunked framing straight through the rest of the run, for as long as
        nothing unusual happens; returns the index of the chunk to go on with, chunk by chunk
        (len(ends) when everything was consumed).

        Equivalent to parsing chunk by chunk because every step here is one the chunk-by-chunk
        parser takes the same way once its bytes are there, and each step's time is that of
        the chunk holding its last byte: a body piece never spans chunks, a chunk-size line is
        taken only when short enough that no partial view of it could have been refused, and
        anything else (errors, trailers, heads) is left to _run.
        """
        buf = self.buf
        pos = self.pos
        end = ends[-1]
        n = len(ends)
        state = self.state
        pieces: list[tuple[bytes, int]] = []  # for the body, handed over in one call
        piece_k: list[int] = []  # the chunk of each piece
        with memoryview(buf) as view:
            while pos < end:
                if state == CHUNK_SIZE:
                    nl = buf.find(b"\n", pos, pos + 4097)
                    if nl < 0:
                        break
                    line = buf[pos:nl]
                    if b";" in line:
                        line = line.split(b";", 1)[0]
                    try:
                        size = int(line, 16)
                    except ValueError:
                        break
                    if size <= 0:
                        if size < 0:
                            break
                        pos = nl + 1
                        state = TRAILERS
                        self.head_scan = pos
                        continue
                    start = nl + 1
                    stop = start + size
                    if stop + 2 <= end and buf[stop] == 0x0D and buf[stop + 1] == 0x0A:
                        # the usual: a whole chunk and its CRLF
                        while ends[k] <= start:
                            k += 1
                        while ends[k] < stop:  # data across capture chunks: a piece per chunk
                            pieces.append((view[start : ends[k]].tobytes(), tss[k]))
                            piece_k.append(k)
                            start = ends[k]
                            k += 1
                        pieces.append((view[start:stop].tobytes(), tss[k]))
                        piece_k.append(k)
                        pos = stop + 2
                        continue
                    pos = start
                    state = CHUNK_DATA
                    self.remaining = size
                elif state == BODY_LEN or state == CHUNK_DATA:
                    stop = pos + self.remaining
                    if stop > end:
                        stop = end
                    self.remaining -= stop - pos
                    while pos < stop:
                        while ends[k] <= pos:
                            k += 1
                        e = ends[k] if ends[k] < stop else stop
                        pieces.append((view[pos:e].tobytes(), tss[k]))
                        piece_k.append(k)
                        pos = e
                    if self.remaining or state == BODY_LEN:
                        break  # more to come, or the body is whole (below)
                    state = CHUNK_END
                elif state == CHUNK_END:
                    c = buf[pos]
                    if c == 0x0D and pos + 1 < end and buf[pos + 1] == 0x0A:
                        pos += 2
                    elif c == 0x0A:
                        pos += 1
                    else:
                        break
                    state = CHUNK_SIZE
                elif state == TRAILERS:  # only the usual end: no trailers
                    c = buf[pos]
                    if c == 0x0A:
                        pos += 1
                    elif c == 0x0D and pos + 1 < end and buf[pos + 1] == 0x0A:
                        pos += 2
                    else:
                        break
                    state = HEAD  # ended: below
                    break
                else:
                    break
        out = self.c.out
        if pieces:
            if out.coalesce:
                out.tag = tags[piece_k[0]]
                self.body.pieces(pieces)
            else:  # one by one, each tagged with its own chunk
                for (chunk, ts), j in zip(pieces, piece_k):
                    out.tag = tags[j]
                    self.body.data(chunk, ts)
        self.pos = pos
        if state == HEAD or (state == BODY_LEN and not self.remaining):
            while ends[k] < pos:  # the chunk holding the body's last byte
                k += 1
            out.tag = tags[k]
            self._finish_body(tss[k])
        else:
            self.state = state
        while k < n and ends[k] <= pos:
            k += 1
        return k

    # -- heads -----------------------------------------------------------------------------
    def _head(self, ts: int) -> bool:
        buf, pos = self.buf, self.pos
        if self.head_ts is None:  # a new head starts at pos, in this chunk
            self.head_ts = ts
            self.head_scan = pos
        end = _find_blank_line(buf, max(pos, self.head_scan - 3), self.lim)
        max_head = self.c.limits.max_head
        if end < 0 and self.lim - pos <= max_head:
            self.head_scan = self.lim
            return False
        if end < 0 or end - pos > max_head:  # too long: what fits is kept, if it is a head at all
            return self._long_head(ts)
        head = bytes(buf[pos:end])
        head_ts, self.head_ts = self.head_ts, None
        self.pos = end
        return self._parsed_head(head, head_ts, ts)

    def _parsed_head(self, head: bytes, head_ts: int, ts: int, problem: str = "") -> bool:
        lines = head.split(b"\n")
        start = lines[0] + b"\n"
        m = (REQUEST_LINE if self.is_request else STATUS_LINE).fullmatch(start)
        if m is None:  # (a head read whole: a long one's start line was checked already)
            self.pos -= len(head)  # not a start line after all: look for one from here on
            self._lose_sync(ts, "unparseable " + ("request line" if self.is_request else "status line"))
            return True
        headers = _parse_fields(lines[1:])
        if self.is_request:
            self.c.request_head(self, m, headers, head_ts, ts, problem)
        else:
            self.c.response_head(self, m, headers, head_ts, ts, problem)
        return True

    def _long_head(self, ts: int) -> bool:
        """A head over the limit: its start line and the header lines that fit are kept, the rest
        of it is passed over (HEAD_SKIP), then the message goes on as its kept headers say."""
        buf, pos = self.buf, self.pos
        what = "request" if self.is_request else "response"
        max_head = self.c.limits.max_head
        nl = buf.find(b"\n", pos, min(pos + max_head, self.lim))
        pattern = REQUEST_LINE if self.is_request else STATUS_LINE
        if nl < 0 or pattern.fullmatch(buf, pos, nl + 1) is None:
            self._lose_sync(ts, f"{what} head over {max_head} bytes")
            return True
        cut = buf.rfind(b"\n", pos, pos + max_head) + 1  # after the last whole line that fits
        self.long_head = (bytes(buf[pos:cut]), self.head_ts, 0)
        self.head_ts = None
        self.pos = cut - 1  # from its line feed: the blank line may follow right away
        self.state = HEAD_SKIP
        return True

    def _skip_head(self, ts: int) -> bool:
        """Passing over the rest of a head too long to keep, up to the blank line that ends it."""
        buf, pos, lim = self.buf, self.pos, self.lim
        kept, head_ts, dropped = self.long_head
        end = _find_blank_line(buf, pos, lim)
        if end < 0:  # keep the last two bytes: the blank line may begin in them
            skip = max(0, lim - 2 - pos)
            self.pos += skip
            self.long_head = (kept, head_ts, dropped + skip)
            return False
        # from the kept head's last line feed to the end of the blank line: neither is a header
        dropped += end - pos - 1 - (2 if buf[end - 2] == 0x0D else 1)
        self.pos = end
        self.state = HEAD
        self.long_head = None
        limit = self.c.limits.max_head
        what = "request" if self.is_request else "response"
        self.c.notice(ts, f"{what} side: {what} head over {limit} bytes: {dropped} bytes of headers past "
                          "the limit not kept")
        return self._parsed_head(kept, head_ts, ts, f"{dropped} bytes of headers over the {limit}-byte "
                                                    "limit not kept")

    # -- bodies ----------------------------------------------------------------------------
    def start_body(self, body: Body | None, framing: str, ts: int, length: int = 0) -> None:
        """framing: "none", "length", "chunked", "close" or "opaque"; `ts`: the head's end."""
        self.body = body
        if framing == "length" and length > 0:
            self.state, self.remaining = BODY_LEN, length
        elif framing == "chunked":
            self.state = CHUNK_SIZE
        elif framing == "close":
            self.state = BODY_CLOSE
        elif framing == "opaque":
            if body is not None:
                body.end(ts)
            self.body = None
            self.state = OPAQUE
        else:
            if body is not None:
                body.end(ts)
            self.body = None
            self.state = HEAD

    def _finish_body(self, ts: int, trailers: Headers = ()) -> None:
        if self.body is not None:
            self.body.end(ts, trailers=trailers)
        self.body = None
        self.state = HEAD
        self.head_ts = None

    def _take_body(self, ts: int) -> None:
        """Body bytes of a known length: a Content-Length body or one chunk's data."""
        n = min(self.remaining, self.lim - self.pos)
        self.body.data(bytes(self.buf[self.pos : self.pos + n]), ts)
        self.pos += n
        self.remaining -= n
        if self.remaining == 0:
            self._length_done(ts)

    def _length_done(self, ts: int) -> None:
        if self.state == BODY_LEN:
            self._finish_body(ts)
        else:
            self.state = CHUNK_END

    def _chunk_size(self, ts: int) -> bool:
        end = self.buf.find(b"\n", self.pos, self.lim)
        if end < 0:
            if self.lim - self.pos > 4096:
                self._body_broken(ts, "bad chunk size line")
                return True  # go on looking for the next message in what is buffered
            return False
        line = bytes(self.buf[self.pos : end]).split(b";", 1)[0].strip()
        try:
            size = int(line, 16)
            if size < 0 or not line:
                raise ValueError
        except ValueError:
            self._body_broken(ts, "bad chunk size line")
            return True
        self.pos = end + 1
        if size == 0:
            self.state = TRAILERS
            self.head_scan = self.pos
        else:
            self.state, self.remaining = CHUNK_DATA, size
        return True

    def _chunk_end(self, ts: int) -> bool:
        buf, pos = self.buf, self.pos
        if buf[pos] == 0x0A:
            self.pos += 1
        elif buf[pos] == 0x0D:
            if pos + 1 >= self.lim:
                return False
            if buf[pos + 1] != 0x0A:
                self._body_broken(ts, "chunk not followed by CRLF")
                return True
            self.pos += 2
        else:
            self._body_broken(ts, "chunk not followed by CRLF")
            return True
        self.state = CHUNK_SIZE
        return True

    def _trailers(self, ts: int) -> bool:
        buf, pos = self.buf, self.pos
        # no trailers: the last chunk is followed by an empty line right away
        lim = self.lim
        if buf[pos] == 0x0A or buf[pos : min(pos + 2, lim)] == b"\r\n":
            self.pos += 1 if buf[pos] == 0x0A else 2
            self._finish_body(ts)
            return True
        if buf[pos] == 0x0D and pos + 1 == lim:
            return False
        end = _find_blank_line(buf, max(pos, self.head_scan - 3), lim)
        if end < 0:
            if lim - pos > self.c.limits.max_head:
                self._body_broken(ts, "trailers too long")
                return True
            self.head_scan = lim
            return False
        trailers = _parse_fields(bytes(buf[pos:end]).split(b"\n"))
        self.pos = end
        self._finish_body(ts, trailers)
        return True

    def _body_broken(self, ts: int, why: str) -> None:
        if self.body is not None:
            self.body.end(ts, complete=False, problem=why)
            self.body = None
        self._lose_sync(ts, why)

    # -- losing and finding our place --------------------------------------------------------
    def _lose_sync(self, ts: int, why: str) -> None:
        if self.state != RESYNC:
            self.c.notice(ts, f"{self.side} side: {why}; looking for the next "
                              f"{'request' if self.is_request else 'response'}")
        if self.body is not None:
            self.body.end(ts, complete=False, problem=why)
            self.body = None
        self.state = RESYNC
        self.head_ts = None
        if self.pos < self.lim:  # what failed at pos is not a start: search past it
            self.pos += 1
            self.skipped += 1

    def _resync(self, ts: int) -> bool:
        buf = self.buf
        kind, at = self.finder.find(buf, self.pos, end=self.lim)
        if kind is None or kind == WAIT:
            if at > self.pos:
                self.skipped += at - self.pos
                self.pos = at
            return False
        if kind == "h2-preface":  # HTTP/2 after all (prior knowledge on a reused connection)
            self.c.notice(ts, "HTTP/2 preface inside an HTTP/1 connection: not followed")
            self.state = OPAQUE
            self.pos = self.lim
            return False
        self.skipped += at - self.pos
        if self.skipped:
            self.c.notice(ts, f"{self.side} side: skipped {self.skipped} bytes that were not the "
                              f"start of a {'request' if self.is_request else 'response'}")
        self.skipped = 0
        self.pos = at
        self.state = HEAD
        self.head_ts = None
        return True

    def gap(self, length: int, ts: int) -> None:
        """`length` bytes of this direction were lost at the current end of the buffer."""
        if self.state == OPAQUE:
            return
        unparsed = len(self.buf) - self.pos
        if self.state in (BODY_LEN, CHUNK_DATA) and unparsed == 0 and length <= self.remaining:
            self.body.gap(length, ts)  # the framing still tells where the body ends
            self.remaining -= length
            if self.remaining == 0:
                self._length_done(ts)
            return
        if self.state == BODY_CLOSE:
            self.body.gap(length, ts)
            return
        if self.body is not None:
            self.body.gap(min(length, self.remaining) if self.remaining else length, ts)
            self.body.end(ts, complete=False, problem="bytes lost")
            self.body = None
        if self.state != RESYNC:
            self.c.notice(ts, f"{self.side} side: {length} bytes lost; looking for the next "
                              f"{'request' if self.is_request else 'response'}")
        self.skipped += unparsed
        self.buf.clear()
        self.pos = self.lim = 0
        self.state = RESYNC

    def close(self, ts: int, reason: str) -> None:
        if self.state == BODY_CLOSE and self.body is not None:
            self.body.end(self.body.last_ts)
            self.body = None
        elif self.body is not None:
            self.body.end(ts, complete=False, problem=f"{connection_ended(reason)} before the body ended")
            self.body = None
        elif self.state in (HEAD, TRAILERS) and self.pos < len(self.buf):
            self.c.notice(ts, f"{self.side} side: {len(self.buf) - self.pos} bytes of an "
                              "unfinished head at the end of the connection")
        elif self.state == RESYNC and self.skipped + len(self.buf) - self.pos:
            self.c.notice(ts, f"{self.side} side: {self.skipped + len(self.buf) - self.pos} "
                              "bytes without a message start")
        self.state = OPAQUE


class Http1Connection:
    """Pairs requests with responses in order; hands bodies their framing."""

    protocol = "http/1.1"

    def __init__(self, out: list, conn: str, pid: int, client_dir: str, limits: Limits,
                 synced: dict[str, bool]) -> None:
        self.out, self.conn, self.pid = out, conn, pid
        self.limits = limits
        self.client_dir = client_dir
        server_dir = "recv" if client_dir == "send" else "send"
        self.sides = {client_dir: _Side(self, True, synced.get(client_dir, False)),
                      server_dir: _Side(self, False, synced.get(server_dir, False))}
        self.pending: deque[_Pending] = deque()
        self.next_stream = 1

    def notice(self, ts: int, text: str) -> None:
        self.out.append(ProtocolNotice(ts, self.conn, self.pid, text))

    def feed(self, direction: str, data: bytes, ts: int) -> None:
        self.sides[direction].feed_run([data], [ts], [self.out.tag])

    def feed_run(self, direction: str, datas: list[bytes], tss: list[int], tags: list[int]) -> None:
        self.sides[direction].feed_run(datas, tss, tags)

    def gap(self, direction: str, length: int, ts: int) -> None:
        self.sides[direction].gap(length, ts)

    def close(self, ts: int, reason: str) -> None:
        for side in self.sides.values():
            side.close(ts, reason)

    def _new_stream(self) -> int:
        s = self.next_stream
        self.next_stream += 1
        return s

    def request_head(self, side: _Side, m, headers: Headers, first_ts: int, ts: int, problem: str = "") -> None:
        method = m.group(1).decode("ascii")
        target = m.group(2).decode("utf-8", "replace")
        version = "1." + m.group(3).decode()
        stream = self._new_stream()
        self.out.append(RequestHead(first_ts, self.conn, self.pid, stream, version, method, target,
                                    header(headers, "host"), "https", headers, True, ts))
        expect = header(headers, "expect").lower() == "100-continue"
        self.pending.append(_Pending(stream, method, first_ts, expect))
        body = Body(self.out, self.conn, self.pid, stream, REQUEST, headers, first_ts, self.limits)
        if problem:
            body.problems.append(problem)
        framing, length = _body_framing(headers)
        if framing == "close":
            framing = "none"  # a request without a length has no body
        side.start_body(body, framing, ts, length)

    def response_head(self, side: _Side, m, headers: Headers, first_ts: int, ts: int, problem: str = "") -> None:
        version = "1." + m.group(1).decode()
        status = int(m.group(2))
        reason = (m.group(3) or b"").decode("utf-8", "replace").strip()
        req = self.pending[0] if self.pending else None
        if req is not None and req.first_ts > first_ts:
            req = None  # this response began before the oldest request we saw: its request was missed
        interim = 100 <= status < 200 and status != 101
        if req is None:
            stream = self._new_stream()
            method = ""
        else:
            stream, method = req.stream, req.method
            if not interim:
                self.pending.popleft()
        self.out.append(ResponseHead(first_ts, self.conn, self.pid, stream, version, status, reason,
                                     headers, True, interim, ts))
        if interim:
            side.start_body(None, "none", ts)
            return
        if req is not None and req.expect_continue:
            self._request_body_not_sent(req.stream, ts)
        body = Body(self.out, self.conn, self.pid, stream, RESPONSE, headers, first_ts, self.limits)
        if problem:
            body.problems.append(problem)
        if status == 101 or (method == "CONNECT" and 200 <= status < 300):
            side.start_body(body, "opaque", ts)
            self.sides[self.client_dir].start_body(None, "opaque", ts)
            self.notice(ts, "protocol switched (upgrade or tunnel): the rest is not HTTP/1")
            return
        if method == "HEAD" or status in (204, 304):
            side.start_body(body, "none", ts)
            return
        framing, length = _body_framing(headers)
        side.start_body(body, framing, ts, length)

    def _request_body_not_sent(self, stream: int, ts: int) -> None:
        """A final response to `Expect: 100-continue` before any body byte: none will come."""
        req_side = self.sides[self.client_dir]
        body = req_side.body
        if body is not None and body.stream == stream and body.wire == 0 and req_side.state in (
                BODY_LEN, CHUNK_SIZE):
            body.end(ts, complete=False, problem="body not sent (the server answered first)")
            req_side.body = None
            req_side.state = HEAD
            req_side.head_ts = None


def _run_buffer(side: _Side, datas: list[bytes]) -> tuple[bytes | bytearray, int]:
    """(the bytes to parse a run from, where the run starts in them). With nothing held over
    (the usual case) they are the run's own bytes, parsed where they are; else what is held
    plus the run, in the side's bytearray."""
    buf = side.buf
    if side.pos >= len(buf):
        side.pos = 0
        side.head_scan = 0
        buf = side.buf = datas[0] if len(datas) == 1 else b"".join(datas)
        return buf, 0
    if side.pos > _COMPACT_AT:
        del buf[: side.pos]
        side.head_scan -= side.pos
        side.pos = 0
    start = len(buf)
    buf += datas[0] if len(datas) == 1 else b"".join(datas)
    return buf, start


def _keep_rest(side: _Side) -> None:
    """After a run: what is not parsed yet stays, in a buffer of the parser's own."""
    buf = side.buf
    if side.pos >= len(buf):
        side.buf = bytearray()
        side.head_scan -= side.pos
        side.pos = 0
    elif type(buf) is not bytearray:
        side.buf = bytearray(buf[side.pos :])
        side.head_scan -= side.pos
        side.pos = 0
    side.lim = len(side.buf)


def _find_blank_line(buf, start: int, end: int) -> int:
    """Offset just past the first empty line (CRLF CRLF, or bare LFs) in buf[start:end]."""
    a = buf.find(b"\n\r\n", start, end)
    b = buf.find(b"\n\n", start, end)
    if a < 0 and b < 0:
        return -1
    if b < 0 or (0 <= a < b):
        return a + 3
    return b + 2


_FIELDS: dict[bytes, tuple[str, str] | None] = {}  # header line -> (name, value): most lines repeat
_FIELDS_MAX = 4096


def _parse_fields(lines: list[bytes]) -> Headers:
    out: list[tuple[str, str]] = []
    cache = _FIELDS
    for raw in lines:
        field = cache.get(raw, False)
        if field is not False:
            if field is not None:
                out.append(field)
            continue
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if out:  # obsolete line folding: not cached, it depends on the line before
                name, value = out[-1]
                out[-1] = (name, value + " " + line.strip().decode("utf-8", "replace"))
                continue
            field = _field(line)
        else:
            field = _field(line)
            if len(cache) >= _FIELDS_MAX:
                cache.clear()
            cache[raw] = field
        if field is not None:
            out.append(field)
    return tuple(out)


def _field(line: bytes) -> tuple[str, str] | None:
    name, sep, value = line.partition(b":")
    if not sep:
        return None
    return name.strip().decode("ascii", "replace").lower(), value.strip().decode("utf-8", "replace")


def _body_framing(headers: Headers) -> tuple[str, int]:
    te = header(headers, "transfer-encoding").lower()
    if te:
        if te.rsplit(",", 1)[-1].strip() == "chunked":
            return "chunked", 0
        return "close", 0
    cl = header(headers, "content-length")
    if cl:
        try:
            n = int(cl.split(",")[0].strip())
            if n >= 0:
                return ("length" if n else "none"), n
        except ValueError:
            pass
        return "close", 0
    return "close", 0
