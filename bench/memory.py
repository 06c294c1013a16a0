"""Monitor memory after many LLM calls: RSS of a process that fed 100k realistic exchanges,
as capture events, through Pipeline and the default Store (default bounds).

    .venv/bin/python bench/memory.py [--exchanges 100000] [--tracemalloc] [--headless]   (no root)

The work runs in a fresh subprocess (this script with --worker), so nothing but the monitor's
own modules and this generator is in it. It reports VmRSS after imports and templates
(baseline) and once a warm-up call has loaded the tokenizer and price table (a fixed cost),
VmRSS after the last exchange, VmHWM (peak), RSS along the way, the store's counts (kept vs
evicted) and the feed rate.

The traffic, generated on the fly in batches of capture events (never all of it at once, so
the generator's memory stays small and constant):
- 64 concurrent sessions over 40 live processes; a process retires after 10-60 conversations
  (ProcessExit) and a new one (ProcessSeen) takes its place, so hundreds of pids are seen;
- each session runs one conversation at a time on its own TLS connection (closed at the end):
  OpenAI chat completions or Anthropic messages (half each), over HTTP/1.1 or HTTP/2 (half
  each), streamed (60%) or not; 1-10 turns, each request carrying the whole history: a 2-4 KB
  system prompt, every earlier user message (0.2-1 KB) and reply (1-5 KB), so prompts grow
  from ~3 KB to ~40 KB;
- wire bytes as a capture sees them: a request as one SSL_write cut into 16 KB capture chunks;
  a streamed reply as one SSL_read per 4 SSE events (~40 characters of text per event), with
  HTTP/1.1 chunked framing or HTTP/2 DATA frames (HPACK literal headers); usage reported as the
  providers do (OpenAI streams without include_usage: the monitor estimates tokens);
- byte templates are prepared once; each call only joins them and gets fresh ids (conversation
  tag in the first user message, response ids), so conversations stay distinct.

The pipeline is the full-screen app's (Pipeline(Store(), live=True): progress events and
running token estimates while replies stream); --headless uses the headless printer's
(live=False). Like the app's screen timer, a snapshot of the store is taken now and then
(every 2000 calls). --tracemalloc lists where the memory still held at the end was allocated
(much slower; RSS then includes tracemalloc's own bookkeeping). After the figures, RSS is also
read after gc.collect() and after malloc_trim(0): what the allocator holds without any object
using it is then visible apart from what the monitor's objects take.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import livebench as lb

TARGET_MB = 250.0
CAPTURE_CHUNK = 16384  # bytes per capture record (capture.loader.CHUNK_SIZE)
EVENTS_PER_READ = 4  # SSE events per SSL_read of a streamed reply
DELTA_CHARS = 40  # text per SSE delta event
BATCH = 256  # capture events per Pipeline.feed
SESSIONS = 64
LIVE_PROCS = 40
SNAPSHOT_EVERY = 2000

WORDS = ["the", "monitor", "sees", "plaintext", "before", "encryption", "and", "after", "decryption", "so", "every", "prompt", "and", "streamed", "token", "is", "visible", "without", "a", "proxy", "build", "failed", "because", "disk", "runner", "cache", "restored", "step", "timed", "out", "waiting", "for", "artifacts", "refactor", "module", "tests", "pass", "review", "change"]


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def text(rng: random.Random, n: int) -> str:
    out, size = [], 0
    while size < n:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


def jdump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- wire helpers --------------------------------------------------------------------------------

def h2_frame(ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((ftype, flags)) + struct.pack(">I", sid) + payload


def _hpack_str(s: bytes) -> bytes:
    n = len(s)
    if n < 127:
        return bytes((n,)) + s
    out, n = bytearray((127,)), n - 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + s


def hpack_literal(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing: valid whatever the decoder's table holds."""
    return b"".join(b"\x00" + _hpack_str(k.encode()) + _hpack_str(v.encode()) for k, v in headers)


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
H2_SERVER_SETTINGS = h2_frame(4, 0, 0, b"")
DATA, HEADERS = 0, 1
END_STREAM, END_HEADERS = 0x1, 0x4

PROVIDERS = {
    "openai": {"host": "api.openai.com", "path": "/v1/chat/completions", "models": ("gpt-4o-mini", "gpt-4.1")},
    "anthropic": {"host": "api.anthropic.com", "path": "/v1/messages",
                  "models": ("claude-sonnet-4-5", "claude-3-5-haiku-20241022")},
}
ID = b"ID0000000000"  # placeholder in templates, replaced by a 12-digit serial per call


# -- prepared templates -----------------------------------------------------------------------------

class Templates:
    """Every byte string the generator needs, built once: prompt pieces, replies as JSON bodies
    and as groups of SSE events per provider (with an id placeholder), and history fragments."""

    def __init__(self, rng: random.Random) -> None:
        self.systems = [text(rng, rng.randint(2048, 4096)) for _ in range(6)]
        self.users = [text(rng, rng.randint(200, 1000)) for _ in range(48)]
        self.replies = [text(rng, rng.randint(1024, 5120)) for _ in range(48)]
        self.user_frag = {p: [self._user(p, u) for u in self.users] for p in PROVIDERS}
        self.reply_frag = {"openai": [jdump({"role": "assistant", "content": r}) for r in self.replies],
                           "anthropic": [jdump({"role": "assistant", "content": [{"type": "text", "text": r}]})
                                         for r in self.replies]}
        self.system_json = [jdump(s) for s in self.systems]
        # (provider, streamed, usage-in-stream) -> per reply: list of body pieces (one per SSL_read)
        self.bodies: dict[tuple, list[list[bytes]]] = {}
        for p in PROVIDERS:
            for model_i, model in enumerate(PROVIDERS[p]["models"]):
                self.bodies[(p, False, model_i)] = [[self._whole(p, model, r)] for r in self.replies]
                self.bodies[(p, True, model_i)] = [self._stream(p, model, r, usage=model_i == 0)
                                                   for r in self.replies]

    @staticmethod
    def _user(provider: str, u: str) -> bytes:
        if provider == "anthropic":
            return jdump({"role": "user", "content": [{"type": "text", "text": u}]})
        return jdump({"role": "user", "content": u})

    @staticmethod
    def _whole(provider: str, model: str, reply: str) -> bytes:
        out_tokens = len(reply) // 4
        if provider == "openai":
            return jdump({"id": "chatcmpl-" + ID.decode(), "object": "chat.completion", "created": 1763769600,
                          "model": model, "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                                       "message": {"role": "assistant", "content": reply,
                                                                   "refusal": None}}],
                          "usage": {"prompt_tokens": 3000, "completion_tokens": out_tokens,
                                    "total_tokens": 3000 + out_tokens}})
        return jdump({"id": "msg_" + ID.decode(), "type": "message", "role": "assistant", "model": model,
                      "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn",
                      "usage": {"input_tokens": 3000, "output_tokens": out_tokens,
                                "cache_read_input_tokens": 2000}})

    @staticmethod
    def _stream(provider: str, model: str, reply: str, usage: bool) -> list[bytes]:
        deltas = [reply[i:i + DELTA_CHARS] for i in range(0, len(reply), DELTA_CHARS)]
        out_tokens = len(reply) // 4
        if provider == "openai":
            base = {"id": "chatcmpl-" + ID.decode(), "object": "chat.completion.chunk", "created": 1763769600,
                    "model": model, "system_fingerprint": "fp_bench"}

            def ev(delta, finish=None):
                obj = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
                if usage:
                    obj["usage"] = None
                return b"data: " + jdump(obj) + b"\n\n"

            events = [ev({"role": "assistant", "content": "", "refusal": None})]
            events += [ev({"content": d}) for d in deltas]
            events.append(ev({}, "stop"))
            if usage:
                events.append(b"data: " + jdump(dict(base, choices=[], usage={
                    "prompt_tokens": 3000, "completion_tokens": out_tokens, "total_tokens": 3000 + out_tokens})) + b"\n\n")
            events.append(b"data: [DONE]\n\n")
        else:
            def ev(name, obj):
                return f"event: {name}\ndata: ".encode() + jdump(obj) + b"\n\n"

            events = [ev("message_start", {"type": "message_start", "message": {
                "id": "msg_" + ID.decode(), "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "usage": {"input_tokens": 3000, "output_tokens": 1,
                                               "cache_read_input_tokens": 2000}}}),
                      ev("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}})]
            events += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": d}}) for d in deltas]
            events += [ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
                       ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                            "usage": {"output_tokens": out_tokens}}),
                       ev("message_stop", {"type": "message_stop"})]
        return [b"".join(events[i:i + EVENTS_PER_READ]) for i in range(0, len(events), EVENTS_PER_READ)]


# -- the generator ------------------------------------------------------------------------------------

class Gen:
    """Sessions, processes and connections; `exchange()` appends one call's capture events."""

    def __init__(self, rng: random.Random, t: Templates) -> None:
        from llmspy_tui.capture.events import (
            ChunkEvent,
            ConnClosed,
            ProcessExit,
            ProcessInfo,
            ProcessSeen,
        )

        self.CE, self.CC, self.PX, self.PI, self.PS = ChunkEvent, ConnClosed, ProcessExit, ProcessInfo, ProcessSeen
        self.rng, self.t = rng, t
        self.ts = time.time_ns()
        self.next_pid = 20000
        self.next_ssl = 0x7F0000001000
        self.serial = 0
        self.conversations = 0
        self.procs: dict[int, list[int]] = {}  # pid -> [sessions on it, conversations left]
        self.live: list[int] = []
        self.req_bytes = self.resp_bytes = self.wire_bytes = 0
        self.sessions = [self._new_session() for _ in range(SESSIONS)]
        self.out: list = []

    # processes
    def _pid(self) -> int:
        while len(self.live) < LIVE_PROCS:
            pid = self.next_pid
            self.next_pid += 1
            self.procs[pid] = [0, self.rng.randint(10, 60)]
            self.live.append(pid)
            comm = self.rng.choice(("python3", "node", "claude", "codex", "aider"))
            info = self.PI(pid, 1000 + pid, comm, f"/usr/bin/{comm}", (comm, "--task", str(pid)), 1)
            self.out.append(self.PS(self.ts, info))
        pid = self.rng.choice(self.live)
        p = self.procs[pid]
        p[0] += 1
        p[1] -= 1
        if p[1] <= 0:
            self.live.remove(pid)  # takes no new conversations; exits when its last one ends
        return pid

    def _release(self, pid: int) -> None:
        p = self.procs[pid]
        p[0] -= 1
        if p[0] == 0 and pid not in self.live:
            del self.procs[pid]
            self.out.append(self.PX(self.ts, pid))

    # sessions
    def _new_session(self) -> dict:
        rng = self.rng
        self.conversations += 1
        provider = "openai" if rng.random() < 0.5 else "anthropic"
        model_i = rng.randrange(2)
        return {"pid": None, "provider": provider, "model_i": model_i,
                "model": PROVIDERS[provider]["models"][model_i], "h2": rng.random() < 0.5,
                "stream": rng.random() < 0.6, "system": rng.randrange(len(self.t.systems)),
                "turns": rng.randint(1, 10), "history": [], "ssl": None, "sid": 1,
                "off": {"send": 0, "recv": 0}, "seq": {"send": 0, "recv": 0},
                "tag": f"[task {self.conversations:06d}] "}

    def _call(self, s: dict, d: str, data: bytes) -> None:
        """One SSL call's bytes as the capture delivers them: records of at most 16 KB."""
        total, off, seq = len(data), s["off"][d], s["seq"][d]
        pid, ssl, ts = s["pid"], s["ssl"], self.ts
        for i, k in enumerate(range(0, total, CAPTURE_CHUNK)):
            self.out.append(self.CE(ts, pid, pid, ssl, d, seq, off + k, total, data[k:k + CAPTURE_CHUNK], i))
        s["off"][d] = off + total
        s["seq"][d] = seq + 1
        self.wire_bytes += total
        self.ts += 20_000

    def exchange(self, i: int) -> None:
        s = self.sessions[i % SESSIONS]
        t, rng, p = self.t, self.rng, s["provider"]
        if s["ssl"] is None:  # a new conversation on a new connection
            s["pid"] = self._pid()
            s["ssl"] = self.next_ssl
            self.next_ssl += 0x1000
            if s["h2"]:
                self._call(s, "send", H2_PREFACE)
                self._call(s, "recv", H2_SERVER_SETTINGS)
        u = rng.randrange(len(t.users))
        if not s["history"]:
            user = t.users[u]
            user = Templates._user(p, s["tag"] + user)
        else:
            user = t.user_frag[p][u]
        msgs = b",".join(s["history"] + [user])
        stream = s["stream"]
        if p == "openai":
            body = (b'{"model":"' + s["model"].encode() + b'","messages":[{"role":"system","content":'
                    + t.system_json[s["system"]] + b"}," + msgs + b"],\"temperature\":0.2"
                    + (b',"stream":true' + (b',"stream_options":{"include_usage":true}' if s["model_i"] == 0 else b"")
                       if stream else b"") + b"}")
        else:
            body = (b'{"model":"' + s["model"].encode() + b'","max_tokens":8192,"system":' + t.system_json[s["system"]]
                    + b',"messages":[' + msgs + b"]" + (b',"stream":true' if stream else b"") + b"}")
        info = PROVIDERS[p]
        ctype = "text/event-stream; charset=utf-8" if stream else "application/json"
        if s["h2"]:
            sid = s["sid"]
            s["sid"] += 2
            block = hpack_literal([(":method", "POST"), (":scheme", "https"), (":authority", info["host"]),
                                   (":path", info["path"]), ("content-type", "application/json"),
                                   ("authorization", "Bearer sk-bench-0000"), ("user-agent", "bench/1.0")])
            frames = [h2_frame(HEADERS, END_HEADERS, sid, block)]
            for k in range(0, len(body), 16384):
                last = k + 16384 >= len(body)
                frames.append(h2_frame(DATA, END_STREAM if last else 0, sid, body[k:k + 16384]))
            self._call(s, "send", b"".join(frames))
        else:
            head = (f"POST {info['path']} HTTP/1.1\r\nHost: {info['host']}\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer sk-bench-0000\r\nUser-Agent: bench/1.0\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self._call(s, "send", head + body)
        self.req_bytes += len(body)

        r = rng.randrange(len(t.replies))
        self.serial += 1
        rid = b"%012d" % self.serial
        pieces = [x.replace(ID, rid) for x in t.bodies[(p, stream, s["model_i"])][r]]
        self.resp_bytes += sum(map(len, pieces))
        if s["h2"]:
            self._call(s, "recv", h2_frame(HEADERS, END_HEADERS, sid, hpack_literal(
                [(":status", "200"), ("content-type", ctype), ("x-request-id", "req_" + rid.decode())])))
            for k, piece in enumerate(pieces):
                last = k == len(pieces) - 1
                for j in range(0, len(piece), 16384):
                    end = last and j + 16384 >= len(piece)
                    self._call(s, "recv", h2_frame(DATA, END_STREAM if end else 0, sid, piece[j:j + 16384]))
        elif stream:
            self._call(s, "recv", (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n"
                                   f"x-request-id: req_{rid.decode()}\r\n\r\n").encode())
            for k, piece in enumerate(pieces):
                tail = b"0\r\n\r\n" if k == len(pieces) - 1 else b""
                self._call(s, "recv", b"%x\r\n%s\r\n%s" % (len(piece), piece, tail))
        else:
            data = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(pieces[0])}\r\n"
                    f"x-request-id: req_{rid.decode()}\r\n\r\n").encode() + pieces[0]
            for k in range(0, len(data), 16384):
                self._call(s, "recv", data[k:k + 16384])

        s["history"] += [user, t.reply_frag[p][r]]
        s["turns"] -= 1
        self.ts += 1_000_000
        if s["turns"] <= 0:  # conversation over: the connection goes, the session starts another
            self.out.append(self.CC(self.ts, s["pid"], s["ssl"]))
            self._release(s["pid"])
            self.sessions[i % SESSIONS] = self._new_session()

    def take(self) -> list:
        out, self.out = self.out, []
        return out


# -- worker (the fresh process) -------------------------------------------------------------------------

def worker(n: int, live: bool, trace: int, seed: int) -> dict:
    import gc

    from llmspy_tui.pipeline import Pipeline
    from llmspy_tui.store import Store

    if trace:
        import tracemalloc

        tracemalloc.start(trace)
    rng = random.Random(seed)
    templates = Templates(rng)
    gen = Gen(rng, templates)
    store = Store()  # the default bounds
    pl = Pipeline(store, live=live)
    gc.collect()
    baseline = status_kb("VmRSS")
    lb.warm_up_pipeline()  # the tokenizer and price table: a fixed cost, shown apart from the calls'
    gc.collect()
    warm = status_kb("VmRSS")
    log = []
    t0 = time.perf_counter()
    feed_s = 0.0
    events = 0
    step = max(1, n // 10)
    for i in range(n):
        gen.exchange(i)
        if len(gen.out) >= BATCH or i == n - 1:
            batch = gen.take()
            events += len(batch)
            f0 = time.perf_counter()
            pl.feed(batch)
            feed_s += time.perf_counter() - f0
        if (i + 1) % SNAPSHOT_EVERY == 0 or (i + 1) % step == 0:
            f0 = time.perf_counter()
            snap = store.snapshot()
            feed_s += time.perf_counter() - f0
        if (i + 1) % step == 0:
            el = time.perf_counter() - t0
            row = {"exchanges": i + 1, "rss_mb": status_kb("VmRSS") / 1024, "kept": len(snap.exchanges),
                   "evicted": snap.evicted, "rate": (i + 1) / el}
            log.append(row)
            print(f"  {i + 1:>7} calls  RSS {row['rss_mb']:6.0f} MB  kept {row['kept']:>6}  evicted {row['evicted']:>6}  "
                  f"{row['rate']:6.0f} calls/s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    snap = store.snapshot()
    rss_after = status_kb("VmRSS")
    hwm = status_kb("VmHWM")
    result = {
        "exchanges": n, "live": live, "events": events, "seconds": elapsed, "feed_seconds": feed_s,
        "rate": n / elapsed, "feed_rate": n / feed_s if feed_s else 0.0, "wire_mb": gen.wire_bytes / 1e6,
        "mean_request": gen.req_bytes / n, "mean_response": gen.resp_bytes / n,
        "baseline_mb": baseline / 1024, "warm_mb": warm / 1024, "rss_mb": rss_after / 1024, "hwm_mb": hwm / 1024,
        "kept": len(snap.exchanges), "evicted": snap.evicted, "conversations": len(snap.conversations),
        "processes": len(snap.processes), "pids_seen": gen.next_pid - 20000, "conversations_started": gen.conversations,
        "body_mb": getattr(store, "_body_bytes", 0) / 1e6, "max_exchanges": store.max_exchanges,
        "max_body_mb": store.max_body_bytes / (1 << 20), "internal_errors": pl.internal_errors,
        "incomplete": sum(1 for v in snap.exchanges.values() if not v.exchange.complete),
        "non_llm": sum(1 for v in snap.exchanges.values() if not v.exchange.is_llm),
        "checkpoints": log,
        # conversation threading remembers calls apart from the store's bounds (its own limit)
        "threader_keys": sum(len(v) for v in vars(getattr(store, "_threads", object())).values()
                             if isinstance(v, dict)),
    }
    kept_text = sum(len(v.exchange.response.text) if v.exchange.response else 0 for v in snap.exchanges.values())
    kept_req = sum(len(v.exchange.request_body) for v in snap.exchanges.values())
    kept_resp = sum(len(v.exchange.response_body) for v in snap.exchanges.values())
    result.update(kept_request_mb=kept_req / 1e6, kept_response_mb=kept_resp / 1e6, kept_text_mb=kept_text / 1e6)
    del snap
    gc.collect()
    result["rss_after_gc_mb"] = status_kb("VmRSS") / 1024
    try:  # how much of the RSS is memory the allocator holds but no object uses
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        result["rss_after_trim_mb"] = status_kb("VmRSS") / 1024
    except (OSError, AttributeError):
        result["rss_after_trim_mb"] = None
    if trace:
        import tracemalloc

        snapshot = tracemalloc.take_snapshot().filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
        result["traced_mb"] = tracemalloc.get_traced_memory()[0] / 1e6
        result["top"] = [(str(st.traceback[0]), st.size / 1e6, st.count)
                         for st in snapshot.statistics("lineno")[:20]]
        if trace > 1:
            result["top_tb"] = [(" <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in st.traceback),
                                 st.size / 1e6, st.count) for st in snapshot.statistics("traceback")[:8]]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exchanges", type=int, default=100_000, help="calls to feed (default 100000)")
    ap.add_argument("--headless", action="store_true", help="the headless pipeline (live=False) instead of the UI's")
    ap.add_argument("--tracemalloc", type=int, nargs="?", const=1, default=0, metavar="FRAMES",
                    help="list where the memory held at the end was allocated (FRAMES of call chain, default 1; "
                    "tracing makes the feed 5-20x slower: use --exchanges 20000, enough to fill the store)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.exchanges, not args.headless, args.tracemalloc, args.seed)))
        return 0

    cmd = [sys.executable, __file__, "--worker", "--exchanges", str(args.exchanges), "--seed", str(args.seed)]
    cmd += ["--headless"] * args.headless + ([f"--tracemalloc={args.tracemalloc}"] if args.tracemalloc else [])
    print(f"feeding {args.exchanges} calls in a fresh process ({'headless' if args.headless else 'UI'} pipeline, "
          f"default Store bounds){' with tracemalloc' if args.tracemalloc else ''}:", flush=True)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if out.returncode != 0:
        print(f"worker failed ({out.returncode})", file=sys.stderr)
        return 1
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"traffic: {r['exchanges']} calls, {r['events']:,} capture events, {r['wire_mb']:.0f} MB of wire bytes; "
          f"mean request body {r['mean_request'] / 1024:.1f} KB, mean response body {r['mean_response'] / 1024:.1f} KB; "
          f"{r['conversations_started']} conversations, {r['pids_seen']} processes")
    print(f"rate: {r['rate']:.0f} calls/s overall, {r['feed_rate']:.0f} calls/s in Pipeline.feed + snapshots "
          f"({r['feed_seconds']:.1f} of {r['seconds']:.1f} s; the rest is generating)")
    print(f"store (bounds {r['max_exchanges']} calls / {r['max_body_mb']:.0f} MiB of bodies): kept {r['kept']}, "
          f"evicted {r['evicted']}, {r['conversations']} conversations, {r['processes']} processes; "
          f"{r['incomplete']} kept calls incomplete, {r['non_llm']} not LLM calls, internal errors {r['internal_errors']}")
    print(f"  conversation threading remembers {r['threader_keys']:,} keys (its own bound, not the store's)")
    print(f"  kept bodies {r['body_mb']:.0f} MB by the store's count (requests {r['kept_request_mb']:.0f} MB, "
          f"responses {r['kept_response_mb']:.0f} MB); reply text {r['kept_text_mb']:.0f} MB")
    print(f"RSS: baseline {r['baseline_mb']:.0f} MB (imports, templates), {r['warm_mb']:.0f} MB once the tokenizer "
          f"and price table are loaded (one warm-up call), after {r['rss_mb']:.0f} MB, "
          f"peak {r['hwm_mb']:.0f} MB; after a full gc.collect() {r['rss_after_gc_mb']:.0f} MB"
          + (f", after malloc_trim(0) {r['rss_after_trim_mb']:.0f} MB (the difference: free memory the "
             f"allocator had kept)" if r.get("rss_after_trim_mb") else ""))
    if "top" in r:
        print(f"tracemalloc: {r['traced_mb']:.0f} MB held by Python allocations at the end; largest sites:")
        for where, mb, count in r["top"]:
            print(f"  {mb:8.1f} MB {count:>8} blocks  {where}")
        if "top_tb" in r:
            print("  largest by call chain (innermost first):")
            for where, mb, count in r["top_tb"]:
                print(f"  {mb:8.1f} MB {count:>8} blocks  {where}")
    # the workload must have been understood, else the figure measures something else
    valid = r["internal_errors"] == 0 and r["incomplete"] == 0 and r["non_llm"] == 0 and r["kept"] > 0
    if not valid:
        print("the measurement is not valid: the pipeline did not understand the generated calls "
              "(internal errors, incomplete or non-LLM exchanges above)")
    met = valid and r["rss_mb"] <= TARGET_MB
    summary = (f"RSS {r['rss_mb']:.0f} MB after {r['exchanges']} calls (baseline {r['baseline_mb']:.0f}, peak "
               f"{r['hwm_mb']:.0f}); store kept {r['kept']}, evicted {r['evicted']}; {r['feed_rate']:.0f} calls/s fed")
    print()
    lb.bench_result("memory", f"RSS after {r['exchanges']} exchanges, default store bounds",
                    round(r["rss_mb"], 1), f"<= {TARGET_MB:g} MB", met, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
