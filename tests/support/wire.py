"""Byte streams for protocol tests, produced by real encoders (h2, hpack, gzip, brotli, zstd).

A conversation is a list of (direction, bytes) in the order a traced client would see them:
"send" is what the client wrote, "recv" what it read.
"""

from __future__ import annotations

import gzip
import zlib

import brotli
import h2.config
import h2.connection
import h2.events
import zstandard

from llmspy_tui.capture.events import ChunkEvent

Conversation = list[tuple[str, bytes]]


def encode(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "br":
        return brotli.compress(body)
    if coding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    return body


def chunked(body: bytes, sizes=(7, 100, 3)) -> bytes:
    out, i, k = [], 0, 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        out.append(b"%x\r\n%s\r\n" % (len(body[i : i + n]), body[i : i + n]))
        i += n
        k += 1
    return b"".join(out) + b"0\r\n\r\n"


def sse(events: list[tuple[str | None, str]]) -> bytes:
    out = []
    for name, data in events:
        if name:
            out.append(f"event: {name}\n")
        for line in data.split("\n"):
            out.append(f"data: {line}\n")
        out.append("\n")
    return "".join(out).encode()


def h1_request(method: str, path: str, body: bytes = b"", headers: dict | None = None,
               host: str = "api.example.com") -> bytes:
    hs = {"Host": host, **(headers or {})}
    if body and "Transfer-Encoding" not in hs:
        hs.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items()) + "\r\n"
    return head.encode() + body


def h1_response(status: int, body: bytes = b"", headers: dict | None = None, reason: str = "OK",
                length: bool = True) -> bytes:
    hs = dict(headers or {})
    if length and "Transfer-Encoding" not in hs:
        hs.setdefault("Content-Length", str(len(body)))
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items()) + "\r\n"
    return head.encode() + body


class H2Pair:
    """A client and a server h2 connection wired back to back, recording the client's view."""

    def __init__(self) -> None:
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, validate_inbound_headers=False))
        self.conv: Conversation = []
        self.client.initiate_connection()
        self._pump()
        self.server.initiate_connection()
        self._pump()

    def _pump(self) -> None:
        while True:
            moved = False
            out = self.client.data_to_send()
            if out:
                self.conv.append(("send", out))
                for ev in self.server.receive_data(out):
                    if isinstance(ev, h2.events.DataReceived):
                        self.server.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                moved = True
            out = self.server.data_to_send()
            if out:
                self.conv.append(("recv", out))
                for ev in self.client.receive_data(out):
                    if isinstance(ev, h2.events.DataReceived):
                        self.client.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                moved = True
            if not moved:
                return

    def request(self, sid: int, method: str, path: str, body: bytes = b"", extra=(),
                authority: str = "api.example.com") -> None:
        headers = [(":method", method), (":path", path), (":scheme", "https"),
                   (":authority", authority), *extra]
        self.client.send_headers(sid, headers, end_stream=not body)
        if body:
            self.client.send_data(sid, body, end_stream=True)
        self._pump()

    def respond(self, sid: int, status: int, headers=(), end: bool = False) -> None:
        self.server.send_headers(sid, [(":status", str(status)), *headers], end_stream=end)
        self._pump()

    def data(self, sid: int, data: bytes, end: bool = False, pad: int = 0) -> None:
        self.server.send_data(sid, data, end_stream=end, pad_length=pad or None)
        self._pump()

    def trailers(self, sid: int, headers) -> None:
        self.server.send_headers(sid, headers, end_stream=True)
        self._pump()

    def reset(self, sid: int, by_client: bool = True) -> None:
        (self.client if by_client else self.server).reset_stream(sid)
        self._pump()

    def goaway(self) -> None:
        self.server.close_connection(last_stream_id=0)
        self._pump()


def to_chunks(conv: Conversation, pid: int = 4242, ssl: int = 0x5eed, splits=None,
              ts0: int = 1_000_000_000, same_ts: bool = False) -> list[ChunkEvent]:
    """Capture events for a conversation, each write cut where `splits(direction, data)` says."""
    offsets = {"send": 0, "recv": 0}
    seqs = {"send": 0, "recv": 0}
    out = []
    ts = ts0
    for direction, data in conv:
        cuts = splits(direction, data) if splits else [len(data)]
        start = 0
        for cut in list(cuts) + [len(data)]:
            if cut <= start:
                continue
            piece = data[start:cut]
            out.append(ChunkEvent(ts, pid, pid, ssl, direction, seqs[direction], offsets[direction],
                                  len(piece), piece))
            offsets[direction] += len(piece)
            seqs[direction] += 1
            start = cut
            if not same_ts:
                ts += 1000
    return out


def run(conv: Conversation, splits=None, same_ts: bool = True, tracker=None, close: bool = True,
        **kw) -> list:
    """Protocol events for a conversation fed as capture chunks, ended by SSL_free."""
    from llmspy_tui.capture.events import ConnClosed
    from llmspy_tui.protocol import ProtocolTracker

    t = tracker or ProtocolTracker()
    chunks = to_chunks(conv, splits=splits, same_ts=same_ts, **kw)
    events = t.feed_many(chunks)
    if close and chunks:
        events += t.feed(ConnClosed(chunks[-1].ts, chunks[0].pid, chunks[0].conn))
    assert t.internal_errors == 0, [e for e in events if type(e).__name__ == "ProtocolNotice"]
    return events


def normalize(events: list) -> list:
    """Events with each message's body data merged into one, so chunking cannot show."""
    from llmspy_tui.protocol.events import BodyData

    out: list = []
    where: dict = {}
    for e in events:
        if type(e) is BodyData:
            key = (e.conn, e.stream, e.side)
            if key in where:
                i = where[key]
                out[i] = BodyData(out[i].ts, e.conn, e.pid, e.stream, e.side, out[i].data + e.data)
                continue
            where[key] = len(out)
        elif type(e).__name__ == "MessageEnd":
            where.pop((e.conn, e.stream, e.side), None)
        out.append(e)
    return out


def of(events: list, cls) -> list:
    return [e for e in events if type(e).__name__ == cls]


def bodies(events: list) -> dict:
    """{(stream, side): decoded body bytes}."""
    out: dict = {}
    for e in of(events, "BodyData"):
        out[(e.stream, e.side)] = out.get((e.stream, e.side), b"") + e.data
    return out
