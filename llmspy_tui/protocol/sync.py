"""Finding where messages start in a byte stream joined at an arbitrary point.

Used when the monitor joins an established connection, after bytes were lost, and after
garbage. Candidates are checked in stream order, and a candidate that cannot be judged yet
(its line or frames are incomplete) stops the search until more bytes come, so the outcome
never depends on how the stream was cut into chunks.
"""

from __future__ import annotations

import re

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"CONNECT", b"TRACE")
MAX_LINE = 16 * 1024

REQUEST_LINE = re.compile(rb"([A-Z][A-Z0-9_-]{0,19}) ([^\s]{1,16384}) HTTP/1\.([01])\r?\n")
STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5]\d\d)(?: ([^\r\n]*))?\r?\n")

WAIT = "wait"

# HTTP/2 frame types this monitor knows, with the flags each may carry and its length rule.
_H2_FLAGS = {0: 0x09, 1: 0x2D, 2: 0x00, 3: 0x00, 4: 0x01, 5: 0x0C, 6: 0x01, 7: 0x00, 8: 0x00, 9: 0x04}
_STREAM_REQUIRED = {0, 1, 2, 3, 5, 9}
_STREAM_ZERO = {4, 6, 7}
_FIXED_LEN = {2: 5, 3: 4, 6: 8, 8: 4}


def h2_header_ok(buf, p: int, max_frame: int) -> int:
    """Length of the frame at `p` if its 9-byte header is a plausible HTTP/2 frame, else -1."""
    length = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
    ftype, flags = buf[p + 3], buf[p + 4]
    if ftype > 9 or length > max_frame or flags & ~_H2_FLAGS[ftype] & 0xFF:
        return -1
    if buf[p + 5] & 0x80:
        return -1
    sid = ((buf[p + 5] & 0x7F) << 24) | (buf[p + 6] << 16) | (buf[p + 7] << 8) | buf[p + 8]
    if (ftype in _STREAM_REQUIRED and sid == 0) or (ftype in _STREAM_ZERO and sid != 0):
        return -1
    need = _FIXED_LEN.get(ftype)
    if need is not None and length != need:
        return -1
    if ftype == 4 and (length % 6 or (flags & 1 and length)):
        return -1
    if ftype == 7 and length < 8:
        return -1
    return length


def h2_chain(buf, p: int, max_frame: int, frames: int = 3, at_end: bool = False, end: int | None = None):
    """True if `frames` well-formed frames follow one another from `p`; WAIT if undecided yet.

    At the end of the stream (`at_end`) a shorter chain that ends exactly there is accepted.
    Only `buf[:end]` has arrived (parsers hold a whole batch but look at it a chunk at a time).
    """
    n = len(buf) if end is None else end
    count = 0
    while count < frames:
        if p == n and at_end and count:
            return True
        if p + 9 > n:
            return False if at_end else WAIT
        length = h2_header_ok(buf, p, max_frame)
        if length < 0:
            return False
        p += 9 + length
        if p > n:
            return False if at_end else WAIT
        count += 1
    return True


def line_ok(buf, p: int, pattern: re.Pattern, at_end: bool, n: int | None = None):
    """Does a complete start line matching `pattern` begin at `p`? WAIT while it may still."""
    if n is None:
        n = len(buf)
    end = buf.find(b"\n", p, min(p + MAX_LINE, n))
    if end < 0:
        if at_end or n - p >= MAX_LINE:
            return False
        return WAIT
    return pattern.fullmatch(buf, p, end + 1) is not None


class Finder:
    """Looks for the next message start in a buffer.

    A start is a complete request line (known method, target, HTTP/1.x), a status line, the
    HTTP/2 preface, or three (`h2_frames`) whole plausible HTTP/2 frames in a row. Starts are not required to
    begin a line: a request follows the previous body directly, with no line feed between.
    """

    def __init__(self, request: bool, status: bool, h2: bool, max_frame: int = 16384, h2_frames: int = 3) -> None:
        self.request, self.status, self.h2 = request, status, h2
        self.max_frame = max_frame
        self.h2_frames = h2_frames  # plausible HTTP/2 frames in a row that make a start
        alts = []
        if request:
            alts += [m + b" " for m in METHODS] + [b"PRI \\* HTTP/2\\.0\r"]
        if status:
            alts.append(rb"HTTP/1\.[01] ")
        self._starts = re.compile(b"|".join(alts)) if alts else None

    def find(self, buf, pos: int, at_end: bool = False, end: int | None = None):
        """-> (kind, offset) for a start found, (WAIT, keep) or (None, keep).

        kind is "h1-request", "h1-status", "h2-preface" or "h2-frames". With WAIT or None,
        the bytes before `keep` can be dropped: nothing can start there any more. Only
        `buf[:end]` is looked at (default: all of it).
        """
        n = len(buf) if end is None else end
        i = j = pos
        c1 = c2 = -2  # -2: not looked up yet; -1: none
        while True:
            if c1 == -2:
                c1 = self._next_line(buf, i, n)
            if c2 == -2:
                c2 = self._next_h2(buf, j, n) if self.h2 else -1
            if c1 < 0 and c2 < 0:
                break
            if c2 >= 0 and (c1 < 0 or c2 <= c1):
                verdict = h2_chain(buf, c2, self.max_frame, self.h2_frames, at_end=at_end, end=n)
                if verdict is True:
                    return "h2-frames", c2
                if verdict == WAIT:
                    return WAIT, min(c2, c1) if c1 >= 0 else c2
                j, c2 = c2 + 1, -2
                continue
            kind, verdict = self._judge_line(buf, c1, at_end, n)
            if verdict is True:
                return kind, c1
            if verdict == WAIT:
                return WAIT, c1
            i, c1 = c1 + 1, -2
        # Nothing can start before the last few bytes, which may hold the beginning of a start.
        keep = max(pos, n - 24)
        return None, keep

    def _next_line(self, buf, i: int, n: int) -> int:
        if self._starts is None:
            return -1
        m = self._starts.search(buf, i, n)
        return -1 if m is None else m.start()

    def _judge_line(self, buf, p: int, at_end: bool, n: int):
        b0 = buf[p]
        if b0 == 0x50 and buf[p + 1 : min(p + 3, n)] == b"RI":  # PRI: the HTTP/2 preface
            if n - p < len(H2_PREFACE):
                return "h2-preface", (False if at_end else WAIT)
            return "h2-preface", buf[p : p + len(H2_PREFACE)] == H2_PREFACE
        if b0 == 0x48 and buf[p + 1 : min(p + 5, n)] == b"TTP/":
            return "h1-status", line_ok(buf, p, STATUS_LINE, at_end, n)
        return "h1-request", line_ok(buf, p, REQUEST_LINE, at_end, n)

    def _next_h2(self, buf, j: int, n: int) -> int:
        """Next offset >= j whose type byte (offset + 3) names a known frame type."""
        k = j + 3
        m = _TYPE_BYTE.search(buf, k, n)
        return -1 if m is None else m.start() - 3


_TYPE_BYTE = re.compile(rb"[\x00-\x09]")
