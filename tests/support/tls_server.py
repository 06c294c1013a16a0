"""Loopback TLS server for end-to-end tests: HTTP/1.1 and HTTP/2 (ALPN), provider wire formats.

Run as its own process (`python tls_server.py --cert C --key K --log-dir D`); prints `PORT n`
once listening. For every connection it writes the exact plaintext it received and sent to
D/conn-N.recv and D/conn-N.sent when the connection ends: the ground truth the capture must match.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http
import json
import os
import socket
import ssl
import sys
import threading
from pathlib import Path

import brotli
import h2.config
import h2.connection
import h2.events
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_llm import load_script, request_id, respond  # noqa: E402

STREAM_PAUSE = 0.0  # seconds between SSE events (set by --sse-pause)
LATENCY = 0.0  # seconds before a reply starts, about (set by --latency)


ENCODERS = {"gzip": gzip.compress, "br": brotli.compress,
            "zstd": lambda b: zstandard.ZstdCompressor().compress(b)}


def choose_encoding(accept: str, ctype: str, path: str = "") -> str:
    """Like a real API front end: compress JSON for a client that asks, never an event stream.
    `plain` in the query turns it off (capture tests count raw bytes)."""
    if ctype.startswith("text/event-stream") or "plain" in path.partition("?")[2]:
        return ""
    for coding in (c.split(";")[0].strip().lower() for c in accept.split(",")):
        if coding in ENCODERS:
            return coding
    return ""


def reason(status: int) -> str:
    """The HTTP/1.1 reason phrase for a status (529 is Anthropic's "Overloaded")."""
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def is_streamed(ctype: str, parts: list[bytes]) -> bool:
    """Sent as it is produced: an event stream, or a body in several parts (a streamed JSON array)."""
    return ctype.startswith("text/event-stream") or len(parts) > 1


def reply_delay(status: int, body: bytes, streamed: bool, size: int) -> float:
    """How long the "model" takes before the first byte of its reply (--latency): 0.5 to 1.5 times
    LATENCY, by the request's bytes (reproducible); an error comes back sooner; a reply not
    streamed arrives whole, as late as it would have finished streaming (STREAM_PAUSE per ~30 bytes)."""
    if not LATENCY:
        return 0.0
    if status >= 400:
        return LATENCY * 0.2
    delay = LATENCY * (0.5 + hashlib.sha256(body).digest()[0] / 255)
    return delay if streamed else delay + min(3.0, STREAM_PAUSE * size / 30)


def extra_headers(status: int, method: str, path: str, body: bytes) -> list[tuple[str, str]]:
    """Headers real API front ends add: a request id (deterministic here), retry-after on 429."""
    rid = request_id(method, path, body)
    out = [("x-request-id", f"req_{rid}")]
    if path.partition("?")[0].endswith("/v1/messages"):
        out.append(("request-id", f"req_011{rid[:24]}"))
    if status == 429:
        out.append(("retry-after", "1"))
    return out


class LoggedConn:
    """A TLS socket that keeps every plaintext byte it moves, and each exchange as HTTP."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.received = bytearray()
        self.sent = bytearray()
        self.exchanges: list[dict] = []

    def log(self, stream: int, method: str, path: str, req_body: bytes, status: int, ctype: str,
            encoding: str, resp_body: bytes, events: int) -> None:
        self.exchanges.append({
            "stream": stream, "method": method, "path": path,
            "request_body": base64.b64encode(req_body).decode(), "status": status,
            "content_type": ctype, "content_encoding": encoding,
            "response_body": base64.b64encode(resp_body).decode(), "sse_events": events})

    def recv(self, n: int = 65536) -> bytes:
        data = self.sock.recv(n)
        self.received += data
        return data

    def send(self, data: bytes) -> None:
        if data:
            self.sock.sendall(data)
            self.sent += data


def serve_http1(c: LoggedConn, first: bytes) -> None:
    buf = bytearray(first)
    while True:
        while b"\r\n\r\n" not in buf:
            data = c.recv()
            if not data:
                return
            buf += data
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("expect", "").lower() == "100-continue":
            c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = bytearray()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in buf:
                    buf += c.recv()
                size_line, _, rest = bytes(buf).partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                buf = bytearray(rest)
                while len(buf) < size + 2:
                    buf += c.recv()
                body += buf[:size]
                buf = buf[size + 2 :]
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            while len(buf) < length:
                data = c.recv()
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
        status, ctype, parts = respond(method, path, bytes(body))
        close = headers.get("connection", "").lower() == "close"
        streamed = is_streamed(ctype, parts)
        encoding = "" if streamed else choose_encoding(headers.get("accept-encoding", ""), ctype, path)
        extra = "".join(f"{k}: {v}\r\n" for k, v in extra_headers(status, method, path, bytes(body)))
        stream_no = len(c.exchanges) + 1
        c.log(stream_no, method, path, bytes(body), status, ctype, encoding, b"".join(parts),
              len(parts) if ctype.startswith("text/event-stream") else 0)
        delay = reply_delay(status, bytes(body), streamed, sum(map(len, parts)))
        if delay:
            threading.Event().wait(delay)
        if streamed:
            c.send(f"HTTP/1.1 {status} {reason(status)}\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\n"
                   f"cache-control: no-cache\r\n{extra}\r\n".encode())
            # --sse-pause waits between parts; the last goes out with the terminating chunk, as
            # one write: a client that stops reading at its last event (the openai SDK closes the
            # response at `data: [DONE]`) still gets the whole body
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                c.send(b"%x\r\n%s\r\n" % (len(part), part) + (b"0\r\n\r\n" if last else b""))
                if STREAM_PAUSE and not last:
                    threading.Event().wait(STREAM_PAUSE)
            if not parts:
                c.send(b"0\r\n\r\n")
        else:
            payload = b"".join(parts)
            if encoding:
                payload = ENCODERS[encoding](payload)
                extra += f"content-encoding: {encoding}\r\n"
            if close:
                extra += "connection: close\r\n"
            c.send(f"HTTP/1.1 {status} {reason(status)}\r\ncontent-type: {ctype}\r\ncontent-length: {len(payload)}\r\n"
                   f"{extra}\r\n".encode() + payload)
        if close:
            return


def serve_h2(c: LoggedConn, first: bytes) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    conn.initiate_connection()
    conn.increment_flow_control_window(16 << 20)
    c.send(conn.data_to_send())
    requests: dict[int, dict] = {}
    pending: dict[int, bytearray] = {}  # stream -> response bytes not yet sent (flow control)
    complete: set[int] = set()  # streams whose whole body is in `pending`: end them once it is sent

    def pump() -> None:
        """Send what the windows allow, in frames of at most the peer's maximum size."""
        for sid in list(pending):
            data, ends = pending[sid], sid in complete
            if not data and ends:  # an empty body
                conn.end_stream(sid)
            while data:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                n = min(window, len(data))
                conn.send_data(sid, bytes(data[:n]), end_stream=ends and n == len(data))
                del data[:n]
            if not data and ends:
                del pending[sid]
                complete.discard(sid)
        c.send(conn.data_to_send())

    data = first
    while True:
        if not data:
            data = c.recv()
            if not data:
                return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            c.send(conn.data_to_send())
            return
        data = b""
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                requests[ev.stream_id] = {"headers": dict(ev.headers), "body": bytearray()}
                conn.increment_flow_control_window(16 << 20, stream_id=ev.stream_id)
            elif isinstance(ev, h2.events.DataReceived):
                requests[ev.stream_id]["body"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                req = requests.pop(ev.stream_id)
                hdrs = req["headers"]
                method, path = hdrs[b":method"].decode(), hdrs[b":path"].decode()
                status, ctype, parts = respond(method, path, bytes(req["body"]))
                streamed = is_streamed(ctype, parts)
                encoding = "" if streamed else choose_encoding(hdrs.get(b"accept-encoding", b"").decode(),
                                                               ctype, path)
                c.log(ev.stream_id, method, path, bytes(req["body"]), status, ctype, encoding,
                      b"".join(parts), len(parts) if ctype.startswith("text/event-stream") else 0)
                delay = reply_delay(status, bytes(req["body"]), streamed, sum(map(len, parts)))
                if delay:
                    c.send(conn.data_to_send())  # flow-control updates first, as a real server would
                    threading.Event().wait(delay)
                resp_headers = [(":status", str(status)), ("content-type", ctype),
                                *extra_headers(status, method, path, bytes(req["body"]))]
                if encoding:
                    resp_headers.append(("content-encoding", encoding))
                    parts = [ENCODERS[encoding](b"".join(parts))]
                conn.send_headers(ev.stream_id, resp_headers)
                pending[ev.stream_id] = bytearray()
                if streamed:  # one DATA frame per part, as long as the window and frame size allow
                    for part in parts:
                        pending[ev.stream_id] += part
                        pump()
                        if STREAM_PAUSE:
                            threading.Event().wait(STREAM_PAUSE)
                else:
                    pending[ev.stream_id] += b"".join(parts)
                complete.add(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                c.send(conn.data_to_send())
                return
        pump()


def handle(raw: socket.socket, ctx: ssl.SSLContext, n: int, log_dir: Path) -> None:
    c = None
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
        c = LoggedConn(tls)
        first = c.recv()
        if tls.selected_alpn_protocol() == "h2" or first.startswith(b"PRI * HTTP/2.0"):
            serve_h2(c, first)
        elif first:
            serve_http1(c, first)
    except (OSError, ValueError, KeyError) as e:
        print(f"conn {n}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        if c is not None:
            (log_dir / f"conn-{n}.recv").write_bytes(bytes(c.received))
            (log_dir / f"conn-{n}.sent").write_bytes(bytes(c.sent))
            (log_dir / f"conn-{n}.http.json").write_text(json.dumps(c.exchanges))
            (log_dir / f"conn-{n}.done").write_text("")
        raw.close()


def main() -> None:
    global STREAM_PAUSE, LATENCY
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--sse-pause", type=float, default=0.0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--script", help="scripted replies (see fake_llm.py)")
    args = ap.parse_args()
    STREAM_PAUSE, LATENCY = args.sse_pause, args.latency
    if args.script:
        load_script(args.script)
    try:  # a recognisable process name, so tests can tell the server's captures from clients'
        Path("/proc/self/comm").write_text("llmspy-testsrv")
    except OSError:
        pass
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(128)
    print(f"PORT {srv.getsockname()[1]}", flush=True)
    n = 0
    while True:
        raw, _ = srv.accept()
        n += 1
        threading.Thread(target=handle, args=(raw, ctx, n, log_dir), daemon=True).start()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
