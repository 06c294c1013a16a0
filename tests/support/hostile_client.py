"""Real clients (Python's ssl over OpenSSL) that send and receive bad input, for
tests/test_hostile_live.py: `python hostile_client.py CAFILE CASE ARGS...`.

Each case prints one JSON line: what the client sent and received, bodies in base64, so the test
can hold the monitor's account against it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_server import H2_PREFACE, frame  # noqa: E402

CAFILE = sys.argv[1]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ctx(alpn: list[str] | None = None) -> ssl.SSLContext:
    c = ssl.create_default_context(cafile=CAFILE)
    if alpn:
        c.set_alpn_protocols(alpn)
    return c


def connect(port: int, alpn: list[str] | None = None) -> ssl.SSLSocket:
    return ctx(alpn).wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")


def read_all(s: ssl.SSLSocket, timeout: float = 5.0, until: bytes | None = None) -> bytes:
    """Everything until the peer closes (a ragged close is fine), the timeout, or `until`."""
    s.settimeout(timeout)
    out = bytearray()
    try:
        while until is None or until not in out:
            data = s.recv(1 << 20)
            if not data:
                break
            out += data
    except (OSError, ssl.SSLError):
        pass
    return bytes(out)


def chat_body(text: str, stream: bool = False, model: str = "gpt-4o-mini", messages=None) -> bytes:
    body = {"model": model, "messages": messages or [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def h1_call(conn: http.client.HTTPSConnection, path: str, body: bytes, headers: dict | None = None) -> dict:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                   "Accept-Encoding": "identity", **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    return {"path": path, "request": b64(body), "status": resp.status, "body": b64(data)}


# -- HTTP/2 by hand (hpack for good header blocks, raw bytes for bad ones) -------------------

def hpack_int(value: int, prefix: int, flags: int) -> bytes:
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes([flags | value])
    out = [flags | mask]
    value -= mask
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name: str, value: str) -> bytes:
    """A literal field never indexed, new name, no Huffman: uses no table at all."""
    n, v = name.encode(), value.encode()
    return b"\x10" + hpack_int(len(n), 7, 0) + n + hpack_int(len(v), 7, 0) + v


def request_block(path: str, extra: list[tuple[str, str]] = ()) -> bytes:
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"), (":path", path),
              ("content-type", "application/json"), *extra]
    return b"".join(literal(k, v) for k, v in fields)


def h2_frames(data: bytes):
    """(type, flags, stream, payload) of each whole frame in data."""
    p = 0
    while p + 9 <= len(data):
        n = int.from_bytes(data[p : p + 3], "big")
        if p + 9 + n > len(data):
            break
        yield data[p + 3], data[p + 4], int.from_bytes(data[p + 5 : p + 9], "big") & 0x7FFFFFFF, data[p + 9 : p + 9 + n]
        p += 9 + n


def h2_read_until(s: ssl.SSLSocket, streams: set[int], timeout: float = 10.0) -> dict[int, bytes]:
    """DATA of each stream, read until every stream in `streams` ended (or EOF / timeout)."""
    s.settimeout(timeout)
    buf = bytearray()
    bodies: dict[int, bytearray] = {}
    ended: set[int] = set()
    try:
        while not streams <= ended:
            data = s.recv(1 << 20)
            if not data:
                break
            buf += data
            p = 0
            for ftype, flags, sid, payload in h2_frames(bytes(buf)):
                p += 9 + len(payload)
                if ftype == 0:
                    bodies.setdefault(sid, bytearray()).extend(payload)
                if ftype in (0, 1) and flags & 1:
                    ended.add(sid)
                if ftype == 4 and not flags & 1:
                    s.sendall(frame(4, 1, 0, b""))
            del buf[:p]
    except (OSError, ssl.SSLError):
        pass
    return {k: bytes(v) for k, v in bodies.items()}


# -- cases ---------------------------------------------------------------------------------

def case_garbage(gport: int, llm_port: int) -> dict:
    """a: random bytes both ways on one connection, then a valid call on a new one."""
    rnd = random.Random(99)
    s = connect(gport)
    sent = b""
    for _ in range(4):
        chunk = rnd.randbytes(4000)
        s.sendall(chunk)
        sent += chunk
    got = b""
    s.settimeout(5)
    while len(got) < 15000:
        data = s.recv(65536)
        if not data:
            break
        got += data
    s.close()
    del s
    conn = http.client.HTTPSConnection("localhost", llm_port, context=ctx())
    call = h1_call(conn, "/v1/chat/completions", chat_body("after the garbage"))
    conn.close()
    return {"garbage_sent": len(sent), "garbage_received": len(got), "call": call}


def case_h2junk(jport: int, llm_port: int) -> dict:
    """b: HTTP/2 preface, then malformed frames both ways; then a good HTTP/2 connection."""
    s = connect(jport, ["h2"])
    junk = [
        frame(4, 0, 0, b""),
        frame(0, 0, 1, b"z" * 100, length=0x100000),  # 1 MB claimed: over the 16 KB allowed
        frame(0x42, 0, 0, b"unknown type"),
        frame(0, 0x01, 0, b"DATA on stream 0"),
        frame(1, 0x05, 0, request_block("/v1/chat/completions")),  # HEADERS on stream 0
        frame(1, 0x05, 1, b"\xff\xff\xff\xff\xff\xff\xff"),  # an HPACK integer that never ends
        frame(1, 0x05, 3, b"\x82\x86\xbf\xff\xff\xff\x0f"),  # an index far past any table
        frame(9, 0x04, 7, b"\x82"),  # CONTINUATION without a HEADERS
        frame(3, 0, 5, b"\x00"),  # RST_STREAM of 1 byte
        frame(0, 0, 9, b"y" * 64, length=0x7FFFFF),  # claims 8 MB, has 64 bytes
    ]
    s.sendall(H2_PREFACE + b"".join(junk))
    got = read_all(s, timeout=1.0)
    s.close()
    del s
    import httpx

    with httpx.Client(http2=True, verify=ctx()) as c:
        r = c.post(f"https://localhost:{llm_port}/v1/chat/completions", content=chat_body("after h2 junk"),
                   headers={"content-type": "application/json", "accept-encoding": "identity"})
    return {"junk_received": len(got), "call": {"status": r.status_code, "http_version": r.http_version,
                                                "body": b64(r.content)}}


def case_badjson(port: int) -> dict:
    """c: invalid JSON request body; then invalid JSON response body; to an LLM endpoint."""
    conn = http.client.HTTPSConnection("localhost", port, context=ctx())
    bad_req = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "broken'
    calls = [h1_call(conn, "/v1/chat/completions?mode=ok", bad_req),
             h1_call(conn, "/v1/chat/completions?mode=badjson", chat_body("answer with broken JSON"))]
    conn.close()
    return {"calls": calls}


def case_nonutf8(port: int) -> dict:
    """d: bytes that are not UTF-8 inside JSON strings: a reply, a streamed reply, a request."""
    conn = http.client.HTTPSConnection("localhost", port, context=ctx())
    bad_req = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "na\xefve \xff request"}]}'
    calls = [h1_call(conn, "/v1/chat/completions?mode=nonutf8", chat_body("reply with latin-1")),
             h1_call(conn, "/v1/chat/completions?mode=nonutf8sse", chat_body("stream latin-1", stream=True)),
             h1_call(conn, "/v1/chat/completions?mode=ok", bad_req)]
    conn.close()
    return {"calls": calls}


def case_bighead(h1_port: int, h2_port: int) -> dict:
    """e: 1 MB of HTTP/1.1 request headers; HTTP/2 header blocks of 600 KB and 1.5 MB over
    CONTINUATION frames; HPACK indexes out of range and a table size update to 2^31."""
    conn = http.client.HTTPSConnection("localhost", h1_port, context=ctx())
    filler = {f"x-filler-{i}": "f" * 1000 for i in range(1024)}
    calls = [h1_call(conn, "/v1/chat/completions?mode=ok", chat_body("one megabyte of headers"), filler),
             h1_call(conn, "/v1/chat/completions?mode=ok", chat_body("small headers after big ones"))]
    conn.close()

    s = connect(h2_port, ["h2"])
    s.sendall(H2_PREFACE + frame(4, 0, 0, b""))
    enc = hpack.Encoder()
    good = [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
            (":path", "/v1/chat/completions?mode=ok"), ("content-type", "application/json"),
            ("user-agent", "hostile-h2/1")]
    out = bytearray()
    bodies = {}

    def req(sid: int, block: bytes, body: bytes, max_frame: int = 16384) -> None:
        first, rest = block[:max_frame], block[max_frame:]
        out.extend(frame(1, 0 if rest else 0x04, sid, first))
        while rest:
            piece, rest = rest[:max_frame], rest[max_frame:]
            out.extend(frame(9, 0 if rest else 0x04, sid, piece))
        out.extend(frame(0, 0x01, sid, body))
        bodies[sid] = body

    req(1, enc.encode(good), chat_body("h2 good first"))
    req(3, b"\x82\x86" + hpack_int(5000, 7, 0x80), chat_body("h2 index out of range"))  # index 5000
    req(5, hpack_int(1 << 31, 5, 0x20) + request_block("/v1/chat/completions?mode=ok"),
        chat_body("h2 table size 2^31"))
    req(7, request_block("/v1/chat/completions?mode=ok"), chat_body("h2 good after abuse"))
    req(9, request_block("/v1/chat/completions?mode=ok", [("x-giant", "g" * 600_000)]),
        chat_body("h2 600 KB header block"))
    req(11, request_block("/v1/chat/completions?mode=ok", [("x-giant", "h" * 1_500_000)]),
        chat_body("h2 1.5 MB header block"))
    req(13, request_block("/v1/chat/completions?mode=ok"), chat_body("h2 good at the end"))
    for i in range(0, len(out), 1 << 16):
        s.sendall(out[i : i + (1 << 16)])
    got = h2_read_until(s, set(bodies))
    s.close()
    return {"calls": calls, "h2_requests": {sid: b64(b) for sid, b in bodies.items()},
            "h2_responses": {sid: b64(b) for sid, b in got.items()}}


def case_bomb(port: int) -> dict:
    """f: a reply of 1 GiB of zeros, gzip-compressed (read as it is: never inflated here)."""
    conn = http.client.HTTPSConnection("localhost", port, context=ctx())
    call = h1_call(conn, "/v1/chat/completions?mode=bomb", chat_body("send me a bomb"))
    conn.close()
    return {"wire_bytes": len(base64.b64decode(call["body"])), "status": call["status"]}


def case_big(port: int, size: int) -> dict:
    """g: a request body of `size` bytes, written 1 MiB per SSL_write."""
    head = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    piece = b"0123456789abcdef" * 65536  # 1 MiB
    s = connect(port)
    s.sendall(b"POST /v1/chat/completions?mode=ok HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size)
    s.sendall(head)
    left = size - len(head) - len(tail)
    writes = 2
    while left:
        n = min(left, len(piece))
        s.sendall(piece[:n])
        left -= n
        writes += 1
        time.sleep(0.002)
    s.sendall(tail)
    resp = read_all(s, timeout=30.0, until=b'"total_tokens"')
    s.close()
    return {"size": size, "writes": writes + 1, "response": b64(resp)}


def case_ssecut(h1_port: int, h2_port: int) -> dict:
    """h: streams cut in the middle of a `data:` line (OpenAI over HTTP/1.1, Anthropic over HTTP/2)."""
    s = connect(h1_port)
    body = chat_body("stream then drop", stream=True)
    s.sendall(b"POST /v1/chat/completions?mode=sse_cut HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    h1 = read_all(s)
    s.close()
    del s
    s = connect(h2_port, ["h2"])
    abody = json.dumps({"model": "claude-3-5-haiku-20241022", "max_tokens": 64, "stream": True,
                        "messages": [{"role": "user", "content": "stream then drop"}]}).encode()
    s.sendall(H2_PREFACE + frame(4, 0, 0, b"")
              + frame(1, 0x04, 1, request_block("/v1/messages?mode=sse_cut_anthropic",
                                                [("anthropic-version", "2023-06-01")]))
              + frame(0, 0x01, 1, abody))
    raw = read_all(s)
    s.close()
    data = b"".join(p for t, _, sid, p in h2_frames(raw) if t == 0 and sid == 1)
    return {"h1_raw": b64(h1), "h2_data": b64(data)}


def case_killed(port: int, how: str) -> dict:
    """i: a streamed call the process never finishes: it exits (os._exit) or waits to be killed."""
    s = connect(port)
    body = chat_body("a long stream", stream=True)
    s.sendall(b"POST /v1/chat/completions?mode=slow_sse HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    got = bytearray()
    while got.count(b"data: ") < 3:
        data = s.recv(65536)
        if not data:
            raise SystemExit("the stream ended early")
        got += data
    print("READY", flush=True)
    if how == "exit":
        os._exit(0)
    time.sleep(120)
    return {}


def case_chat(port: int, messages: str) -> dict:
    """j: one call with the given messages (JSON)."""
    conn = http.client.HTTPSConnection("localhost", port, context=ctx())
    call = h1_call(conn, "/v1/chat/completions", chat_body("", messages=json.loads(messages)))
    conn.close()
    return {"call": call}


def case_midjoin(port: int, go: str) -> dict:
    """k: a keep-alive HTTP/1.1 connection and an HTTP/2 connection with a call each, then (once
    the monitor runs) more calls on both, a streamed one among them."""
    h1 = http.client.HTTPSConnection("localhost", port, context=ctx())
    sock = connect(port, ["h2"])
    assert sock.selected_alpn_protocol() == "h2"
    h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    h2c.initiate_connection()
    sock.sendall(h2c.data_to_send())

    def h2_call(body: bytes) -> dict:
        sid = h2c.get_next_available_stream_id()
        h2c.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", f"localhost:{port}"),
                               (":path", "/v1/chat/completions"), ("content-type", "application/json"),
                               ("authorization", "Bearer sk-test-midjoin-0123456789"),
                               ("user-agent", "hostile-midjoin/1.0"), ("accept-encoding", "identity")])
        h2c.send_data(sid, body, end_stream=True)
        sock.sendall(h2c.data_to_send())
        data, status, done = bytearray(), 0, False
        while not done:
            for ev in h2c.receive_data(sock.recv(65536)):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    h2c.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
            sock.sendall(h2c.data_to_send())
        return {"stream": sid, "request": b64(body), "status": status, "body": b64(bytes(data))}

    before = [h1_call(h1, "/v1/chat/completions", chat_body("before the monitor, h1")),
              h2_call(chat_body("before the monitor, h2"))]
    print("READY", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.02)
    after_h1 = [h1_call(h1, "/v1/chat/completions", chat_body("after, h1 plain")),
                h1_call(h1, "/v1/chat/completions", chat_body("after, h1 streamed", stream=True))]
    after_h2 = [h2_call(chat_body("after, h2 streamed", stream=True)),
                h2_call(chat_body("after, h2 plain"))]
    h1.close()
    sock.close()
    return {"before": before, "after_h1": after_h1, "after_h2": after_h2}


CASES = {"garbage": case_garbage, "h2junk": case_h2junk, "badjson": case_badjson, "nonutf8": case_nonutf8,
         "bighead": case_bighead, "bomb": case_bomb, "big": case_big, "ssecut": case_ssecut,
         "killed": case_killed, "chat": case_chat, "midjoin": case_midjoin}


if __name__ == "__main__":
    name, args = sys.argv[2], sys.argv[3:]
    conv = [int(a) if a.isdigit() else a for a in args]
    print(json.dumps(CASES[name](*conv)), flush=True)
