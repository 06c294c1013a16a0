"""Events of the protocol layer: HTTP messages reassembled from captured TLS plaintext.

Every event names its connection (`conn`, unique for the life of the monitor even when an SSL*
is reused) and, for message events, its exchange on that connection (`stream`: the HTTP/2
stream id, or for HTTP/1 the exchange's number on the connection, 1, 2, ...). `side` is
"request" (bytes from the client) or "response". Timestamps are the capture's: nanoseconds
since the epoch of the chunk that carried the byte in question, never a clock read here.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUEST = "request"
RESPONSE = "response"

Headers = tuple[tuple[str, str], ...]  # lower-case names, in wire order, repeats kept


def connection_ended(reason: str) -> str:
    """How a connection ended, for a message it cut short: "connection closed", or with another
    ConnectionEnd reason "connection ended (process exit)"."""
    return "connection closed" if reason == "closed" else f"connection ended ({reason})"


def header(headers: Headers, name: str, default: str = "") -> str:
    """First value of `name` (lower-case), or `default`."""
    for k, v in headers:
        if k == name:
            return v
    return default


@dataclass(frozen=True, slots=True)
class ConnectionDetected:
    """The protocol of a connection is known, and which side of it the process is on."""

    ts: int
    conn: str
    pid: int
    protocol: str  # "http/1.1" or "h2"
    role: str  # "client" or "server": the traced process's side
    mid_stream: bool  # the monitor joined an established connection


@dataclass(frozen=True, slots=True)
class RequestHead:
    ts: int  # first byte of the request
    conn: str
    pid: int
    stream: int
    http_version: str  # "1.0", "1.1" or "2"
    method: str
    target: str  # request target as sent: path and query (absolute form kept as is)
    authority: str  # Host or :authority
    scheme: str
    headers: Headers  # pseudo-headers excluded
    headers_known: bool = True  # False: some HPACK entries predate the monitor (see "?" values)
    end_ts: int = 0  # the head's last byte


@dataclass(frozen=True, slots=True)
class ResponseHead:
    ts: int  # first byte of the response head
    conn: str
    pid: int
    stream: int
    http_version: str
    status: int
    reason: str
    headers: Headers
    headers_known: bool = True
    interim: bool = False  # a 1xx response: the final one follows
    end_ts: int = 0


@dataclass(frozen=True, slots=True)
class BodyData:
    """Body bytes as they arrive, after Content-Encoding is undone."""

    ts: int
    conn: str
    pid: int
    stream: int
    side: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: `data` lines joined with "\\n"; comments are dropped."""

    ts: int  # when the blank line that ends it arrived
    conn: str
    pid: int
    stream: int
    side: str
    event: str  # "" when the event has no `event:` field (the spec's "message")
    data: str
    id: str | None = None
    retry: int | None = None
    terminated: bool = True  # False: cut off by the end of the body, not by a blank line


@dataclass(frozen=True, slots=True)
class JsonItem:
    """One element of a streamed JSON body: an NDJSON line or an element of a top-level array."""

    ts: int
    conn: str
    pid: int
    stream: int
    side: str
    text: bytes  # the element's JSON text, unparsed
    framing: str  # "ndjson" or "json-array"


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """A request or response is over: completely, or not (`problem` says why)."""

    ts: int
    conn: str
    pid: int
    stream: int
    side: str
    first_byte_ts: int
    last_byte_ts: int
    wire_bytes: int  # body bytes as framed on the wire (after chunked/frame decoding)
    body_bytes: int  # after Content-Encoding decoding (what BodyData carried)
    complete: bool
    problem: str = ""  # e.g. "stream reset", "gap of 120 bytes", "body capped at 64 MiB"
    trailers: Headers = ()


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Bytes of a connection that exist but were not captured (loss or --max-capture)."""

    ts: int
    conn: str
    pid: int
    direction: str  # the capture's "send" or "recv"
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class ProtocolNotice:
    """Something about a connection the user should know: skipped bytes, resync, unknown data."""

    ts: int
    conn: str
    pid: int
    text: str


@dataclass(frozen=True, slots=True)
class ConnectionEnd:
    ts: int
    conn: str
    pid: int
    reason: str  # "closed" (SSL_free), "process exit", "end of capture"


ProtocolEvent = (
    ConnectionDetected | RequestHead | ResponseHead | BodyData | SseEvent | JsonItem
    | MessageEnd | StreamGap | ProtocolNotice | ConnectionEnd
)


class BodyFlush:
    """What one body produced since it was last flushed: the bulk form of BodyData, SseEvent and
    JsonItem, without an object per piece or per item.

    A long stream makes thousands of events per second, and a frozen dataclass costs more to
    make than orjson takes to parse a typical SSE payload. So the parsers hand on body output
    in this form; ProtocolTracker.feed() and feed_many() expand it into the public events, in
    the same order and with the same values, and the provider layer, fed by the pipeline, reads
    it as it is. Not frozen, but never changed once made.

    `pieces`: decoded body bytes, each with the capture time of the chunk that carried it.
    `items`: stream items as tuples (ts, event, data, id, retry, terminated, k), `data` being the
    item's bytes (SSE data, or a JSON element's text; `event`, `id`, `retry` are SSE fields, ""
    and None for JSON items) and `k` the index of the piece whose BodyData it follows. None when
    the body is not a stream. `framing`: "sse", "ndjson", "json-array" or "".
    """

    __slots__ = ("conn", "pid", "stream", "side", "pieces", "items", "framing", "_data")

    def __init__(self, conn: str, pid: int, stream: int, side: str, pieces: list, items: list | None,
                 framing: str, data: bytes | None = None) -> None:
        self.conn, self.pid, self.stream, self.side = conn, pid, stream, side
        self.pieces = pieces
        self.items = items
        self.framing = framing
        self._data = data  # the pieces joined, when the framer needed that already

    @property
    def ts(self) -> int:
        """Capture time of the first thing in it (what the first public event would carry)."""
        if self.pieces:
            return self.pieces[0][1]
        return self.items[0][0] if self.items else 0

    def data(self) -> bytes:
        """All the pieces' bytes."""
        if self._data is not None:
            return self._data
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0][0]
        self._data = b"".join([p[0] for p in pieces])
        return self._data

    def events(self) -> list:
        """The public events this stands for, in order."""
        c, p, s, side = self.conn, self.pid, self.stream, self.side
        items = self.items or ()
        out: list = []
        i, n = 0, len(items)
        for k, (data, ts) in enumerate(self.pieces):
            out.append(BodyData(ts, c, p, s, side, data))
            while i < n and items[i][6] <= k:
                out.append(self._item(items[i]))
                i += 1
        while i < n:
            out.append(self._item(items[i]))
            i += 1
        return out

    def _item(self, it: tuple):
        ts, event, data, id_, retry, terminated, _ = it
        if self.framing == "sse":
            return SseEvent(ts, self.conn, self.pid, self.stream, self.side, event,
                            data.decode("utf-8", "replace"), id_, retry, terminated)
        return JsonItem(ts, self.conn, self.pid, self.stream, self.side, data, self.framing)


def expand(records: list) -> list:
    """Public protocol events from parser output (BodyFlush records expanded)."""
    out: list = []
    for r in records:
        if type(r) is BodyFlush:
            out += r.events()
        else:
            out.append(r)
    return out
