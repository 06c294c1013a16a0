"""Build captured LLM calls for provider tests: a request object and a reply, as HTTP/1.1 or
HTTP/2 wire bytes, through the real protocol layer into the provider layer and the store."""

from __future__ import annotations

import json

from llmspy_tui.capture.events import ConnClosed
from llmspy_tui.pipeline import Pipeline
from llmspy_tui.protocol import ProtocolTracker
from llmspy_tui.providers import ExchangeTracker, Options

from . import wire


def sse_parts(events: list[tuple[str | None, object]], crlf: bool = False) -> list[bytes]:
    """One SSE event per part; data given as objects is JSON-encoded (strings are sent as is)."""
    out = []
    nl = "\r\n" if crlf else "\n"
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}{nl}" if name else ""
        out.append(f"{head}data: {text}{nl}{nl}".encode())
    return out


def h1_call(path: str, request: dict, parts: list[bytes], status: int = 200,
            ctype: str = "application/json", host: str = "api.openai.com",
            req_headers: dict | None = None, resp_headers: dict | None = None) -> wire.Conversation:
    """One HTTP/1.1 exchange; a streamed reply (several parts or an event stream) is chunked."""
    body = json.dumps(request).encode()
    hs = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-secret", **(req_headers or {})}
    conv = [("send", wire.h1_request("POST", path, body, hs, host=host))]
    rh = {"Content-Type": ctype, **(resp_headers or {})}
    if len(parts) > 1 or ctype.startswith("text/event-stream"):
        rh["Transfer-Encoding"] = "chunked"
        conv.append(("recv", wire.h1_response(status, b"", rh, length=False)))
        conv += [("recv", b"%x\r\n%s\r\n" % (len(p), p)) for p in parts if p]
        conv.append(("recv", b"0\r\n\r\n"))
    else:
        conv.append(("recv", wire.h1_response(status, b"".join(parts), rh)))
    return conv


def exchanges(conv: wire.Conversation, splits=None, close: bool = True, live: bool = False) -> list:
    """Finished exchanges of a conversation fed through protocol and provider layers."""
    pt = ProtocolTracker()
    xt = ExchangeTracker(Options(live=live))
    chunks = wire.to_chunks(conv, splits=splits)
    if live:  # one capture chunk at a time, as a live capture delivers them
        events = [e for c in chunks for e in xt.feed_many(pt.feed(c))]
    else:
        events = xt.feed_many(pt.feed_many(chunks))
    if close and chunks:
        events += xt.feed_many(pt.feed(ConnClosed(chunks[-1].ts + 1, chunks[0].pid, chunks[0].conn)))
    events += xt.finish(chunks[-1].ts + 2 if chunks else 0)
    assert pt.internal_errors == 0 and xt.internal_errors == 0
    return events


def finished(conv: wire.Conversation, **kw) -> list:
    return [e.exchange for e in exchanges(conv, **kw) if type(e).__name__ == "ExchangeFinished"]


def one(conv: wire.Conversation, **kw):
    xs = finished(conv, **kw)
    assert len(xs) == 1, xs
    return xs[0]


def through_store(convs: list[wire.Conversation], pids: list[int] | None = None, pipeline=None):
    """Feed several conversations (each its own connection, optionally its own process) through
    the whole pipeline; return (finished views, pipeline)."""
    pl = pipeline or Pipeline()
    views = []
    ts = 1_000_000_000
    for i, conv in enumerate(convs):
        pid = (pids[i] if pids else 4242)
        chunks = wire.to_chunks(conv, pid=pid, ssl=0x1000 + i, ts0=ts)
        ts = chunks[-1].ts + 1000
        views += pl.feed(chunks)
        views += pl.feed([ConnClosed(ts, pid, 0x1000 + i)])
        ts += 1000
    return views, pl
