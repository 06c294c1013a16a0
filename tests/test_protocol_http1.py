"""HTTP/1.x reassembly: framing, pairing, encodings, bad input (sans-IO, no root needed)."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

from wire import bodies, chunked, encode, h1_request, h1_response, normalize, of, run, sse

from llmspy_tui.capture.events import ChunkEvent, ConnClosed
from llmspy_tui.protocol import Limits, ProtocolTracker

CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}'
STREAM = sse([(None, '{"choices":[{"delta":{"content":"Hel"}}]}'),
              (None, '{"choices":[{"delta":{"content":"lo"}}]}'), (None, "[DONE]")])


def sse_exchange() -> list:
    return [("send", h1_request("POST", "/v1/chat/completions", CHAT,
                                {"Content-Type": "application/json", "Authorization": "Bearer sk-x"})),
            ("recv", h1_response(200, chunked(STREAM) + b"", {"Content-Type": "text/event-stream",
                                                               "Transfer-Encoding": "chunked"}))]


def test_request_and_chunked_sse_response():
    ev = run(sse_exchange())
    (det,) = of(ev, "ConnectionDetected")
    assert (det.protocol, det.role, det.mid_stream) == ("http/1.1", "client", False)
    (req,) = of(ev, "RequestHead")
    assert (req.method, req.target, req.authority, req.http_version) == (
        "POST", "/v1/chat/completions", "api.example.com", "1.1")
    assert ("authorization", "Bearer sk-x") in req.headers
    (resp,) = of(ev, "ResponseHead")
    assert (resp.stream, resp.status, resp.reason) == (1, 200, "OK")
    assert bodies(ev) == {(1, "request"): CHAT, (1, "response"): STREAM}
    sse_events = of(ev, "SseEvent")
    assert [e.data for e in sse_events] == ['{"choices":[{"delta":{"content":"Hel"}}]}',
                                            '{"choices":[{"delta":{"content":"lo"}}]}', "[DONE]"]
    ends = of(ev, "MessageEnd")
    assert [(e.side, e.complete, e.wire_bytes) for e in ends] == [
        ("request", True, len(CHAT)), ("response", True, len(STREAM))]
    assert type(ev[-1]).__name__ == "ConnectionEnd"


def test_trailers_after_last_chunk():
    body = chunked(b"abc")[: -2] + b"X-Checksum: 42\r\nX-Other: y\r\n\r\n"
    ev = run([("send", h1_request("GET", "/t")),
              ("recv", h1_response(200, body, {"Transfer-Encoding": "chunked"}))])
    end = of(ev, "MessageEnd")[-1]
    assert end.complete and end.trailers == (("x-checksum", "42"), ("x-other", "y"))
    assert bodies(ev)[(1, "response")] == b"abc"


def test_keep_alive_and_pipelining_pair_in_order():
    reqs = [h1_request("POST", f"/r{i}", b"x" * i, {"Content-Type": "text/plain"}) for i in (1, 2, 3)]
    resps = [h1_response(200, f"answer {i}".encode()) for i in (1, 2, 3)]
    # first exchange alone, then two pipelined requests in one write and both answers in one read
    ev = run([("send", reqs[0]), ("recv", resps[0]), ("send", reqs[1] + reqs[2]),
              ("recv", resps[1] + resps[2])])
    heads = of(ev, "RequestHead")
    assert [(h.stream, h.target) for h in heads] == [(1, "/r1"), (2, "/r2"), (3, "/r3")]
    assert [r.stream for r in of(ev, "ResponseHead")] == [1, 2, 3]
    b = bodies(ev)
    assert [b[(i, "response")] for i in (1, 2, 3)] == [b"answer 1", b"answer 2", b"answer 3"]
    assert all(e.complete for e in of(ev, "MessageEnd"))


def test_100_continue():
    head = h1_request("POST", "/upload", b"", {"Content-Length": "5", "Expect": "100-continue"})
    ev = run([("send", head), ("recv", b"HTTP/1.1 100 Continue\r\n\r\n"), ("send", b"hello"),
              ("recv", h1_response(201, b"ok", reason="Created"))])
    resp = of(ev, "ResponseHead")
    assert [(r.status, r.interim, r.stream) for r in resp] == [(100, True, 1), (201, False, 1)]
    assert bodies(ev) == {(1, "request"): b"hello", (1, "response"): b"ok"}
    assert all(e.complete for e in of(ev, "MessageEnd"))


def test_expect_continue_refused_then_next_request():
    head = h1_request("POST", "/upload", b"", {"Content-Length": "5", "Expect": "100-continue"})
    ev = run([("send", head), ("recv", h1_response(417, b"", reason="Expectation Failed")),
              ("send", h1_request("GET", "/next")), ("recv", h1_response(200, b"fine"))])
    assert [h.target for h in of(ev, "RequestHead")] == ["/upload", "/next"]
    first = [e for e in of(ev, "MessageEnd") if e.stream == 1 and e.side == "request"][0]
    assert not first.complete and "not sent" in first.problem
    assert bodies(ev)[(2, "response")] == b"fine"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(status):
    ev = run([("send", h1_request("GET", "/a") + h1_request("GET", "/b")),
              ("recv", h1_response(status, b"", {"Content-Length": "10"}, reason="X")
               + h1_response(200, b"second"))])
    assert [r.status for r in of(ev, "ResponseHead")] == [status, 200]
    assert bodies(ev) == {(2, "response"): b"second"}


def test_head_response_has_no_body_even_with_length():
    ev = run([("send", h1_request("HEAD", "/big") + h1_request("GET", "/small")),
              ("recv", h1_response(200, b"", {"Content-Length": "123456"}) + h1_response(200, b"tiny"))])
    assert bodies(ev) == {(2, "response"): b"tiny"}
    assert all(e.complete for e in of(ev, "MessageEnd"))


def test_close_delimited_response_ends_with_the_connection():
    ev = run([("send", h1_request("GET", "/")),
              ("recv", b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, "),
              ("recv", b"part two")])
    (resp,) = of(ev, "ResponseHead")
    assert resp.http_version == "1.0"
    end = of(ev, "MessageEnd")[-1]
    assert end.complete and bodies(ev)[(1, "response")] == b"part one, part two"


def test_bare_lf_line_endings():
    ev = run([("send", b"GET /lf HTTP/1.1\nHost: h\n\n"),
              ("recv", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok")])
    assert of(ev, "RequestHead")[0].authority == "h"
    assert bodies(ev) == {(1, "response"): b"ok"}


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, br"])
def test_content_encodings_are_decoded(coding):
    raw = b'{"object":"chat.completion","usage":{"total_tokens":12}}' * 20
    enc = raw
    for c in [c.strip() for c in coding.split(",")]:
        enc = encode(enc, c)
    ev = run([("send", h1_request("GET", "/z")),
              ("recv", h1_response(200, enc, {"Content-Encoding": coding,
                                                "Content-Type": "application/json"}))])
    assert bodies(ev)[(1, "response")] == raw
    end = of(ev, "MessageEnd")[-1]
    assert end.complete and end.wire_bytes == len(enc) and end.body_bytes == len(raw)


def test_raw_deflate_is_accepted_too():
    import zlib
    raw = b"hello deflate " * 50
    enc = zlib.compress(raw)[2:-4]
    ev = run([("send", h1_request("GET", "/d")),
              ("recv", h1_response(200, enc, {"Content-Encoding": "deflate"}))])
    assert bodies(ev)[(1, "response")] == raw


def test_decompression_bomb_is_capped_with_a_marker():
    bomb = gzip.compress(b"\0" * 300_000_000)  # 300 MB of zeros in about 290 KB
    tracker = ProtocolTracker(Limits(max_decoded_body=4 << 20))
    tracemalloc.start()
    try:
        ev = run([("send", h1_request("GET", "/bomb")),
                  ("recv", h1_response(200, bomb, {"Content-Encoding": "gzip"}))],
                 splits=lambda d, data: range(65536, len(data), 65536), tracker=tracker)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bodies(ev)[(1, "response")]) == 4 << 20
    end = of(ev, "MessageEnd")[-1]
    assert not end.complete and "capped at 4194304" in end.problem
    assert peak < 40 << 20, peak


def test_corrupt_gzip_is_reported_not_raised():
    ev = run([("send", h1_request("GET", "/c")),
              ("recv", h1_response(200, b"\x1f\x8b\x08\x00garbage-not-gzip", {"Content-Encoding": "gzip"}))])
    end = of(ev, "MessageEnd")[-1]
    assert not end.complete and "undecodable" in end.problem


def test_unknown_encoding_passes_bytes_through():
    ev = run([("send", h1_request("GET", "/u")),
              ("recv", h1_response(200, b"LZW...", {"Content-Encoding": "compress"}))])
    assert bodies(ev)[(1, "response")] == b"LZW..."
    assert "not decoded" in of(ev, "MessageEnd")[-1].problem


def test_ndjson_stream():
    lines = b'{"message":{"content":"a"},"done":false}\n{"message":{"content":"b"},"done":true}\n'
    ev = run([("send", h1_request("POST", "/api/chat", b"{}", host="localhost:11434")),
              ("recv", h1_response(200, chunked(lines), {"Content-Type": "application/x-ndjson",
                                                          "Transfer-Encoding": "chunked"}))])
    items = of(ev, "JsonItem")
    assert [i.text for i in items] == lines.split(b"\n")[:2]
    assert {i.framing for i in items} == {"ndjson"}


def test_mid_stream_join_resyncs_at_next_message():
    first = sse_exchange()
    second = [("send", h1_request("GET", "/v1/models")), ("recv", h1_response(200, b'{"data":[]}'))]
    conv = first + second
    # the monitor starts in the middle of the first request's body and of its response
    conv = [("send", conv[0][1][60:]), ("recv", conv[1][1][50:])] + conv[2:]
    ev = run(conv)
    (det,) = of(ev, "ConnectionDetected")
    assert det.mid_stream
    assert [h.target for h in of(ev, "RequestHead")] == ["/v1/models"]
    assert [(r.stream, r.status) for r in of(ev, "ResponseHead")] == [(1, 200)]
    assert bodies(ev)[(1, "response")] == b'{"data":[]}'
    assert any("skipped" in n.text for n in of(ev, "ProtocolNotice"))


def test_garbage_first_then_http():
    ev = run([("send", b"\x16\x03\x01 not http at all \xff\xfe\n" + h1_request("GET", "/ok")),
              ("recv", h1_response(200, b"yes"))])
    assert [h.target for h in of(ev, "RequestHead")] == ["/ok"]
    assert bodies(ev)[(1, "response")] == b"yes"


def _events_with_loss(conv, direction, index, cut, lost):
    """Feed `conv`, but bytes [cut, cut+lost) of message `index` are reported lost."""
    t = ProtocolTracker()
    offsets = {"send": 0, "recv": 0}
    out = []
    ts = 1
    for i, (d, data) in enumerate(conv):
        if i == index:
            pieces = [(data[:cut], 0), (b"", lost), (data[cut + lost:], 0)]
        else:
            pieces = [(data, 0)]
        for piece, n_lost in pieces:
            if n_lost:
                out += t.feed(ChunkEvent(ts, 7, 7, 1, d, 0, offsets[d], n_lost, b"", lost=n_lost))
                offsets[d] += n_lost
            elif piece:
                out += t.feed(ChunkEvent(ts, 7, 7, 1, d, 0, offsets[d], len(piece), piece))
                offsets[d] += len(piece)
            ts += 1
    out += t.feed(ConnClosed(ts, 7, 1))
    assert t.internal_errors == 0
    return out


def test_loss_inside_a_length_body_keeps_framing():
    body = b"A" * 5000
    conv = [("send", h1_request("POST", "/big", body)), ("recv", h1_response(200, b"done")),
            ("send", h1_request("GET", "/after")), ("recv", h1_response(200, b"after"))]
    head_len = len(conv[0][1]) - len(body)
    ev = _events_with_loss(conv, "send", 0, head_len + 1000, 2000)
    gaps = of(ev, "StreamGap")
    assert [(g.direction, g.offset, g.length) for g in gaps] == [("send", head_len + 1000, 2000)]
    req_end = [e for e in of(ev, "MessageEnd") if e.side == "request" and e.stream == 1][0]
    assert not req_end.complete and "2000 body bytes not captured" in req_end.problem
    assert req_end.wire_bytes == 5000 and req_end.body_bytes == 3000
    assert [h.target for h in of(ev, "RequestHead")] == ["/big", "/after"]
    assert bodies(ev)[(2, "response")] == b"after"


def test_loss_in_a_head_resyncs():
    conv = [("send", h1_request("GET", "/lost-head", headers={"X-Pad": "p" * 300})),
            ("recv", h1_response(200, b"r1")),
            ("send", h1_request("GET", "/next")), ("recv", h1_response(200, b"r2"))]
    ev = _events_with_loss(conv, "send", 0, 10, 50)
    assert [h.target for h in of(ev, "RequestHead")] == ["/next"]
    # the response to the unseen request is still reported, as its own exchange
    assert sorted(bodies(ev).values()) == [b"r1", b"r2"]


def test_truncated_call_is_a_gap_and_the_exchange_still_pairs():
    body = b"B" * 300_000
    req = h1_request("POST", "/huge", body)
    t = ProtocolTracker()
    ev = t.feed(ChunkEvent(1, 9, 9, 2, "send", 0, 0, len(req), req[:65536]))
    ev += t.feed(ChunkEvent(1, 9, 9, 2, "send", 0, 65536, len(req), b"", lost=len(req) - 65536,
                            truncated=True))
    resp = h1_response(200, b"ok")
    ev += t.feed(ChunkEvent(2, 9, 9, 2, "recv", 0, 0, len(resp), resp))
    ev += t.finish(3)
    req_end = [e for e in of(ev, "MessageEnd") if e.side == "request"][0]
    assert not req_end.complete and req_end.wire_bytes == 300_000
    assert of(ev, "ResponseHead")[0].stream == 1 and bodies(ev)[(1, "response")] == b"ok"


def test_upgrade_leaves_the_rest_alone():
    ev = run([("send", h1_request("GET", "/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"})),
              ("recv", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
              ("send", b"\x81\x85abcd\x00\x00\x00\x00\x00")])
    assert [r.status for r in of(ev, "ResponseHead")] == [101]
    assert not of(ev, "BodyData")


def test_traced_process_as_server():
    conv = [("recv", h1_request("POST", "/v1/chat/completions", CHAT)),
            ("send", h1_response(200, b'{"id":"x"}'))]
    ev = run(conv)
    (det,) = of(ev, "ConnectionDetected")
    assert det.role == "server"
    assert bodies(ev) == {(1, "request"): CHAT, (1, "response"): b'{"id":"x"}'}


def test_timestamps_first_and_last_byte():
    conv = [("send", h1_request("GET", "/t")),
            ("recv", h1_response(200, b"x" * 30, {"Content-Type": "text/plain"}))]
    ev = run(conv, splits=lambda d, data: [len(data) - 20, len(data) - 10] if d == "recv" else [],
             same_ts=False)
    resp, end = of(ev, "ResponseHead")[0], [e for e in of(ev, "MessageEnd") if e.side == "response"][0]
    data_ts = [e.ts for e in of(ev, "BodyData") if e.side == "response"]
    assert resp.ts == end.first_byte_ts < data_ts[-1] == end.last_byte_ts
    assert len(set(data_ts)) == 3


def test_every_two_way_split_gives_the_same_events():
    conv = sse_exchange() + [("send", h1_request("GET", "/models")),
                             ("recv", h1_response(200, encode(b'{"data":[1,2,3]}', "gzip"),
                                                  {"Content-Encoding": "gzip",
                                                   "Content-Type": "application/json"}))]
    whole = normalize(run(conv))
    for i, (_, data) in enumerate(conv):
        for cut in range(1, len(data)):
            got = normalize(run(conv, splits=lambda dd, dat, _d=data, _c=cut: [_c] if dat is _d else []))
            assert got == whole, (i, cut)
    bytewise = normalize(run(conv, splits=lambda d, data: range(1, len(data))))
    assert bytewise == whole
