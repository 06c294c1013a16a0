"""Incremental framers for streamed bodies: SSE, NDJSON and top-level JSON arrays.

Each takes body bytes in pieces of any size and returns what became complete; the result never
depends on where the pieces were cut. gap() says bytes are missing at this point (the element
in progress is dropped, and the framer recovers where it can); finish() flushes the remainder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PENDING = 16 * 1024 * 1024  # an element larger than this is dropped, not buffered forever


@dataclass(frozen=True, slots=True)
class Sse:
    event: str
    data: str
    id: str | None
    retry: int | None
    terminated: bool = True


_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"

# An event as the framer hands it on: (event name, data as bytes, id, retry). Bytes, because the
# consumer parses them as JSON and orjson takes bytes: decoding to text first would copy them.
RawEvent = tuple[str, bytes, "str | None", "int | None"]


class SseFramer:
    """Server-sent events per the WHATWG grammar: CRLF, LF or CR line ends; BOM; comments.

    Unlike a browser, an event with an `event:` field but no data is still reported (a monitor
    should show it), and an event cut off by the end of the body is reported as unterminated.

    Two ways through, with the same results: while the stream has only LF line ends (nearly
    always), bytes are split into events at blank lines with bytes.split (one C call for many
    events) and the bytes of the event in progress are held raw; at the first CR the held
    bytes are turned into lines and the stream is followed line by line from then on, since a
    CR at the end of the input may be the first half of a CRLF.
    """

    kind = "sse"

    def __init__(self) -> None:
        self._pending = b""  # LF mode: raw bytes of the event in progress (lines and a partial line)
        self._start = True
        self.line_mode = False  # line-by-line mode, after the first CR
        self._buf = b""  # CR mode: the partial line
        self._reset_event()
        self.dropped = 0

    def _reset_event(self) -> None:
        self._event = ""
        self._data: list[bytes] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._fields = 0

    # -- input -----------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Sse]:
        """Events completed by `data`, with their data decoded (the public shape)."""
        return [Sse(e, d.decode("utf-8", "replace"), i, r) for _, e, d, i, r in self.feed_raw(data)]

    def feed_raw(self, data: bytes) -> list[tuple[int, str, bytes, str | None, int | None]]:
        """Events completed by `data` as (end, event, data, id, retry): `end` is the offset in
        `data` just past the event's blank line (0 when its last byte came earlier)."""
        if self._start:
            buf = self._pending + data
            if len(buf) < 3 and _BOM.startswith(buf):
                self._pending = buf
                return []
            self._start = False
            shift = -len(self._pending)
            self._pending = b""
            if buf.startswith(_BOM):
                buf = buf[3:]
                shift += 3
            data = buf
        else:
            shift = 0
        if not self.line_mode and b"\r" not in data:
            return self._feed_lf(data, shift)
        if not self.line_mode:
            self._to_lines()
        return self._feed_cr(data, shift)

    def feed_items(self, data: bytes, ends: list[int], tss: list[int]) -> list | None:
        """The hot path: events completed by `data`, the pieces of a body joined, as item
        tuples (ts, event, data, id, retry, True, k): k is the piece holding the event's last
        byte, `ends` the offsets in `data` where pieces end, `tss` their times. None when this
        does not apply (CRs, or the stream's first bytes): then feed_raw() piece by piece."""
        if self.line_mode or b"\r" in data:
            return None
        pending = self._pending
        end = -len(pending)
        if self._start:
            buf = pending + data
            if len(buf) < 3 and _BOM.startswith(buf):
                self._pending = buf
                return []
            self._start = False
            if buf.startswith(_BOM):
                buf = buf[3:]
                end += 3
        elif pending:
            buf = pending + data
        else:
            buf = data
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        out = []
        k = 0
        end_k = ends[0]
        ts = tss[0]
        for block in blocks:
            end += len(block) + 2
            if end > end_k:  # the event's last byte (end - 1) is in a later piece
                while end > end_k:
                    k += 1
                    end_k = ends[k]
                ts = tss[k]
            if block[:5] == b"data:":
                if b"\n" not in block:  # the usual event: one data line
                    out.append((ts, "", block[6:] if block[5:6] == b" " else block[5:], None, None, True, k))
                    continue
            elif block[:6] == b"event:":  # a named event (Anthropic, the Responses API) with one data line
                nl = block.find(b"\n")
                if nl > 0 and block[nl + 1 : nl + 6] == b"data:" and block.find(b"\n", nl + 1) < 0:
                    line = block[:nl]
                    name = _names.get(line)
                    if name is None:
                        name = (line[7:] if line[6:7] == b" " else line[6:]).decode("utf-8", "replace")
                        if len(_names) < 256:
                            _names[line] = name
                    data = block[nl + 7 :] if block[nl + 6 : nl + 7] == b" " else block[nl + 6 :]
                    out.append((ts, name, data, None, None, True, k))
                    continue
            ev = _block_event(block)
            if ev is not None:
                out.append((ts, ev[0], ev[1], ev[2], ev[3], True, k))
        self._keep_rest(rest)
        return out

    def _keep_rest(self, rest: bytes) -> None:
        """Hold the unfinished event for the next feed; a partial line that is too long is dropped."""
        nl = rest.rfind(b"\n")
        if len(rest) - nl - 1 > MAX_PENDING:
            self.dropped += 1
            rest = rest[: nl + 1]
        self._pending = rest

    def _feed_lf(self, data: bytes, shift: int) -> list:
        pending = self._pending
        if pending:
            buf = pending + data
            shift -= len(pending)
        else:
            buf = data
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        out = []
        end = shift
        for block in blocks:
            end += len(block) + 2
            if block[:5] == b"data:" and b"\n" not in block:  # the usual event: one data line
                out.append((end, "", block[6:] if block[5:6] == b" " else block[5:], None, None))
                continue
            ev = _block_event(block)
            if ev is not None:
                out.append((end, *ev))
        self._keep_rest(rest)
        return out

    def _to_lines(self) -> None:
        """Leave LF mode: the held event's complete lines become fields, its partial line stays."""
        self.line_mode = True
        lines = self._pending.split(b"\n")
        self._pending = b""
        self._buf = lines.pop()
        sink: list = []
        for ln in lines:
            self._line(ln, sink, 0)  # no blank line among them: nothing is dispatched

    def _feed_cr(self, data: bytes, shift: int) -> list:
        buf = self._buf + data if self._buf else data
        shift -= len(self._buf)
        out: list = []
        pos = 0
        n = len(buf)
        while True:
            m = _LINE_END.search(buf, pos)
            if m is None:
                break
            if m.group() == b"\r" and m.end() == n:
                break  # a lone CR at the end may be the first half of CRLF: wait
            self._line(buf[pos : m.start()], out, m.end() + shift)
            pos = m.end()
        rest = buf[pos:]
        if len(rest) > MAX_PENDING:
            self.dropped += 1
            rest = b""
        self._buf = rest
        return out

    def _line(self, line: bytes, out: list, end: int) -> None:
        if line[:5] == b"data:":  # by far the most common field
            self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            self._fields += 1
            return
        if not line:
            if self._fields:
                out.append((end, *self._take()))
            self._reset_event()
            return
        if line[0] == 0x3A:  # ":" comment
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry":
            self._retry = _retry(value, self._retry)
        else:
            return
        self._fields += 1

    def _take(self) -> RawEvent:
        data = self._data
        return self._event, data[0] if len(data) == 1 else b"\n".join(data), self._id, self._retry

    # -- breaks and the end ------------------------------------------------------------------
    def gap(self) -> list:
        """Bytes are missing here: the event in progress is incomplete, so it is dropped."""
        if self.line_mode:
            if self._fields or self._buf:
                self.dropped += 1
            self._buf = b""
        else:
            held = self._pending
            if held and (not held.endswith(b"\n") or _block_event(held) is not None):
                self.dropped += 1
            self._pending = b""
        self._reset_event()
        return []

    def finish_raw(self) -> list:
        """The end of the body: an event cut off there, as (end, event, data, id, retry), end 0."""
        if not self.line_mode:
            held, self._pending = self._pending, b""
            ev = _block_event(held) if held else None
            return [(0, *ev)] if ev is not None else []
        out: list = []
        if self._buf:
            self._line(self._buf, out, 0)
            self._buf = b""
        if self._fields:
            out.append((0, *self._take()))
        self._reset_event()
        return out

    def finish(self) -> list[Sse]:
        return [Sse(e, d.decode("utf-8", "replace"), i, r, terminated=False)
                for _, e, d, i, r in self.finish_raw()]


_names: dict[bytes, str] = {}  # "event: name" line -> the name: a stream's few names, decoded once


def _retry(value: bytes, current: int | None) -> int | None:
    text = value.decode("utf-8", "replace")
    if text.isdigit():
        try:
            return int(text)
        except ValueError:  # digits of other scripts that int() does not take ("²")
            return current
    return current


def _block_event(block: bytes) -> RawEvent | None:
    """The event of one block of lines that holds no blank line (LF mode), or None when the
    block has no field (only comments, unknown fields, empty lines)."""
    event = ""
    data: list[bytes] = []
    id_ = retry = None
    fields = 0
    for line in block.split(b"\n"):
        if line[:5] == b"data:":
            data.append(line[6:] if line[5:6] == b" " else line[5:])
            fields += 1
            continue
        if not line or line[0] == 0x3A:  # empty (only before the first field) or a comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                id_ = value.decode("utf-8", "replace")
        elif name == b"retry":
            retry = _retry(value, retry)
        else:
            continue
        fields += 1
    if not fields:
        return None
    return event, data[0] if len(data) == 1 else b"\n".join(data), id_, retry


class NdjsonFramer:
    """Newline-delimited JSON (Ollama and others): each non-blank line is one item."""

    kind = "ndjson"

    def __init__(self) -> None:
        self._buf = b""
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_PENDING:
            self.dropped += 1
            self._buf = b""
        return [s for s in (ln.strip(_ITEM_SPACE) for ln in lines) if s]

    def gap(self) -> list[bytes]:
        if self._buf.strip(_ITEM_SPACE):
            self.dropped += 1
        self._buf = b""
        return []

    def finish(self) -> list[bytes]:
        last, self._buf = self._buf.strip(_ITEM_SPACE), b""
        return [last] if last else []


_SPACE = re.compile(rb"[ \t\n\r\x0b\x0c]*")  # what bytes.lstrip() strips
_JSON_SPECIAL = re.compile(rb'["\\\[\]{},]')
_STR_SPECIAL = re.compile(rb'["\\]')
_ITEM_SPACE = b" \t\r\n\x1e"  # json-seq puts RS (0x1e) before each item


class JsonArrayFramer:
    """Elements of a top-level JSON array as they complete (Gemini streams without alt=sse).

    Only structure is tracked (strings, escapes, nesting), so each element's text is handed on
    unparsed. Something that is not an array, or a gap, stops framing for the rest of the body.
    """

    kind = "json-array"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = "start"  # start -> items -> done | off
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._scan = 0  # where scanning resumes in _buf
        self._elem = -1  # start of the element in progress in _buf, -1 when between elements
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        if self._state in ("done", "off"):
            return []
        out: list[bytes] = []
        if self._state == "start":  # nothing held yet: the first non-space byte decides
            i = _SPACE.match(data).end()
            if i == len(data):
                return out
            if data[i] != 0x5B:  # not "[": an object, say; nothing to frame (and nothing copied)
                self._state = "off"
                return out
            self._buf = bytearray(data[i + 1 :])
            self._state = "items"
        else:
            self._buf += data
        buf = self._buf
        i = self._scan
        n = len(buf)
        while i < n:
            if self._in_str:
                if self._esc:
                    self._esc = False
                    i += 1
                    continue
                m = _STR_SPECIAL.search(buf, i)
                if m is None:
                    i = n
                    break
                i = m.end()
                if buf[m.start()] == 0x5C:
                    self._esc = True
                else:
                    self._in_str = False
                continue
            if self._elem < 0:
                # between elements: skip whitespace and separators
                c = buf[i]
                if c in b" \t\r\n,":
                    i += 1
                    continue
                if c == 0x5D:  # "]" closes the array
                    self._state = "done"
                    i += 1
                    break
                self._elem = i
            m = _JSON_SPECIAL.search(buf, i)
            if m is None:
                i = n
                break
            c = buf[m.start()]
            i = m.end()
            if c == 0x22:
                self._in_str = True
            elif c == 0x5C:
                self._esc = True  # a backslash outside a string is invalid; skip what follows
            elif c in b"[{":
                self._depth += 1
            elif c in b"]}":
                if self._depth == 0:  # the array's own "]" right after a scalar element
                    out.append(bytes(buf[self._elem : m.start()]).strip())
                    self._elem = -1
                    self._state = "done"
                    break
                self._depth -= 1
                if self._depth == 0:
                    out.append(bytes(buf[self._elem : i]))
                    self._elem = -1
            elif c == 0x2C and self._depth == 0:  # "," ends a scalar element
                out.append(bytes(buf[self._elem : m.start()]).strip())
                self._elem = -1
        # drop what is consumed, keep the element in progress
        keep = self._elem if self._elem >= 0 else i
        if keep:
            del buf[:keep]
            i -= keep
            if self._elem >= 0:
                self._elem = 0
        self._scan = i
        if len(buf) > MAX_PENDING:
            self.dropped += 1
            self._state = "off"
            buf.clear()
        if self._state == "done":
            buf.clear()
        return [o for o in out if o]

    def gap(self) -> list[bytes]:
        if self._state == "items":
            self.dropped += 1
            self._state = "off"
        self._buf.clear()
        return []

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self._state == "items" and self._elem >= 0 and self._depth == 0 and not self._in_str:
            tail = bytes(self._buf[self._elem :]).strip()
            if tail:
                out.append(tail)
        elif self._state == "items" and self._elem >= 0:
            self.dropped += 1
        self._buf.clear()
        self._state = "done"
        return out


def framer_for(content_type: str):
    """The framer a body's Content-Type calls for, or None."""
    kind = _FRAMER_OF.get(content_type, False)
    if kind is False:
        kind = _framer_kind(content_type)
        if len(_FRAMER_OF) < 1024:
            _FRAMER_OF[content_type] = kind
    return kind() if kind is not None else None


_FRAMER_OF: dict[str, type | None] = {}  # Content-Type value -> framer class (values repeat)


def _framer_kind(content_type: str):
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct == "text/event-stream":
        return SseFramer
    if ct in ("application/x-ndjson", "application/ndjson", "application/jsonl",
              "application/x-jsonlines", "application/json-seq", "application/stream+json"):
        return NdjsonFramer
    if ct == "application/json" or ct.endswith("+json"):
        return JsonArrayFramer  # goes quiet at once unless the body is an array
    return None
