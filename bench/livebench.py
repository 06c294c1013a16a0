"""Shared parts of the live benchmarks (bench/loss.py, bench/latency.py): a loopback HTTPS
server and clients that count their own plaintext, the monitor run in-process, and the
BENCH-RESULT line.

Why our own server and clients rather than tests/support/tls_server.py and an SDK:
- the test server keeps every byte of every connection in memory (its ground truth for the
  capture tests); a 10 s run of 1 MiB exchanges would hold gigabytes;
- the benchmarks need the *client's* exact plaintext byte counts (heads and bodies as written
  to and read from the TLS socket) and a steady SSE pace set per request, which an SDK hides.
Both sides use Python's ssl module, i.e. the system OpenSSL, which the monitor hooks.

The server and clients run as separate processes (`python bench/livebench.py server|stream|bulk
...`), so the only Python threads in the benchmark process are the monitor's, as in the app.

Wire formats are OpenAI chat completions (POST /v1/chat/completions, Host api.openai.com), so
the exchanges go through the whole provider layer, not only HTTP parsing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "tests" / "support")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

HOST = "api.openai.com"
PATH = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
WORDS = ["the", "build", "failed", "because", "the", "disk", "on", "the", "runner", "was", "full", "so", "the", "cache", "could", "not", "be", "restored", "and", "every", "step", "after", "it", "timed", "out", "while", "waiting", "for", "artifacts"]


# -- payloads -----------------------------------------------------------------------------------

def text_of_size(n: int, seed: int = 0) -> str:
    """`n` characters of plain ASCII words (no JSON escaping needed), varied by `seed`."""
    out, i, size = [], seed, 0
    while size < n:
        w = WORDS[i % len(WORDS)] + " "
        out.append(w)
        size += len(w)
        i += 7
    return "".join(out)[:n]


def chat_request(size: int, stream: bool = False, seed: int = 0) -> bytes:
    """A chat completion request body of exactly `size` bytes (the user message is the filler)."""
    def build(fill: int) -> bytes:
        obj = {"model": MODEL, "stream": stream,
               "messages": [{"role": "system", "content": "You are a build agent."},
                            {"role": "user", "content": text_of_size(fill, seed)}]}
        if stream:
            obj["stream_options"] = {"include_usage": True}
        return json.dumps(obj, separators=(",", ":")).encode()

    base = len(build(0))
    body = build(max(0, size - base))
    assert len(body) == size or size < base, (len(body), size)
    return body


def chat_reply(size: int, seed: int = 1) -> bytes:
    """A non-streamed chat.completion of exactly `size` bytes, with usage (as OpenAI sends it)."""
    def build(fill: int) -> bytes:
        obj = {"id": "chatcmpl-bench000000000000", "object": "chat.completion", "created": 1763769600,
               "model": MODEL + "-2024-07-18",
               "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                            "message": {"role": "assistant", "content": text_of_size(fill, seed),
                                        "refusal": None}}],
               "usage": {"prompt_tokens": 1000, "completion_tokens": max(1, fill // 4), "total_tokens": 1000 + fill // 4}}
        return json.dumps(obj, separators=(",", ":")).encode()

    base = len(build(0))
    body = build(max(0, size - base))
    if len(body) != size and size >= base:  # the token count's digits changed the length: retry once
        body = build(max(0, size - base - (len(body) - size)))
    assert len(body) == size or size < base, (len(body), size)
    return body


def sse_event(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def chat_stream_events(n: int, rid: str) -> list[bytes]:
    """`n` SSE events of an OpenAI chat stream: role, n-3 content deltas, finish, usage, [DONE]."""
    base = {"id": rid, "object": "chat.completion.chunk", "created": 1763769600,
            "model": MODEL + "-2024-07-18", "system_fingerprint": "fp_bench"}

    def chunk(delta: dict, finish=None) -> bytes:
        return sse_event(dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}], usage=None))

    n = max(n, 4)
    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": " " + WORDS[k % len(WORDS)]}) for k in range(n - 4)]
    events.append(chunk({}, "stop"))
    events.append(sse_event(dict(base, choices=[], usage={"prompt_tokens": 30, "completion_tokens": n - 4,
                                                          "total_tokens": 30 + n - 4})))
    events.append(sse_event("[DONE]"))
    return events


def request_head(body_len: int, extra: dict | None = None) -> bytes:
    hs = {"Host": HOST, "Content-Type": "application/json", "Authorization": "Bearer sk-bench",
          "Content-Length": str(body_len), **(extra or {})}
    return (f"POST {PATH} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items()) + "\r\n").encode()


def warm_up_pipeline() -> None:
    """One streamed and one whole chat call through a throwaway pipeline: loads the tokenizer,
    the price table and the provider modules, which the first LLM call a monitor sees pays for
    once (about 0.25 s here). That is start-up, not the steady latency being measured."""
    from llmspy_tui.capture.events import ChunkEvent, ConnClosed
    from llmspy_tui.pipeline import Pipeline

    pl = Pipeline(live=True)
    sse_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    streamed = ([sse_head] + [b"%x\r\n%s\r\n" % (len(e), e) for e in chat_stream_events(8, "chatcmpl-warmup")]
                + [b"0\r\n\r\n"])
    whole = [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2048\r\n\r\n" + chat_reply(2048)]
    calls = [(chat_request(600, stream=True), streamed), (chat_request(600), whole)]
    for conn, (req, resp) in enumerate(calls, start=1):
        ts, off = time.time_ns(), 0
        msg = request_head(len(req)) + req
        events = [ChunkEvent(ts, 1, 1, conn, "send", 0, 0, len(msg), msg)]
        for i, data in enumerate(resp):
            events.append(ChunkEvent(ts + i + 1, 1, 1, conn, "recv", i, off, len(data), data))
            off += len(data)
        events.append(ConnClosed(ts + len(resp) + 1, 1, conn))
        for ev in events:
            pl.feed([ev])
    assert pl.internal_errors == 0 and len(pl.store.snapshot().exchanges) == 2, "warm-up calls not understood"


# -- HTTP/1.1 over TLS, by hand (exact byte counts) -----------------------------------------------

class Conn:
    """A TLS socket that counts the plaintext bytes it writes and reads, with minimal HTTP/1.1
    message reading (head, Content-Length body, chunked body) that never holds a whole body."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.sent = 0
        self.received = 0
        self.buf = bytearray()  # read but not consumed yet
        self._rbuf = bytearray(1 << 18)
        self._view = memoryview(self._rbuf)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def fill(self) -> bool:
        n = self.sock.recv_into(self._rbuf)
        if n == 0:
            return False
        self.received += n
        self.buf += self._view[:n]
        return True

    def read_head(self) -> tuple[str, dict] | None:
        """(first line, lower-cased headers) of the next message; None at end of stream."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not self.fill():
                return None
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        first, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return first, headers

    def skip(self, n: int) -> None:
        """Consume `n` body bytes without keeping them."""
        while len(self.buf) < n:
            n -= len(self.buf)
            self.buf.clear()
            if not self.fill():
                raise ConnectionError("connection closed inside a body")
        del self.buf[:n]

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise ConnectionError("connection closed inside a body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if not self.fill():
                raise ConnectionError("connection closed inside a chunked body")

    def read_chunks(self, on_chunk: Callable[[bytes], None] | None = None) -> int:
        """A chunked body; returns its length. `on_chunk` sees each chunk's payload."""
        total = 0
        while True:
            size = int(self.read_line().split(b";")[0], 16)
            if size == 0:
                while self.read_line():  # trailers, then the empty line
                    pass
                return total
            data = self.read_exact(size + 2)[:-2]
            total += size
            if on_chunk is not None:
                on_chunk(data)


def client_conn(port: int, cafile: str) -> Conn:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Conn(ctx.wrap_socket(raw, server_hostname="localhost"))


# -- server process ---------------------------------------------------------------------------------

def serve(cert: str, key: str) -> None:
    """Keep-alive HTTP/1.1 over TLS, a thread per connection. What each request gets is set by
    its headers:
      x-bench-events: N, x-bench-interval-ms: T  -> an SSE chat stream of N events, one write
                                                   per event, paced every T ms (absolute schedule)
      x-bench-reply: SIZE                        -> a chat.completion of exactly SIZE bytes
    The reply head and body go out as two writes: a traced server then never exceeds the
    monitor's per-call cap on its own, so loss counters (which are monitor-wide) speak of the
    client's traffic, which is what the benchmarks measure."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    print(f"PORT {lsock.getsockname()[1]}", flush=True)
    try:
        Path("/proc/self/comm").write_text("bench-server")
    except OSError:
        pass
    replies: dict[int, bytes] = {}
    lock = threading.Lock()
    counter = [0]

    def reply_body(size: int) -> bytes:
        with lock:
            if size not in replies:
                replies[size] = chat_reply(size)
            return replies[size]

    def handle(raw: socket.socket) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            c = Conn(ctx.wrap_socket(raw, server_side=True))
            while True:
                msg = c.read_head()
                if msg is None:
                    return
                _, h = msg
                c.skip(int(h.get("content-length", "0")))
                if "x-bench-events" in h:
                    with lock:
                        counter[0] += 1
                        rid = f"chatcmpl-bench{counter[0]:012d}"
                    events = chat_stream_events(int(h["x-bench-events"]), rid)
                    interval = float(h.get("x-bench-interval-ms", "0")) / 1000
                    c.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                           b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")
                    t0 = time.monotonic()
                    for i, ev in enumerate(events):
                        last = i == len(events) - 1
                        wait = t0 + i * interval - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        c.send(b"%x\r\n%s\r\n" % (len(ev), ev) + (b"0\r\n\r\n" if last else b""))
                else:
                    body = reply_body(int(h.get("x-bench-reply", "2048")))
                    c.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                           % len(body))
                    c.send(body)
        except (OSError, ValueError, ConnectionError):
            return
        finally:
            raw.close()

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# -- client processes -------------------------------------------------------------------------------

def bulk_client(port: int, cafile: str, seconds: float, body: int, reply: int, rate: float) -> dict:
    """POST `body`-byte requests for `reply`-byte replies on one keep-alive connection until
    `seconds` have passed (the exchange under way is finished), at most `rate` per second
    (0: as fast as possible). Head and body are one write, as http.client and SDKs send them."""
    payload = chat_request(body, seed=os.getpid())
    msg = request_head(len(payload), {"x-bench-reply": str(reply)}) + payload
    c = client_conn(port, cafile)
    n, bad = 0, 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        if rate > 0:
            due = t0 + n / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
        c.send(msg)
        head = c.read_head()
        if head is None:
            raise ConnectionError("server closed the connection")
        length = int(head[1].get("content-length", "0"))
        bad += length != reply
        c.skip(length)
        n += 1
    elapsed = time.monotonic() - t0
    c.sock.close()
    return {"pid": os.getpid(), "exchanges": n, "sent": c.sent, "received": c.received,
            "seconds": elapsed, "request_body": len(payload), "reply_body": reply, "bad_replies": bad}


def stream_client(port: int, cafile: str, seconds: float, events: int, interval_ms: float) -> dict:
    """Streamed chat completions of `events` SSE events each, paced by the server, one after
    another on one keep-alive connection, until `seconds` have passed."""
    payload = chat_request(600, stream=True, seed=os.getpid())
    msg = request_head(len(payload), {"x-bench-events": str(events),
                                      "x-bench-interval-ms": str(interval_ms),
                                      "Accept": "text/event-stream"}) + payload
    c = client_conn(port, cafile)
    n, got = 0, 0
    texts: list[int] = []  # characters of content text per stream, to check the store against
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        c.send(msg)
        head = c.read_head()
        if head is None:
            raise ConnectionError("server closed the connection")
        chars = 0

        def on_chunk(data: bytes) -> None:
            nonlocal got, chars
            for part in data.split(b"\n\n"):
                if part.startswith(b"data: {"):
                    got += 1
                    obj = json.loads(part[6:])
                    for ch in obj.get("choices") or ():
                        chars += len(ch.get("delta", {}).get("content") or "")
                elif part.startswith(b"data: "):
                    got += 1

        c.read_chunks(on_chunk)
        texts.append(chars)
        n += 1
    elapsed = time.monotonic() - t0
    c.sock.close()
    return {"pid": os.getpid(), "exchanges": n, "events": got, "sent": c.sent, "received": c.received,
            "seconds": elapsed, "text_chars": texts}


# -- orchestration helpers (benchmark process) ----------------------------------------------------

class Server:
    """The server process; `port` once it listens."""

    def __init__(self, workdir: Path) -> None:
        from harness import make_cert

        self.cert, key = make_cert(workdir)
        self.proc = subprocess.Popen([sys.executable, __file__, "server", str(self.cert), str(key)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"bench server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_client(server: Server, kind: str, seconds: float, *args) -> subprocess.Popen:
    """A client process (`bulk` or `stream`); its JSON summary is its stdout."""
    return subprocess.Popen([sys.executable, __file__, kind, str(server.port), str(server.cert), str(seconds),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_client(p: subprocess.Popen, timeout: float) -> dict:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"client {p.pid} did not finish in {timeout:.0f} s: {err[-2000:]}") from None
    if p.returncode != 0:
        raise RuntimeError(f"client {p.pid} failed ({p.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


class InProcessMonitor:
    """The live capture and the pipeline in this process, fed from a worker thread exactly as
    the full-screen app does (LiveSource.batches -> Pipeline(Store(), live=True).feed), with the
    defaults the command line has. `on_batch(batch, views, start_ns, done_ns)` runs on that
    thread right after each feed; start_ns / done_ns are when the feed began and returned, on
    CLOCK_MONOTONIC (the clock of bpf_ktime_get_ns)."""

    def __init__(self, on_batch: Callable[[list, list, int, int], None], store=None, log=None) -> None:
        from llmspy_tui.capture.loader import DEFAULT_MAX_CAPTURE, DEFAULT_RING_MB
        from llmspy_tui.pipeline import Pipeline
        from llmspy_tui.sources import LiveSource
        from llmspy_tui.store import Store

        self.log_lines: list[str] = []
        self._log = log or (lambda m: (self.log_lines.append(m), print(f"  [monitor] {m}", file=sys.stderr)))
        self.max_capture = DEFAULT_MAX_CAPTURE
        self.ring_mb = DEFAULT_RING_MB
        self.source = LiveSource(max_capture=DEFAULT_MAX_CAPTURE, ring_mb=DEFAULT_RING_MB, argv=[],
                                 log=self._log)
        self.pipeline = Pipeline(store if store is not None else Store(), live=True)
        self.on_batch = on_batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.summary = ""
        self.batches = 0
        self.feed_seconds = 0.0
        self.bytes_by_pid: dict[int, int] = defaultdict(int)
        from llmspy_tui.capture.events import ChunkEvent

        self._chunk_type = ChunkEvent

    def start(self) -> None:
        self.source.start()
        self._thread = threading.Thread(target=self._run, name="bench-feed", daemon=True)
        self._thread.start()

    def wall_to_monotonic_ns(self, ts: int) -> int:
        """A capture timestamp back on the clock it was taken with (see LiveCapture)."""
        offset = getattr(self.source.cap, "_clock_offset", None)
        if offset is None:  # the capture changed: fall back to comparing with the wall clock
            return ts - (time.time_ns() - time.monotonic_ns())
        return ts - offset

    def traffic_by_pid(self, batch: list) -> None:
        for ev in batch:
            if type(ev) is self._chunk_type:
                self.bytes_by_pid[ev.pid] += len(ev.data)

    def other_traffic(self, ours: set) -> tuple[int, int]:
        """(processes, bytes) captured from processes that are not this benchmark's: on a shared
        host, other people's TLS traffic goes through the same monitor."""
        others = {p: n for p, n in self.bytes_by_pid.items() if p not in ours}
        return len(others), sum(others.values())

    def _feed(self, batch: list) -> None:
        self.traffic_by_pid(batch)
        start = time.monotonic_ns()
        views = self.pipeline.feed(batch)
        done = time.monotonic_ns()
        self.feed_seconds += (done - start) / 1e9
        self.batches += 1
        self.on_batch(batch, views, start, done)

    def _run(self) -> None:
        try:
            for batch in self.source.batches(self._stop):
                self._feed(batch)
        except Exception as e:  # noqa: BLE001 - handed to the caller by stop()
            self.error = e

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the capture's drain thread and by the feed thread (from
        /proc/self/task), to tell which side of the monitor the time goes to."""
        out = {}
        for name, t in (("drain", getattr(self.source.cap, "_thread", None)), ("feed", self._thread)):
            tid = getattr(t, "native_id", None)
            if tid is None:
                continue
            try:
                out[name] = cpu_seconds(f"self/task/{tid}")
            except OSError:
                pass
        return out

    def stop(self) -> None:
        """Stop capturing; everything captured so far still goes through the pipeline."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.summary = self.source.close(self._feed, "end of benchmark")
        if self.error is not None:
            raise self.error

    @property
    def final_counters(self) -> dict:
        return dict(self.source.cap.final_counters)


class DrainProfile:
    """Times the capture worker's occasional housekeeping (exec handling, rescans of processes
    and of the host, attaching probes, counters) by wrapping those methods on the running
    LiveCapture instance, and the process's garbage collections, so a latency spike can be put
    next to what was going on. Nothing is changed but timing; a method that no longer exists
    is skipped."""

    NAMES = (("cap", "_on_exec"), ("cap", "_service_rescans"), ("cap", "_attach"), ("cap", "_counters_event"),
             ("targets", "scan_host"), ("targets", "scan_process"), ("procs", "refresh"))

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []  # (name, start CLOCK_MONOTONIC ns, ms)
        self._gc_start = 0

    def install_gc(self) -> None:
        """Garbage collections stop every thread of the process (GIL): time them too."""
        import gc

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                self._gc_start = time.monotonic_ns()
            else:
                self.calls.append((f"gc gen{info['generation']}", self._gc_start,
                                   (time.monotonic_ns() - self._gc_start) / 1e6))

        gc.callbacks.append(on_gc)

    def install(self, cap) -> None:
        self._watch_drain(getattr(cap, "prog", None))
        owners = {"cap": cap, "targets": getattr(cap, "targets", None), "procs": getattr(cap, "procs", None)}
        for owner_name, meth in self.NAMES:
            owner = owners[owner_name]
            fn = getattr(owner, meth, None)
            if fn is not None:
                setattr(owner, meth, self._timed(f"{owner_name}.{meth}", fn))

    def _watch_drain(self, prog) -> None:
        """When each drain of the ring buffer ran: the longest stretch without one is how long
        the kernel had to hold records on its own (the ring's size divided by the data rate is
        what it can hold)."""
        fn = getattr(prog, "consume", None)
        self.drains: list[tuple[int, int]] = []  # (start, end) CLOCK_MONOTONIC ns
        if fn is None:
            return

        def consume(*a, **kw):
            t0 = time.monotonic_ns()
            try:
                return fn(*a, **kw)
            finally:
                self.drains.append((t0, time.monotonic_ns()))

        prog.consume = consume

    def drain_gaps(self) -> dict:
        """Longest time between the end of one drain and the start of the next, and longest drain."""
        d = getattr(self, "drains", [])
        if len(d) < 2:
            return {}
        gaps = sorted((b[0] - a[1]) / 1e6 for a, b in itertools.pairwise(d))
        lengths = sorted((e - s) / 1e6 for s, e in d)
        return {"drains": len(d), "gap_p99_ms": percentile(gaps, 99), "gap_max_ms": gaps[-1],
                "drain_p99_ms": percentile(lengths, 99), "drain_max_ms": lengths[-1]}

    def _timed(self, name: str, fn):
        def wrapper(*a, **kw):
            t0 = time.monotonic_ns()
            try:
                return fn(*a, **kw)
            finally:
                self.calls.append((name, t0, (time.monotonic_ns() - t0) / 1e6))
        return wrapper

    def report(self, t_first: int, slow: list[tuple[int, float]]) -> None:
        by: dict[str, list[float]] = defaultdict(list)
        for name, _, ms in self.calls:
            by[name].append(ms)
        print("  capture worker housekeeping and garbage collections during the run (calls, total, max):")
        for name, v in sorted(by.items(), key=lambda kv: -sum(kv[1])):
            print(f"      {name:<26} {len(v):>5} calls  {sum(v):8.1f} ms  max {max(v):7.1f} ms")
        if slow:
            print("  slowest chunks (s since first chunk: latency) and housekeeping running up to that chunk's"
                  " capture time + latency:")
            for ts, ms in slow:
                near = [(n, (t0 - t_first) / 1e9, d) for n, t0, d in self.calls
                        if t0 <= ts + ms * 1e6 and t0 + d * 1e6 >= ts - 50e6 and d >= 1.0]
                what = ", ".join(f"{n} at {at:.2f} s for {d:.0f} ms" for n, at, d in near[:4]) or "nothing over 1 ms"
                print(f"      {(ts - t_first) / 1e9:6.2f} s: {ms:6.1f} ms  <- {what}")

    def worst(self, n: int = 5) -> list[tuple[str, int, float]]:
        """The n longest calls and collections: (name, start ns, ms)."""
        return sorted(self.calls, key=lambda c: -c[2])[:n]


class HostLoad:
    """CPU use of the whole host against this benchmark's own processes (itself and its reaped
    children) over a run. The VM may be shared: other work competing for its cores shows up as
    "others", and says how far the figures can be trusted."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0 = self._host_busy()
        self.own0 = self._own()
        self.result: dict = {}

    @staticmethod
    def _host_busy() -> float:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def stop(self) -> dict:
        """Call once every child has been waited for."""
        dt = time.monotonic() - self.t0
        busy = (self._host_busy() - self.busy0) / dt
        own = (self._own() - self.own0) / dt
        self.result = {"cores": os.cpu_count(), "busy": busy, "own": own, "others": max(0.0, busy - own)}
        return self.result

    def describe(self) -> str:
        r = self.result
        text = (f"host CPU: {r['busy']:.2f} of {r['cores']} cores busy, this benchmark's processes {r['own']:.2f}, "
                f"others {r['others']:.2f}")
        if r["others"] > 0.2:
            text += " (the host was shared: figures disturbed by other work)"
        return text


LOSS_COUNTERS = ("ringbuf_fail", "ringbuf_fail_bytes", "read_fail", "read_fail_bytes", "stash_fail",
                 "truncated_calls", "truncated_bytes", "internal_errors", "backlog_drop", "backlog_drop_bytes")


def percentile(sorted_values: list, q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def status_kb(field: str, pid: str = "self") -> int:
    """A /proc/PID/status figure in kB (VmRSS, VmHWM...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: str = "self") -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_result(bench: str, figure: str, value: float, target: str, met: bool, summary: str) -> None:
    """The one machine-readable line every benchmark ends with (value null when nothing could
    be measured)."""
    if math.isnan(value):  # nothing measured: NaN is not JSON, null says it plainly
        value = None
    print("BENCH-RESULT " + json.dumps({"bench": bench, "figure": figure, "value": value, "target": target,
                                        "met": bool(met), "summary": summary}, allow_nan=False), flush=True)


def require_root(name: str) -> None:
    if os.geteuid() != 0:
        print(f"{name} needs root (it runs the live eBPF capture)", file=sys.stderr)
        sys.exit(2)


def main() -> int:
    ap = argparse.ArgumentParser(description="server and client processes of the live benchmarks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("cert")
    s.add_argument("key")
    for kind in ("bulk", "stream"):
        c = sub.add_parser(kind)
        c.add_argument("port", type=int)
        c.add_argument("cafile")
        c.add_argument("seconds", type=float)
        if kind == "bulk":
            c.add_argument("body", type=int)
            c.add_argument("reply", type=int)
            c.add_argument("rate", type=float)
        else:
            c.add_argument("events", type=int)
            c.add_argument("interval_ms", type=float)
    a = ap.parse_args()
    if a.cmd == "server":
        serve(a.cert, a.key)
    elif a.cmd == "bulk":
        print(json.dumps(bulk_client(a.port, a.cafile, a.seconds, a.body, a.reply, a.rate)))
    else:
        print(json.dumps(stream_client(a.port, a.cafile, a.seconds, a.events, a.interval_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
