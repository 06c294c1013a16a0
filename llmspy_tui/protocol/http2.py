"""Passive HTTP/2: frames via hyperframe (the usual plain ones by hand), headers via hpackdec,
both directions of a connection.

Each direction has its own HPACK decoder (header blocks are compressed against the sender's
table). A monitor that joins mid-connection, or loses bytes, has an HPACK table that is missing
the entries made before; the decoder knows which entries it has really seen, and an index beyond
them decodes to "?" and marks the headers incomplete instead of silently naming a wrong header.
"""

from __future__ import annotations

from itertools import accumulate

from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
)

from .body import Body, Limits
from .events import (REQUEST, RESPONSE, Headers, ProtocolNotice, RequestHead, ResponseHead, connection_ended,
                     header)
from .hpackdec import UNKNOWN, Decoder, HpackError
from .sync import H2_PREFACE, WAIT, Finder

_COMPACT_AT = 64 * 1024
_PLAIN = frozenset({0, 1, 3, 8})  # DATA, HEADERS, RST_STREAM, WINDOW_UPDATE: see _Reader._fast
_MAX_TABLE = 1 << 20  # the largest dynamic table accepted from a peer's size update
# With some headers unknown, so is the body's meaning (its Content-Encoding may be among them).
_PARTIAL_HEADERS = "some headers unknown (compressed against a table that predates the monitor)"


_PAIRS: dict[tuple[bytes, bytes], tuple[str, str]] = {}  # decoded header -> as text: most repeat
_PAIRS_MAX = 4096


def _decoder(limits: Limits, partial: bool) -> Decoder:
    return Decoder(limits.max_header_list, _MAX_TABLE, partial)


class _BlockStart:
    """The HEADERS or PUSH_PROMISE frame a header block began with (what its end needs)."""

    __slots__ = ("stream_id", "end_stream", "promised")

    def __init__(self, stream_id: int, end_stream: bool, promised: int | None = None) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.promised = promised  # PUSH_PROMISE: the promised stream


class _Stream:
    __slots__ = ("sid", "request", "response", "req_head", "resp_final", "req_done", "resp_done",
                 "method")

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.request: Body | None = None
        self.response: Body | None = None
        self.req_head = False
        self.resp_final = False
        self.req_done = False
        self.resp_done = False
        self.method = ""


class _Reader:
    """Frames of one direction, with its HPACK decoder and any header block in progress.

    A batch's bytes of this direction arrive together (feed_run). While in sync, whole frames
    are taken straight through them, each at the time of the chunk holding its last byte (when
    the chunk-by-chunk parser would have taken it), the usual frames without hyperframe;
    otherwise the parser goes chunk by chunk, `lim` marking the end of what has arrived. A run
    that finds nothing held over is parsed in place; only what is left is copied into `buf`.
    """

    def __init__(self, conn: "H2Connection", direction: str, expect_preface: bool, synced: bool) -> None:
        self.c = conn
        self.direction = direction
        self.buf = bytearray()
        self.pos = 0
        self.lim = 0  # end of the bytes arrived so far (of the chunk being parsed, in feed_run)
        self.preface = expect_preface
        self.synced = synced
        self.skipped = 0
        self.hpack = _decoder(conn.limits, partial=not synced)
        self.block: bytes | bytearray | None = None  # header block fragments awaiting END_HEADERS
        self.block_frame: _BlockStart | None = None
        self.block_ts = 0
        self.block_error = ""  # why the last header block could not be decoded
        self.max_frame = 16384  # the peer's SETTINGS_MAX_FRAME_SIZE, as far as we know
        # True when max_frame is known to hold: the connection was seen from its start (16384
        # until SETTINGS say otherwise) and nothing was lost since; a longer frame is then bad
        self.max_frame_known = False
        # The connection is known to speak HTTP/2 (its preface, or three frames in a row, were
        # seen): two frames in a row find the place again. A request the client sends right
        # after the monitor joined (HEADERS, DATA) is then read before its response, not after.
        self.finder = Finder(request=False, status=False, h2=True, h2_frames=2)

    def feed(self, data: bytes, ts: int) -> None:
        self.feed_run([data], [ts], [self.c.out.tag])

    def feed_run(self, datas: list[bytes], tss: list[int], tags: list[int]) -> None:
        """Consecutive chunks of this direction (no gap between them), with their times and
        output tags (see Out)."""
        buf = self.buf
        if self.pos >= len(buf):  # nothing held over (the usual): the run's own bytes, parsed in place
            self.pos = 0
            buf = self.buf = datas[0] if len(datas) == 1 else b"".join(datas)
            start = 0
        else:
            if self.pos > _COMPACT_AT:
                del buf[: self.pos]
                self.pos = 0
            start = len(buf)
            buf += datas[0] if len(datas) == 1 else b"".join(datas)
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
                if self.synced and not self.preface:
                    k = self._fast(ends, tss, tags, k)
                    if k == n:
                        break
                self.lim = ends[k]
                out.tag = tags[k]
                self._run(tss[k])
                k += 1
        finally:
            # what is not parsed yet stays, in a buffer of the reader's own
            if self.pos >= len(self.buf):
                self.buf = bytearray()
                self.pos = 0
            elif type(self.buf) is not bytearray:
                self.buf = bytearray(self.buf[self.pos :])
                self.pos = 0
            self.lim = len(self.buf)

    def _fast(self, ends: list[int], tss: list[int], tags: list[int], k: int) -> int:
        """Whole frames through the rest of the run while in sync; the index of the chunk to
        go on with chunk by chunk (len(ends) when only an incomplete frame is left, which the
        chunk-by-chunk parser would also just keep)."""
        buf = self.buf
        end = ends[-1]
        n = len(ends)
        c = self.c
        out = c.out
        while True:
            pos = self.pos
            if end - pos < 9:
                return n
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            fend = pos + 9 + length
            flags = buf[pos + 4]
            ftype = buf[pos + 3]
            if ftype in _PLAIN and self.block is None and (length <= self.max_frame or not self.max_frame_known):
                sid = ((buf[pos + 5] & 0x7F) << 24) | (buf[pos + 6] << 16) | (buf[pos + 7] << 8) | buf[pos + 8]
                # The frames nearly all traffic is made of, when plain, taken without hyperframe:
                # the same checks (a stream id where one is needed, lengths, no padding or
                # priority fields) and the same handling as H2Connection.frame().
                if ftype == 0:  # DATA
                    plain = sid and not flags & 0x08
                elif ftype == 1:  # HEADERS
                    plain = sid and not flags & 0x28
                elif ftype == 8:  # WINDOW_UPDATE (an increment of 0 or over 2^31-1 is malformed)
                    plain = fend > end or (length == 4 and 0 < int.from_bytes(buf[pos + 9 : fend], "big") < 1 << 31)
                else:  # RST_STREAM
                    plain = sid and length == 4
                if plain:
                    if fend > end:
                        return n
                    while ends[k] < fend:  # the chunk holding the frame's last byte
                        k += 1
                    self.pos = fend
                    out.tag = tags[k]
                    if ftype == 0:
                        c.data_frame(self, sid, bytes(buf[pos + 9 : fend]), flags & 0x01, tss[k])
                    elif ftype == 1:
                        c.headers_frame(self, sid, bytes(buf[pos + 9 : fend]), flags, tss[k])
                    elif ftype == 3:
                        c.rst_stream(self, sid, int.from_bytes(buf[pos + 9 : fend], "big"), tss[k])
                    continue
            while ends[k] <= pos + 8:  # the header is judged once its 9 bytes are there
                k += 1
            out.tag = tags[k]
            head = self._header(tss[k])
            if head is None:  # out of sync: on from that chunk, chunk by chunk
                return k
            if fend > end:
                return n
            while ends[k] < fend:
                k += 1
            out.tag = tags[k]
            self._frame(head, tss[k])

    def _run(self, ts: int, at_end: bool = False) -> None:
        buf = self.buf
        while True:
            if self.preface:
                have = self.lim - self.pos
                if have < len(H2_PREFACE):
                    if not H2_PREFACE.startswith(bytes(buf[self.pos : self.lim])):
                        self._lose_sync(ts, "no HTTP/2 preface")
                        continue
                    return
                if buf[self.pos : self.pos + len(H2_PREFACE)] != H2_PREFACE:
                    self._lose_sync(ts, "no HTTP/2 preface")
                    continue
                self.pos += len(H2_PREFACE)
                self.preface = False
            if not self.synced:
                if not self._resync(ts, at_end):
                    return
                continue
            if self.lim - self.pos < 9:
                return
            head = self._header(ts)
            if head is None:
                continue
            if self.pos + 9 + head[1] > self.lim:
                return
            self._frame(head, ts)

    def _header(self, ts: int):
        """(frame, length) for the 9-byte header at pos, or None: sync lost there."""
        try:
            with memoryview(self.buf) as view:
                head = Frame.parse_frame_header(view[self.pos : self.pos + 9])
        except (HyperframeError, ValueError) as e:
            head, why = None, f"bad frame header ({e})"
        else:
            if head[1] <= self.max_frame or not self.max_frame_known:
                return head
            why = f"frame of {head[1]} bytes, over the {self.max_frame} the peer allows"
        self._lose_sync(ts, why)
        self.pos += 1  # not a frame: never look at this same byte again
        return None

    def _frame(self, head, ts: int) -> None:
        """The whole frame at pos (its bytes are there), parsed by hyperframe, then handled."""
        frame, length = head
        end = self.pos + 9 + length
        with memoryview(self.buf) as view, view[self.pos + 9 : end] as body:
            try:
                frame.parse_body(body)
            except (HyperframeError, ValueError, IndexError) as e:
                self.pos = end  # the frame's extent is known: skip just this frame
                self.c.notice(ts, f"{self.direction}: malformed {type(frame).__name__} "
                                  f"on stream {frame.stream_id} skipped ({e})")
                return
            self.pos = end
            self.c.frame(self, frame, ts)

    # -- header blocks ---------------------------------------------------------------------
    def decode_block(self, block: bytes) -> tuple[Headers | None, bool]:
        """(headers, all known); headers None when the block could not be decoded."""
        try:
            pairs = self.hpack.decode(block)
        except HpackError as e:
            self.block_error = str(e)
            # The table may now hold half a block's changes: only later entries can be trusted.
            self.hpack = _decoder(self.c.limits, partial=True)
            return None, False
        known = True
        out = []
        cache = _PAIRS
        for pair in pairs:
            text = cache.get(pair)
            if text is None:
                name, value = pair
                if name == UNKNOWN:
                    known = False
                    continue
                if value == UNKNOWN:
                    known = False
                    value = b"?"
                text = (name.decode("utf-8", "replace").lower(), value.decode("utf-8", "replace"))
                if value is pair[1]:  # pairs with an unknown part are not cached
                    if len(cache) >= _PAIRS_MAX:
                        cache.clear()
                    cache[pair] = text
            out.append(text)
        return tuple(out), known

    # -- resync ----------------------------------------------------------------------------
    def _lose_sync(self, ts: int, why: str) -> None:
        if self.synced or self.preface:
            self.c.notice(ts, f"{self.direction}: {why}; looking for the next frame")
        self.preface = False
        self.synced = False
        self.block = None
        self.block_frame = None
        self.hpack.partial = True

    def _resync(self, ts: int, at_end: bool) -> bool:
        self.finder.max_frame = max(self.max_frame, 16384)
        kind, at = self.finder.find(self.buf, self.pos, at_end, end=self.lim)
        if kind is None or kind == WAIT:
            if at > self.pos:
                self.skipped += at - self.pos
                self.pos = at
            return False
        self.skipped += at - self.pos
        if self.skipped:
            self.c.notice(ts, f"{self.direction}: skipped {self.skipped} bytes to the next frame")
        self.skipped = 0
        self.pos = at
        self.synced = True
        return True

    def gap(self, length: int, ts: int) -> None:
        self.skipped += len(self.buf) - self.pos
        self.buf.clear()
        self.pos = self.lim = 0
        if self.synced or self.preface:
            self.c.notice(ts, f"{self.direction}: {length} bytes lost; looking for the next frame")
        if self.block is not None:
            self.c.lost_block(self, ts)
        self.synced = False
        self.preface = False
        self.block = None
        self.block_frame = None
        # Lost bytes may have held header blocks: entries after this are trusted, older ones not.
        self.hpack.partial = True

    def finish(self, ts: int) -> None:
        if not self.synced and len(self.buf) > self.pos:
            self._run(ts, at_end=True)
        left = self.skipped + len(self.buf) - self.pos
        if left:
            self.c.notice(ts, f"{self.direction}: {left} bytes that were not whole HTTP/2 frames")


class H2Connection:
    protocol = "h2"

    def __init__(self, out: list, conn: str, pid: int, client_dir: str, limits: Limits,
                 synced: dict[str, bool], preface: bool) -> None:
        self.out, self.conn, self.pid = out, conn, pid
        self.limits = limits
        self.client_dir = client_dir
        server_dir = "recv" if client_dir == "send" else "send"
        self.readers = {
            client_dir: _Reader(self, client_dir, preface and synced.get(client_dir, False),
                                synced.get(client_dir, False)),
            server_dir: _Reader(self, server_dir, False, synced.get(server_dir, False)),
        }
        self.streams: dict[int, _Stream] = {}
        self._swapped = False
        for r in self.readers.values():
            # Seen from its start (the preface), a direction's HPACK table and frame size limit
            # are known; joined later (frames found mid-stream), they predate the monitor.
            r.max_frame_known = preface and r.synced
            r.hpack.partial = not r.max_frame_known

    def notice(self, ts: int, text: str) -> None:
        self.out.append(ProtocolNotice(ts, self.conn, self.pid, text))

    def feed(self, direction: str, data: bytes, ts: int) -> None:
        self.readers[direction].feed_run([data], [ts], [self.out.tag])

    def feed_run(self, direction: str, datas: list[bytes], tss: list[int], tags: list[int]) -> None:
        self.readers[direction].feed_run(datas, tss, tags)

    def gap(self, direction: str, length: int, ts: int) -> None:
        self.readers[direction].gap(length, ts)
        for r in self.readers.values():  # the bytes lost may have held SETTINGS
            r.max_frame_known = False
        # Which stream the lost bytes belonged to is unknown: every body open in that direction
        # may be missing data, and says so.
        from_client = direction == self.client_dir
        for st in self.streams.values():
            body = st.request if from_client else st.response
            if body is not None and not body.ended:
                body.damaged(f"{length} bytes of the connection lost while it was open", ts)

    def close(self, ts: int, reason: str) -> None:
        for r in self.readers.values():
            r.finish(ts)
        for st in list(self.streams.values()):
            self._end_stream(st, ts, f"{connection_ended(reason)} before the stream ended")
        self.streams.clear()

    # -- frames ----------------------------------------------------------------------------
    def _stream(self, sid: int, ts: int) -> _Stream:
        st = self.streams.get(sid)
        if st is None:
            if len(self.streams) >= self.limits.max_streams:
                oldest = min(self.streams)
                self._end_stream(self.streams.pop(oldest), ts, "too many open streams: dropped")
            st = self.streams[sid] = _Stream(sid)
        return st

    def frame(self, reader: _Reader, frame, ts: int) -> None:
        from_client = reader.direction == self.client_dir
        if reader.block is not None and not isinstance(frame, ContinuationFrame):
            self.notice(ts, f"{reader.direction}: header block on stream "
                            f"{reader.block_frame.stream_id} interrupted by another frame")
            self.lost_block(reader, ts)
        t = type(frame)
        if t is DataFrame:
            self.data_frame(reader, frame.stream_id, bytes(frame.data), "END_STREAM" in frame.flags, ts)
        elif t is HeadersFrame:
            self.headers_frame(reader, frame.stream_id, frame.data,
                               (0x01 if "END_STREAM" in frame.flags else 0)
                               | (0x04 if "END_HEADERS" in frame.flags else 0), ts)
        elif t is PushPromiseFrame:
            reader.block = frame.data
            reader.block_frame = _BlockStart(frame.stream_id, False, frame.promised_stream_id)
            reader.block_ts = ts
            if "END_HEADERS" in frame.flags:
                self._block_done(reader, ts)
        elif t is ContinuationFrame:
            if reader.block is None or reader.block_frame.stream_id != frame.stream_id:
                # its HEADERS was not seen: the fragment cannot be decoded, and it may have
                # changed the table
                reader.hpack.partial = True
                return
            reader.block += frame.data
            if len(reader.block) > self.limits.max_header_list:
                # not decoded, so the table changes it made are unknown; the stream's head is
                # there all the same, its headers unknown (the rest of the block is ignored)
                reader.hpack.partial = True
                self._block_done(reader, ts, f"header block over {self.limits.max_header_list} bytes dropped")
                return
            if "END_HEADERS" in frame.flags:
                self._block_done(reader, ts)
        elif t is RstStreamFrame:
            self.rst_stream(reader, frame.stream_id, frame.error_code, ts)
        elif t is SettingsFrame:
            size = frame.settings.get(SettingsFrame.MAX_FRAME_SIZE)
            if size:  # applies to what the other side sends
                self._other(reader).max_frame = size
        elif t is GoAwayFrame:
            self.notice(ts, f"{'client' if from_client else 'server'} sent GOAWAY (last stream "
                            f"{frame.last_stream_id}, error code {frame.error_code})")
        # PRIORITY, PING, WINDOW_UPDATE and extension frames carry nothing to show

    def headers_frame(self, reader: _Reader, sid: int, block: bytes, flags: int, ts: int) -> None:
        """A HEADERS frame's header block fragment; flags END_STREAM 0x1, END_HEADERS 0x4."""
        reader.block = block
        reader.block_frame = _BlockStart(sid, bool(flags & 0x01))
        reader.block_ts = ts
        if flags & 0x04:
            self._block_done(reader, ts)

    def rst_stream(self, reader: _Reader, sid: int, error_code: int, ts: int) -> None:
        st = self.streams.get(sid)
        if st is not None:
            from_client = reader.direction == self.client_dir
            self._end_stream(st, ts, f"stream reset by the {'client' if from_client else 'server'}"
                                     f" (error code {error_code})")

    def data_frame(self, reader: _Reader, sid: int, data: bytes, end_stream, ts: int) -> None:
        """A DATA frame's payload (padding removed), no header block being in progress."""
        from_client = reader.direction == self.client_dir
        st = self.streams.get(sid)
        if st is None:
            st = self._stream(sid, ts)
        body = st.request if from_client else st.response
        if body is None:
            body = self._body(st, from_client, ts, headless=True)
        if body is not None:
            body.data(data, ts)
        if end_stream:
            self._end_side(st, from_client, ts)

    def _other(self, reader: _Reader) -> _Reader:
        return next(r for r in self.readers.values() if r is not reader)

    def lost_block(self, reader: _Reader, ts: int) -> None:
        """A header block that will never be complete: its stream's head is unknown."""
        frame = reader.block_frame
        reader.block = None
        reader.block_frame = None
        reader.hpack.partial = True
        if frame is not None:
            st = self.streams.get(frame.stream_id)
            if st is not None:
                self._end_stream(st, ts, "header block lost")

    def _block_done(self, reader: _Reader, ts: int, dropped: str = "") -> None:
        """A header block is whole (or, `dropped` saying why, given up): the head it carries."""
        frame, first_ts = reader.block_frame, reader.block_ts
        block, reader.block = reader.block, None
        reader.block_frame = None
        headers, known = (None, False) if dropped else reader.decode_block(bytes(block))
        from_client = reader.direction == self.client_dir
        unknown = "" if known else _PARTIAL_HEADERS
        if headers is None:
            unknown = dropped or f"headers could not be decoded ({reader.block_error})"
            self.notice(ts, f"{reader.direction}: stream {frame.stream_id}: {unknown}")
            headers = ()
        if frame.promised is not None:  # PUSH_PROMISE
            st = self._stream(frame.promised, ts)
            self._request_head(st, headers, unknown, first_ts, ts, pushed=True)
            self._end_side(st, True, ts)
            return
        st = self._stream(frame.stream_id, ts)
        end_stream = frame.end_stream
        pseudo = {k for k, _ in headers if k.startswith(":")}
        if from_client and ":status" in pseudo or (not from_client and ":method" in pseudo):
            self._swap_roles(ts)  # the process is the server on this connection
            from_client = not from_client
        if from_client:
            if not st.req_head:
                self._request_head(st, headers, unknown, first_ts, ts)
                if end_stream:
                    self._end_side(st, True, ts)
            elif end_stream:
                self._end_side(st, True, ts, trailers=headers)
        else:
            if not st.resp_final:
                status_text = header(headers, ":status")
                status = int(status_text) if status_text.isdigit() and status_text.isascii() else 0
                interim = 100 <= status < 200
                self.out.append(ResponseHead(first_ts, self.conn, self.pid, st.sid, "2", status, "",
                                             _plain(headers), not unknown, interim, ts))
                if not interim:
                    st.resp_final = True
                    st.response = Body(self.out, self.conn, self.pid, st.sid, RESPONSE, headers,
                                       first_ts, self.limits)
                    if unknown:
                        st.response.problems.append(unknown)
                    if end_stream:
                        self._end_side(st, False, ts)
            elif end_stream:
                self._end_side(st, False, ts, trailers=headers)

    def _swap_roles(self, ts: int) -> None:
        if self._swapped:
            return
        self._swapped = True
        self.client_dir = "recv" if self.client_dir == "send" else "send"
        self.notice(ts, "the traced process is the server on this connection")

    def _request_head(self, st: _Stream, headers: Headers, unknown: str, first_ts: int, ts: int,
                      pushed: bool = False) -> None:
        """`unknown`: why some headers are not known ("" when all are)."""
        st.req_head = True
        known = not unknown
        missing = "" if known else "?"  # a pseudo-header lost with the HPACK state is unknown
        st.method = header(headers, ":method", missing)
        self.out.append(RequestHead(first_ts, self.conn, self.pid, st.sid, "2", st.method,
                                    header(headers, ":path", missing),
                                    header(headers, ":authority", missing),
                                    header(headers, ":scheme", missing), _plain(headers), known, ts))
        st.request = Body(self.out, self.conn, self.pid, st.sid, REQUEST, headers, first_ts, self.limits)
        if unknown:
            st.request.problems.append(unknown)
        if pushed:
            self.notice(ts, f"server push: stream {st.sid} promised")

    def _body(self, st: _Stream, from_client: bool, ts: int, headless: bool) -> Body | None:
        body = st.request if from_client else st.response
        if body is None and headless and not (st.req_done if from_client else st.resp_done):
            # DATA for a stream whose headers came before the monitor joined
            side = REQUEST if from_client else RESPONSE
            body = Body(self.out, self.conn, self.pid, st.sid, side, (), ts, self.limits)
            body.problems.append("headers not seen (joined mid-stream)")
            if from_client:
                st.request = body
            else:
                st.response = body
        return body

    def _end_side(self, st: _Stream, from_client: bool, ts: int, trailers: Headers = ()) -> None:
        body = self._body(st, from_client, ts, headless=False)
        if body is not None:
            body.end(ts, trailers=_plain(trailers))
        if from_client:
            st.req_done = True
        else:
            st.resp_done = True
        if st.req_done and st.resp_done:
            self.streams.pop(st.sid, None)

    def _end_stream(self, st: _Stream, ts: int, problem: str) -> None:
        for body in (st.request, st.response):
            if body is not None and not body.ended:
                body.end(ts, complete=False, problem=problem)
        st.req_done = st.resp_done = True
        self.streams.pop(st.sid, None)


def _plain(headers: Headers) -> Headers:
    """Headers without the pseudo-headers (those are the head's own fields)."""
    return tuple((k, v) for k, v in headers if not k.startswith(":"))
