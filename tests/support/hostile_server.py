"""Loopback TLS server that misbehaves on purpose, for tests/test_hostile_live.py.

Run as its own process (`python hostile_server.py --cert C --key K [--bomb FILE]`); prints one
line `PORTS {"garbage": n, "h2junk": n, "http1": n, "h2": n}` once listening. One listening
port per kind of connection:

- garbage: random bytes back for whatever comes in (not HTTP at all), then close.
- h2junk:  an HTTP/2 server preface, then malformed frames (unknown type, DATA and HEADERS on
           stream 0, undecodable HPACK, a WINDOW_UPDATE of the wrong length, a frame that
           claims 16 MB), then close.
- http1:   HTTP/1.1 of any head size and body size; the reply is chosen by `mode=` in the query
           (see REPLIES and the special modes in serve_http1).
- h2:      HTTP/2 that never polices the client's HPACK (an undecodable header block still gets
           an answer), so the monitor sees a reply to every stream; `mode=` as for http1.

The server is a TLS *server*: the monitor skips its side in the kernel (inbound), so only the
clients' captures are seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

import hpack

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BOMB: bytes = b""  # --bomb: a gzip body served by mode=bomb

OPENAI_WORDS = ["Hel", "lo", " from", " the", " hostile", " server"]


def frame(ftype: int, flags: int, sid: int, payload: bytes, length: int | None = None) -> bytes:
    """An HTTP/2 frame; `length` overrides the length field (to lie about it)."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes((ftype, flags)) + struct.pack(">I", sid) + payload


def chat_json(text: str = "ok", model: str = "gpt-4o-mini") -> dict:
    return {"id": "chatcmpl-hostile", "object": "chat.completion", "created": 1763769600, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}


def openai_sse(words: list[str]) -> list[bytes]:
    out = []
    for w in words:
        obj = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": {"content": w}}]}
        # lone surrogates become the raw bytes they stand for: not UTF-8 on the wire
        out.append(f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode("utf-8", "surrogateescape"))
    return out


def anthropic_sse(words: list[str]) -> list[bytes]:
    def ev(name: str, obj: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode()

    out = [ev("message_start", {"type": "message_start", "message": {
        "id": "msg_hostile", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
        "content": [], "usage": {"input_tokens": 12, "output_tokens": 1}}}),
           ev("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})]
    for w in words:
        out.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": w}}))
    return out


# mode -> (status, content-type, body parts, extra headers); a streamed reply has several parts
def reply(mode: str) -> tuple[int, str, list[bytes], list[tuple[str, str]]]:
    if mode == "badjson":  # an LLM endpoint answering with broken JSON
        return 200, "application/json", [b'{"id": "chatcmpl-bad", "choices": [{"message": {"content": "cut'], []
    if mode == "nonutf8":  # JSON whose string holds bytes that are not UTF-8
        body = json.dumps(chat_json("caf\udce9 ok", "gpt-4o-mini"), ensure_ascii=False)
        return 200, "application/json", [body.encode("utf-8", "surrogateescape")], []
    if mode == "nonutf8sse":
        parts = openai_sse(["good ", "bad\udcff\udcfe", " end"]) + [b"data: [DONE]\n\n"]
        return 200, "text/event-stream", parts, []
    if mode == "bomb":
        return 200, "application/json", [BOMB], [("content-encoding", "gzip")]
    if mode == "sse":
        return 200, "text/event-stream", openai_sse(OPENAI_WORDS) + [b"data: [DONE]\n\n"], []
    return 200, "application/json", [json.dumps(chat_json()).encode()], []


# -- not HTTP at all ------------------------------------------------------------------------

def serve_garbage(tls: ssl.SSLSocket) -> None:
    rnd = random.Random(1234)
    tls.recv(65536)
    for _ in range(3):
        tls.sendall(rnd.randbytes(5000))
    tls.settimeout(5)
    while tls.recv(65536):
        pass


def serve_h2junk(tls: ssl.SSLSocket) -> None:
    tls.recv(65536)
    junk = [
        frame(4, 0, 0, b""),  # our SETTINGS: a good start
        frame(0, 0, 1, b"z" * 100, length=0x100000),  # 1 MB claimed: over the 16 KB allowed
        frame(0x42, 0, 0, b"unknown frame type"),
        frame(0, 0x01, 0, b"DATA on stream 0"),
        frame(1, 0x05, 0, b"\x82\x86"),  # HEADERS on stream 0
        frame(1, 0x05, 1, b"\xff\xff\xff\xff\xff\xff\xff"),  # HPACK: an integer that never ends
        frame(1, 0x05, 3, b"\xbf\xff\xff\xff\x0f"),  # HPACK: index far past any table
        frame(8, 0, 0, b"\x00\x00\x01"),  # WINDOW_UPDATE of 3 bytes
        frame(0, 0, 1, b"x" * 100, length=0xFFFFFF),  # claims 16 MB, has 100 bytes
    ]
    for f in junk:
        tls.sendall(f)
    tls.settimeout(5)
    try:
        while tls.recv(65536):
            pass
    except (OSError, ssl.SSLError):
        pass


# -- HTTP/1.1 -------------------------------------------------------------------------------

def _mode(target: str) -> str:
    return parse_qs(urlsplit(target).query).get("mode", ["ok"])[0]


def serve_http1(tls: ssl.SSLSocket) -> None:
    buf = bytearray()
    while True:
        while b"\r\n\r\n" not in buf:
            data = tls.recv(1 << 20)
            if not data:
                return
            buf += data
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        target = lines[0].split(b" ")[1].decode()
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        need = length - min(len(rest), length)
        left = rest[length:]
        while need > 0:  # bodies are counted, not kept (one is 100 MB)
            data = tls.recv(1 << 20)
            if not data:
                return
            if len(data) > need:
                left = data[need:]
            need -= min(need, len(data))
        buf = bytearray(left)
        mode = _mode(target)
        if mode in ("sse_cut", "slow_sse"):
            tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            parts = openai_sse(OPENAI_WORDS if mode == "sse_cut" else OPENAI_WORDS * 50)
            for i, p in enumerate(parts):
                if mode == "sse_cut" and i == 3:  # half of a `data:` line, then the connection drops
                    half = p[: len(p) // 2]
                    tls.sendall(b"%x\r\n%s" % (len(p), half))
                    time.sleep(0.2)
                    tls.close()  # no close_notify, no last chunk
                    return
                tls.sendall(b"%x\r\n%s\r\n" % (len(p), p))
                if mode == "slow_sse":
                    time.sleep(0.2)
            tls.sendall(b"0\r\n\r\n")
            continue
        status, ctype, parts, extra = reply(mode)
        hdrs = "".join(f"{k}: {v}\r\n" for k, v in extra)
        if len(parts) > 1:
            tls.sendall(f"HTTP/1.1 {status} OK\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\n"
                        f"{hdrs}\r\n".encode())
            for p in parts:
                tls.sendall(b"%x\r\n%s\r\n" % (len(p), p))
            tls.sendall(b"0\r\n\r\n")
        else:
            body = parts[0]
            head = (f"HTTP/1.1 {status} OK\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
                    f"{hdrs}\r\n").encode()
            tls.sendall(head)
            for i in range(0, len(body), 1 << 16):  # as a real server writes a big body: in pieces
                tls.sendall(body[i : i + (1 << 16)])


# -- HTTP/2 that answers anything ---------------------------------------------------------

def _read_frame(tls: ssl.SSLSocket, buf: bytearray):
    while len(buf) < 9:
        data = tls.recv(1 << 20)
        if not data:
            return None
        buf += data
    length = int.from_bytes(buf[:3], "big")
    while len(buf) < 9 + length:
        data = tls.recv(1 << 20)
        if not data:
            return None
        buf += data
    ftype, flags = buf[3], buf[4]
    sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
    payload = bytes(buf[9 : 9 + length])
    del buf[: 9 + length]
    return ftype, flags, sid, payload


def serve_h2(tls: ssl.SSLSocket) -> None:
    buf = bytearray()
    while len(buf) < len(H2_PREFACE):
        data = tls.recv(65536)
        if not data:
            return
        buf += data
    del buf[: len(H2_PREFACE)]
    tls.sendall(frame(4, 0, 0, b"") + frame(8, 0, 0, struct.pack(">I", 1 << 30)))
    enc = hpack.Encoder()
    dec = hpack.Decoder(max_header_list_size=1 << 24)
    dec.max_allowed_table_size = 1 << 31
    blocks: dict[int, bytearray] = {}
    block_sid = 0
    paths: dict[int, str] = {}

    def answer(sid: int) -> bool:
        mode = _mode(paths.get(sid, "/"))
        if mode == "sse_cut_anthropic":
            tls.sendall(frame(1, 0x04, sid, enc.encode([(":status", "200"), ("content-type", "text/event-stream")])))
            parts = anthropic_sse(["Hello", " wor", "ld"])
            for p in parts[:-1]:
                tls.sendall(frame(0, 0, sid, p))
            cut = parts[-1][: len(parts[-1]) - 25]  # inside the last `data:` line
            tls.sendall(frame(0, 0, sid, cut))
            time.sleep(0.2)
            tls.close()
            return False
        status, ctype, parts, extra = reply(mode)
        tls.sendall(frame(1, 0x04, sid, enc.encode([(":status", str(status)), ("content-type", ctype), *extra])))
        for i, p in enumerate(parts):
            tls.sendall(frame(0, 0x01 if i == len(parts) - 1 else 0, sid, p))
        return True

    def block_done(sid: int, end_stream: bool) -> bool:
        nonlocal dec
        block = bytes(blocks.pop(sid, b""))
        try:
            headers = dict(dec.decode(block, raw=False))
            paths[sid] = headers.get(":path", "/")
        except Exception:  # noqa: BLE001 - whatever the client sent, it gets an answer
            dec = hpack.Decoder(max_header_list_size=1 << 24)
            dec.max_allowed_table_size = 1 << 31
        return answer(sid) if end_stream else True

    end_after_block: dict[int, bool] = {}
    while True:
        f = _read_frame(tls, buf)
        if f is None:
            return
        ftype, flags, sid, payload = f
        if ftype == 4 and not flags & 1:
            tls.sendall(frame(4, 1, 0, b""))
        elif ftype == 1:  # HEADERS (no padding or priority from our clients)
            blocks[sid] = bytearray(payload)
            block_sid = sid
            end_after_block[sid] = bool(flags & 1)
            if flags & 4 and not block_done(sid, end_after_block.pop(sid)):
                return
        elif ftype == 9 and block_sid in blocks:
            blocks[block_sid] += payload
            if flags & 4 and not block_done(block_sid, end_after_block.pop(block_sid)):
                return
        elif ftype == 0:
            if payload:
                tls.sendall(frame(8, 0, 0, struct.pack(">I", len(payload))))
            if flags & 1 and not answer(sid):
                return
        elif ftype == 7:
            return


KINDS = {"garbage": serve_garbage, "h2junk": serve_h2junk, "http1": serve_http1, "h2": serve_h2}


def handle(raw: socket.socket, ctx: ssl.SSLContext, kind: str) -> None:
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
        KINDS[kind](tls)
    except (OSError, ValueError, IndexError) as e:
        print(f"{kind}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        raw.close()


def listen(ctx: ssl.SSLContext, kind: str) -> int:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def loop() -> None:
        while True:
            raw, _ = srv.accept()
            threading.Thread(target=handle, args=(raw, ctx, kind), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def main() -> None:
    global BOMB
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--bomb", help="a gzip file served by mode=bomb")
    args = ap.parse_args()
    if args.bomb:
        with open(args.bomb, "rb") as f:
            BOMB = f.read()
    try:
        with open("/proc/self/comm", "w") as f:
            f.write("llmspy-hostile")
    except OSError:
        pass
    ports = {}
    for kind in KINDS:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["h2"] if kind in ("h2", "h2junk") else ["http/1.1"])
        ports[kind] = listen(ctx, kind)
    print("PORTS " + json.dumps(ports), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
