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
