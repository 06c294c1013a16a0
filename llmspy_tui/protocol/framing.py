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


class SseFramer:
    """Server-sent events per the WHATWG grammar: CRLF, LF or CR line ends; BOM; comments.

    Unlike a browser, an event with an `event:` field but no data is still reported (a monitor
    should show it), and an event cut off by the end of the body is reported as unterminated.
    """

    kind = "sse"

    def __init__(self) -> None:
        self._buf = b""
        self._start = True
        self._reset_event()
        self.dropped = 0

    def _reset_event(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._fields = 0

    def feed(self, data: bytes) -> list[Sse]:
        buf = self._buf + data if self._buf else data
        if self._start:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf
                return []
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
            self._start = False
        out: list[Sse] = []
        if b"\r" not in buf:  # the usual case: LF line ends, split at C speed
            lines = buf.split(b"\n")
            rest = lines.pop()
            line = self._line
            for ln in lines:
                line(ln, out)
        else:
            pos = 0
            n = len(buf)
            while True:
                m = _LINE_END.search(buf, pos)
                if m is None:
                    break
                if m.group() == b"\r" and m.end() == n:
                    break  # a lone CR at the end may be the first half of CRLF: wait
                self._line(buf[pos : m.start()], out)
                pos = m.end()
            rest = buf[pos:]
        if len(rest) > MAX_PENDING:
            self.dropped += 1
            rest = b""
        self._buf = rest
        return out

    def _line(self, line: bytes, out: list[Sse]) -> None:
        if line[:5] == b"data:":  # by far the most common field
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value.decode("utf-8", "replace"))
            self._fields += 1
            return
        if not line:
            if self._fields:
                out.append(Sse(self._event, "\n".join(self._data), self._id, self._retry))
            self._reset_event()
            return
        if line[0] == 0x3A:  # ":" comment
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        field = name.decode("utf-8", "replace")
        text = value.decode("utf-8", "replace")
        if field == "data":
            self._data.append(text)
        elif field == "event":
            self._event = text
        elif field == "id":
            if "\0" not in text:
                self._id = text
        elif field == "retry":
            if text.isdigit():
                self._retry = int(text)
        else:
            return
        self._fields += 1

    def gap(self) -> list[Sse]:
        """Bytes are missing here: the event in progress is incomplete, so it is dropped."""
        if self._fields or self._buf:
            self.dropped += 1
        self._buf = b""
        self._reset_event()
        return []

    def finish(self) -> list[Sse]:
        out: list[Sse] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        if self._fields:
            out.append(Sse(self._event, "\n".join(self._data), self._id, self._retry, terminated=False))
        self._reset_event()
        return out


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
        self._buf += data
        out: list[bytes] = []
        if self._state == "start":
            stripped = self._buf.lstrip()
            if not stripped:
                self._buf.clear()
                return out
            if stripped[:1] != b"[":
                self._state = "off"
                self._buf.clear()
                return out
            self._buf = bytearray(stripped[1:])
            self._state = "items"
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
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct == "text/event-stream":
        return SseFramer()
    if ct in ("application/x-ndjson", "application/ndjson", "application/jsonl",
              "application/x-jsonlines", "application/json-seq", "application/stream+json"):
        return NdjsonFramer()
    if ct == "application/json" or ct.endswith("+json"):
        return JsonArrayFramer()  # goes quiet at once unless the body is an array
    return None
