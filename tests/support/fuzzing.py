"""Garbage and mutated streams through the whole protocol layer: nothing may escape.

Used by the test suite (a fixed number of cases) and by bench/protocol_fuzz.py (longer runs).
Every case is a conversation from the corpus, mutated, fed as capture chunks cut at random
places, sometimes with lost ranges, overlaps and a missing close, then finished.
"""

from __future__ import annotations

import random

from wire import H2Pair, chunked, encode, h1_request, h1_response, sse

from llmspy_tui.capture.events import ChunkEvent, ConnClosed, ProcessExit
from llmspy_tui.protocol import Limits, ProtocolTracker
from llmspy_tui.protocol.sync import H2_PREFACE


def corpus() -> list[list[tuple[str, bytes]]]:
    stream = sse([(None, '{"choices":[{"delta":{"content":"Hi"}}]}'), (None, "[DONE]")])
    convs = [
        [("send", h1_request("POST", "/v1/chat/completions", b'{"model":"gpt-4o","stream":true}',
                             {"Content-Type": "application/json", "Authorization": "Bearer sk-1"})),
         ("recv", h1_response(200, chunked(stream), {"Content-Type": "text/event-stream",
                                                      "Transfer-Encoding": "chunked"}))],
        [("send", h1_request("GET", "/a") + h1_request("HEAD", "/b")),
         ("recv", h1_response(200, encode(b'[{"x":1},{"y":[2,3]}]', "gzip"),
                              {"Content-Encoding": "gzip", "Content-Type": "application/json"})
          + h1_response(200, b"", {"Content-Length": "99"}))],
        [("send", h1_request("POST", "/api/chat", b"{}", {"Expect": "100-continue"})),
         ("recv", b"HTTP/1.1 100 Continue\r\n\r\n"),
         ("recv", h1_response(200, b'{"a":1}\n{"b":2}\n', {"Content-Type": "application/x-ndjson"},
                              length=False))],
        [("send", h1_request("GET", "/br")),
         ("recv", h1_response(200, encode(b"brotli body " * 30, "br"), {"Content-Encoding": "br"})),
         ("send", h1_request("GET", "/zs")),
         ("recv", h1_response(200, encode(b"zstd body " * 30, "zstd"), {"Content-Encoding": "zstd"}))],
    ]
    p = H2Pair()
    p.request(1, "POST", "/v1/messages", b'{"model":"claude"}', extra=[("x-api-key", "sk-ant")])
    p.request(3, "GET", "/v1/models", extra=[("x-api-key", "sk-ant")])
    p.respond(1, 200, [("content-type", "text/event-stream")])
    p.respond(3, 200, [("content-type", "application/json"), ("content-encoding", "gzip")])
    p.data(1, sse([("message_start", "{}"), ("ping", "{}")]), pad=4)
    p.data(3, encode(b'{"data":[]}', "gzip"), end=True)
    p.data(1, sse([("message_stop", "{}")]), end=True)
    p.request(5, "POST", "/x", b"q" * 100, extra=[("x-api-key", "sk-ant")])
    p.reset(5)
    convs.append(p.conv)
    return convs


_INTERESTING = [b"\r\n", b"\r\n\r\n", b"0\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b"GET / HTTP/1.1\r\n",
                b"Content-Length: 99999999\r\n", b"Transfer-Encoding: chunked\r\n", H2_PREFACE,
                b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", b"\xff\xff\xff\x00\x01\x00\x00\x00\x01",
                b"data: ", b"\n\n", b"\x1f\x8b\x08\x00", b"[", b"{\"", b"\\", b"\""]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not b:
            b += rng.randbytes(rng.randint(1, 64))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            del b[i : i + rng.randint(1, 64)]
        elif op == 3:
            b[i:i] = rng.randbytes(rng.randint(1, 64))
        elif op == 4:
            b[i:i] = rng.choice(_INTERESTING)
        elif op == 5:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 200)]
        else:
            del b[i:]
    return bytes(b)


def make_case(rng: random.Random, convs) -> list:
    """Capture events for one fuzz case."""
    kind = rng.random()
    if kind < 0.1:  # pure garbage, both ways
        conv = [(rng.choice(("send", "recv")), rng.randbytes(rng.randint(1, 2000)))
                for _ in range(rng.randint(1, 5))]
    else:
        conv = [list(m) for m in rng.choice(convs)]
        if kind < 0.2:  # splice another conversation in
            conv += [list(m) for m in rng.choice(convs)]
        for m in conv:
            if rng.random() < 0.5:
                m[1] = mutate(rng, m[1])
        if rng.random() < 0.2:
            conv = conv[rng.randrange(len(conv)):]  # joined late
    pid, ssl = rng.randint(1, 5), rng.randint(1, 3)
    offsets = {"send": 0, "recv": 0}
    events = []
    ts = 1
    for direction, data in conv:
        if rng.random() < 0.1:
            direction = "recv" if direction == "send" else "send"
        i = 0
        while i < len(data):
            n = rng.choice((1, 2, 7, 64, 512, 4096, 1 << 20))
            piece = data[i : i + n]
            r = rng.random()
            if r < 0.03:  # lost
                events.append(ChunkEvent(ts, pid, pid, ssl, direction, 0, offsets[direction],
                                         len(piece), b"", lost=len(piece)))
            elif r < 0.05:  # overlap: part of it again
                back = min(offsets[direction], rng.randint(1, 50))
                events.append(ChunkEvent(ts, pid, pid, ssl, direction, 0, offsets[direction] - back,
                                         len(piece), data[max(0, i - back) : i] + piece))
            else:
                events.append(ChunkEvent(ts, pid, pid, ssl, direction, 0, offsets[direction],
                                         len(piece), piece))
            offsets[direction] += len(piece)
            i += n
            ts += rng.randint(0, 1000)
    end = rng.random()
    if end < 0.4:
        events.append(ConnClosed(ts, pid, ssl))
    elif end < 0.6:
        events.append(ProcessExit(ts, pid))
    return events


def fuzz(cases: int, seed: int = 1) -> dict:
    """Run `cases` cases; raise at the first escaped exception or parser error, with its seed."""
    convs = corpus()
    rng = random.Random(seed)
    stats = {"cases": 0, "events": 0, "bytes": 0}
    limits = Limits(max_decoded_body=1 << 20, resync_window=64 * 1024)
    for n in range(cases):
        case_seed = rng.getrandbits(64)
        case_rng = random.Random(case_seed)
        events = make_case(case_rng, convs)
        t = ProtocolTracker(limits)
        try:
            out = t.feed_many(events)
            out += t.finish(10**12)
        except Exception as e:  # pragma: no cover - a failure to report with its seed
            raise AssertionError(f"case {n} (seed {case_seed}) raised {type(e).__name__}: {e}") from e
        if t.internal_errors:
            notes = [e.text for e in out if type(e).__name__ == "ProtocolNotice" and "internal" in e.text]
            raise AssertionError(f"case {n} (seed {case_seed}): parser error {notes}")
        stats["cases"] += 1
        stats["events"] += len(out)
        stats["bytes"] += sum(len(e.data) for e in events if type(e) is ChunkEvent)
    return stats
