"""HTTP/2 reassembly: multiplexing, header blocks, padding, resets, mid-connection joins."""

from __future__ import annotations

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from wire import H2Pair, bodies, encode, normalize, of, run, sse

from llmspy_tui.protocol.sync import H2_PREFACE

ANTHROPIC_SSE = sse([
    ("message_start", '{"type":"message_start","message":{"usage":{"input_tokens":12}}}'),
    ("content_block_delta", '{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}'),
    ("message_stop", '{"type":"message_stop"}'),
])


def multiplexed() -> H2Pair:
    p = H2Pair()
    p.request(1, "POST", "/v1/messages", b'{"model":"claude-sonnet-4-5","stream":true}',
              extra=[("content-type", "application/json"), ("x-api-key", "sk-ant-secret")])
    p.request(3, "POST", "/v1/messages", b'{"model":"claude-haiku-4-5"}',
              extra=[("content-type", "application/json"), ("x-api-key", "sk-ant-secret")])
    p.request(5, "GET", "/v1/models")
    p.respond(3, 200, [("content-type", "application/json"), ("content-encoding", "gzip")])
    p.respond(1, 200, [("content-type", "text/event-stream")])
    half = len(ANTHROPIC_SSE) // 2
    p.data(1, ANTHROPIC_SSE[:half], pad=7)
    p.data(3, encode(b'{"id":"msg_2","content":[]}', "gzip"), end=True)
    p.respond(5, 404, [("content-type", "application/json")])
    p.data(1, ANTHROPIC_SSE[half:])
    p.data(5, b'{"error":"nope"}', end=True)
    p.trailers(1, [("x-request-id", "req_1")])
    return p


def test_concurrent_streams_become_their_own_exchanges():
    ev = run(multiplexed().conv)
    (det,) = of(ev, "ConnectionDetected")
    assert (det.protocol, det.role, det.mid_stream) == ("h2", "client", False)
    reqs = {r.stream: r for r in of(ev, "RequestHead")}
    assert sorted(reqs) == [1, 3, 5]
    assert reqs[1].http_version == "2" and reqs[1].authority == "api.example.com"
    # the second request re-uses dynamic-table entries of the first: still fully known
    assert reqs[3].headers_known and ("x-api-key", "sk-ant-secret") in reqs[3].headers
    resps = {r.stream: r.status for r in of(ev, "ResponseHead")}
    assert resps == {1: 200, 3: 200, 5: 404}
    b = bodies(ev)
    assert b[(1, "response")] == ANTHROPIC_SSE
    assert b[(3, "response")] == b'{"id":"msg_2","content":[]}'
    assert b[(5, "response")] == b'{"error":"nope"}'
    assert [e.event for e in of(ev, "SseEvent")] == ["message_start", "content_block_delta", "message_stop"]
    ends = {(e.stream, e.side): e for e in of(ev, "MessageEnd")}
    assert len(ends) == 6 and all(e.complete for e in ends.values())
    assert ends[(1, "response")].trailers == (("x-request-id", "req_1"),)


def test_every_split_gives_the_same_events():
    conv = multiplexed().conv
    whole = normalize(run(conv))
    for i, (_, data) in enumerate(conv):
        for cut in range(1, len(data)):
            got = normalize(run(conv, splits=lambda dd, dat, _d=data, _c=cut: [_c] if dat is _d else []))
            assert got == whole, (i, cut)
    assert normalize(run(conv, splits=lambda d, data: range(1, len(data)))) == whole


def _hand_built() -> list:
    """Frames a library would rarely produce: padded HEADERS with priority, CONTINUATION,
    PRIORITY, an unknown extension frame, and a stream reset."""
    enc_c, enc_s = Encoder(), Encoder()
    settings = SettingsFrame(0)
    block = enc_c.encode([(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "https"),
                          (":authority", "api.openai.com"), ("content-type", "application/json"),
                          ("authorization", "Bearer sk-proj-" + "x" * 40), ("x-long", "y" * 300)])
    h = HeadersFrame(1, block[:20], flags=["PADDED", "PRIORITY"], pad_length=11, depends_on=0,
                     stream_weight=200)
    c1 = ContinuationFrame(1, block[20:60])
    c2 = ContinuationFrame(1, block[60:], flags=["END_HEADERS"])
    body = DataFrame(1, b'{"model":"gpt-4.1"}', flags=["END_STREAM", "PADDED"], pad_length=3)
    prio = PriorityFrame(3, depends_on=1, stream_weight=16)
    unknown = bytes([0, 0, 3, 0xEE, 0, 0, 0, 0, 0]) + b"abc"  # type 0xEE: ignore
    req2 = HeadersFrame(3, enc_c.encode([(":method", "GET"), (":path", "/slow"), (":scheme", "https"),
                                         (":authority", "api.openai.com")]),
                        flags=["END_HEADERS", "END_STREAM"])
    resp = HeadersFrame(1, enc_s.encode([(":status", "200"), ("content-type", "application/json")]),
                        flags=["END_HEADERS"])
    rdata = DataFrame(1, b'{"id":"chatcmpl-1"}', flags=["END_STREAM"])
    resp3 = HeadersFrame(3, enc_s.encode([(":status", "200"), ("content-type", "text/event-stream")]),
                         flags=["END_HEADERS"])
    d3 = DataFrame(3, b"data: {\"partial\":")
    rst = RstStreamFrame(3, error_code=8)
    goaway = GoAwayFrame(0, last_stream_id=3, error_code=0)
    return [
        ("send", H2_PREFACE + settings.serialize()),
        ("recv", SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize()),
        ("send", prio.serialize() + h.serialize() + c1.serialize() + c2.serialize()),
        ("send", unknown + body.serialize() + req2.serialize() + WindowUpdateFrame(0, 1000).serialize()),
        ("recv", resp.serialize() + rdata.serialize() + resp3.serialize() + d3.serialize()),
        ("send", rst.serialize()),
        ("recv", goaway.serialize()),
    ]


def test_padding_priority_continuation_reset_goaway():
    ev = run(_hand_built())
    reqs = {r.stream: r for r in of(ev, "RequestHead")}
    assert reqs[1].target == "/v1/chat/completions" and ("x-long", "y" * 300) in reqs[1].headers
    b = bodies(ev)
    assert b[(1, "request")] == b'{"model":"gpt-4.1"}'  # padding stripped
    assert b[(1, "response")] == b'{"id":"chatcmpl-1"}'
    ends = {(e.stream, e.side): e for e in of(ev, "MessageEnd")}
    assert ends[(1, "response")].complete
    reset = ends[(3, "response")]
    assert not reset.complete and "reset by the client" in reset.problem and "code 8" in reset.problem
    assert any("GOAWAY" in n.text for n in of(ev, "ProtocolNotice"))


def test_hand_built_frames_survive_any_split():
    conv = _hand_built()
    whole = normalize(run(conv))
    assert normalize(run(conv, splits=lambda d, data: range(1, len(data)))) == whole
    for i, (_, data) in enumerate(conv):
        for cut in range(1, len(data), 3):
            got = normalize(run(conv, splits=lambda dd, dat, _d=data, _c=cut: [_c] if dat is _d else []))
            assert got == whole, (i, cut)


def test_joining_mid_connection():
    p = H2Pair()
    p.request(1, "POST", "/v1/messages", b"{}", extra=[("x-api-key", "sk-ant-1"), ("x-custom", "c1")])
    p.respond(1, 200, [("content-type", "text/event-stream")])
    p.data(1, sse([("ping", "{}")]))
    start = len(p.conv)
    # from here on the monitor watches: stream 1 is still streaming, stream 3 is new
    p.data(1, sse([("message_stop", '{"type":"message_stop"}')]), end=True)
    p.request(3, "POST", "/v1/messages", b'{"n":2}',
              extra=[("x-api-key", "sk-ant-1"), ("x-custom", "c1"), ("x-new", "fresh")])
    p.respond(3, 200, [("content-type", "application/json")])
    p.data(3, b'{"ok":true}', end=True)
    p.request(5, "GET", "/v1/other", extra=[("x-new", "fresh")])
    ev = run(p.conv[start:])
    (det,) = of(ev, "ConnectionDetected")
    assert det.protocol == "h2" and det.mid_stream
    reqs = {r.stream: r for r in of(ev, "RequestHead")}
    # stream 3's headers refer to table entries made before the monitor joined (h2 indexed the
    # path, authority and key): marked unknown, never guessed; its new entry is known, and
    # stream 5 finds it in the table
    assert not reqs[3].headers_known and reqs[3].method == "POST"
    assert reqs[3].target == "?" and reqs[3].authority == "?"
    assert ("x-new", "fresh") in reqs[3].headers
    assert ("x-api-key", "sk-ant-1") not in reqs[3].headers
    assert reqs[5].method == "GET" and reqs[5].target == "/v1/other"
    assert ("x-new", "fresh") in reqs[5].headers
    b = bodies(ev)
    assert b[(3, "response")] == b'{"ok":true}'
    # the tail of stream 1, whose headers came before the monitor joined
    tail = [e for e in of(ev, "MessageEnd") if e.stream == 1 and e.side == "response"][0]
    assert not tail.complete and "headers not seen" in tail.problem
    assert [e.event for e in of(ev, "SseEvent")] == ["message_stop"]


def test_loss_inside_a_connection_marks_open_streams_and_recovers():
    from llmspy_tui.capture.events import ChunkEvent, ConnClosed
    from llmspy_tui.protocol import ProtocolTracker

    p = H2Pair()
    p.request(1, "POST", "/a", b"{}")
    p.respond(1, 200, [("content-type", "text/plain")])
    p.data(1, b"first part ")
    lost_at = len(p.conv)
    p.data(1, b"LOST" * 100)
    p.data(1, b" last part", end=True)
    p.request(3, "GET", "/b")
    p.respond(3, 200)
    p.data(3, b"bee", end=True)
    t = ProtocolTracker()
    offsets = {"send": 0, "recv": 0}
    ev = []
    for i, (d, data) in enumerate(p.conv):
        if i == lost_at:
            ev += t.feed(ChunkEvent(i, 1, 1, 1, d, 0, offsets[d], len(data), b"", lost=len(data)))
        else:
            ev += t.feed(ChunkEvent(i, 1, 1, 1, d, 0, offsets[d], len(data), data))
        offsets[d] += len(data)
    ev += t.feed(ConnClosed(99, 1, 1))
    ends = {(e.stream, e.side): e for e in of(ev, "MessageEnd")}
    assert not ends[(1, "response")].complete and "lost" in ends[(1, "response")].problem
    assert bodies(ev)[(3, "response")] == b"bee" and ends[(3, "response")].complete
