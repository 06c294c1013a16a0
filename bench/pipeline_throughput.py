"""Whole-pipeline throughput: capture events -> protocol -> providers -> store.

    .venv/bin/python bench/pipeline_throughput.py [--exchanges N] [--events N] [--runs N]
                                                  [--batch N] [--only NAME] [--no-usage]

Workloads, each built in memory as capture events:
- "HTTP/1.1 SSE", "HTTP/2 SSE": OpenAI-style chat streams (as protocol_throughput.py: one SSE
  event per capture chunk; HTTP/2 with 20 interleaved streams), ending with a usage event as
  clients that ask for it (stream_options.include_usage) get; --no-usage leaves it out, so
  every call's tokens are estimated with tiktoken at its end (that cost shows apart);
- "non-stream, agent": JSON replies to agent-sized prompts (a 5 KB system prompt, tools, a
  history growing by tool output to ~30 KB), OpenAI and Anthropic formats over one HTTP/1.1
  keep-alive connection, replies from tests/support/fake_llm.py;
- "agent mix": the same kind of prompts to OpenAI chat and Responses (HTTP/1.1), Anthropic and
  Gemini (HTTP/2), streamed or not, replies from fake_llm, three connections interleaved.

Each goes through the Pipeline in its two modes: headless (finished exchanges only) and live
(progress per batch for each streaming call, with running token estimates and cost, as the UI
uses it), plus the protocol layer alone (feed_raw, as the pipeline calls it). Prints MB/s and
the ratio of that time to bare orjson.loads of the same JSON (request bodies, response bodies
not streamed, SSE data payloads), measured in the same run. bench/pipeline.py does the same on
a recording of real clients.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests" / "support")]
import fake_llm  # noqa: E402
from protocol_throughput import best_of, chat_request, sse_payloads, time_orjson  # noqa: E402
from wire import H2Pair, h1_request, h1_response, to_chunks  # noqa: E402

from llmspy_tui.capture.events import ChunkEvent, ConnClosed  # noqa: E402
from llmspy_tui.pipeline import Pipeline  # noqa: E402
from llmspy_tui.protocol import ProtocolTracker  # noqa: E402
from llmspy_tui.providers import estimate  # noqa: E402

CAPTURE_CHUNK = 16 * 1024  # the capture's record size: one SSL call's bytes come in pieces of this


# -- SSE chat streams ----------------------------------------------------------------------------

def usage_payload(i: int) -> bytes:
    return json.dumps({"id": f"chatcmpl-{i:08d}", "object": "chat.completion.chunk", "created": 1763769600,
                       "model": "gpt-4o-mini-2024-07-18", "choices": [],
                       "usage": {"prompt_tokens": 900 + i, "completion_tokens": 400,
                                 "total_tokens": 1300 + i}}).encode()


def stream(i: int, events: int, usage: bool) -> list[bytes]:
    return sse_payloads(i, events) + ([usage_payload(i)] if usage else [])


def http1_sse(exchanges: int, events: int, usage: bool = True):
    """One keep-alive connection; every SSE event arrives in its own chunk, as SSL_read gives it."""
    chunks, payloads = [], []
    off = {"send": 0, "recv": 0}
    ts = 0

    def add(d: str, data: bytes) -> None:
        nonlocal ts
        ts += 1
        chunks.append(ChunkEvent(ts, 100, 100, 1, d, 0, off[d], len(data), data))
        off[d] += len(data)

    for i in range(exchanges):
        body = chat_request(i)
        payloads.append(body)
        add("send", h1_request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"}))
        add("recv", b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in stream(i, events, usage):
            payloads.append(p)
            ev = b"data: " + p + b"\n\n"
            add("recv", b"%x\r\n%s\r\n" % (len(ev), ev))
        add("recv", b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n"))
    chunks.append(ConnClosed(ts + 1, 100, 1))
    return chunks, payloads


def http2_sse(exchanges: int, events: int, usage: bool = True, concurrent: int = 20):
    """One connection; `concurrent` streams at a time, their DATA frames interleaved."""
    p = H2Pair()
    payloads = []
    sid = 1
    for batch in range(0, exchanges, concurrent):
        sids = []
        for i in range(batch, min(exchanges, batch + concurrent)):
            body = chat_request(i)
            payloads.append(body)
            p.request(sid, "POST", "/v1/chat/completions", body, extra=[("content-type", "application/json")])
            p.respond(sid, 200, [("content-type", "text/event-stream")])
            sids.append((sid, stream(i, events, usage)))
            sid += 2
        for k in range(events + usage):
            for s, ps in sids:
                payloads.append(ps[k])
                p.server.send_data(s, b"data: " + ps[k] + b"\n\n")
            p._pump()
        for s, _ in sids:
            p.data(s, b"data: [DONE]\n\n", end=True)
    chunks = to_chunks(p.conv, pid=200, ssl=2, splits=_capture_cuts)
    chunks.append(ConnClosed(chunks[-1].ts + 1, 200, 2))
    return chunks, payloads


# -- agent prompts -------------------------------------------------------------------------------

_WORDS = ("the monitor reads plaintext before encryption so every prompt and streamed token is "
          "visible file path function return value error import class self config test build "
          "deploy request response header body stream event token cost usage model tool").split()


def _prose(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n_words))


def _tool_output(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:  # a source file
        return "\n".join(f"def f{k}(x):\n    return {_prose(rng, 6)!r}" for k in range(rng.randint(10, 40)))
    if kind == 1:  # command output
        return "\n".join(f"{rng.randint(1, 9999):>6} {_prose(rng, 8)}" for _ in range(rng.randint(10, 60)))
    return json.dumps({"items": [{"id": k, "name": _prose(rng, 3), "ok": rng.random() < 0.8}
                                 for k in range(rng.randint(5, 50))]})


SYSTEM = "You are a coding agent working in a repository. " + _prose(random.Random(7), 850)
TOOLS = [("read_file", {"path": {"type": "string"}}),
         ("run", {"command": {"type": "string"}, "timeout": {"type": "integer"}}),
         ("search", {"query": {"type": "string"}, "max_results": {"type": "integer"}})]


def _openai_tools() -> list:
    return [{"type": "function", "function": {"name": n, "description": f"{n} tool",
                                              "parameters": {"type": "object", "properties": props}}}
            for n, props in TOOLS]


def _anthropic_tools() -> list:
    return [{"name": n, "description": f"{n} tool", "input_schema": {"type": "object", "properties": props}}
            for n, props in TOOLS]


def agent_requests(rng: random.Random, api: str, turns: int, stream: bool) -> list[dict]:
    """The requests of one agent conversation: each turn adds a tool call and its (KB-sized)
    output to the history the next request carries."""
    out = []
    hist: list = [{"role": "user", "content": "Task: " + _prose(rng, 40)}]
    for t in range(turns):
        s = stream if isinstance(stream, bool) else rng.random() < 0.6
        call_id = f"call_{rng.getrandbits(48):012x}"
        name = TOOLS[t % len(TOOLS)][0]
        args = json.dumps({"path": f"src/{_prose(rng, 1)}.py"})
        if api == "openai":
            out.append({"model": "gpt-4o-mini", "stream": s, "messages": [{"role": "system", "content": SYSTEM}, *hist],
                        "tools": _openai_tools(), **({"stream_options": {"include_usage": True}} if s else {})})
            hist += [{"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]},
                {"role": "tool", "tool_call_id": call_id, "content": _tool_output(rng)}]
        elif api == "anthropic":
            out.append({"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": s, "system": SYSTEM,
                        "messages": hist, "tools": _anthropic_tools()})
            hist += [{"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": name,
                                                        "input": json.loads(args)}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
                                                   "content": _tool_output(rng)}]}]
        elif api == "gemini":
            contents = [{"role": "user" if m["role"] == "user" else "model", "parts": [{"text": str(m["content"])}]}
                        for m in hist]
            out.append({"systemInstruction": {"parts": [{"text": SYSTEM}]}, "contents": contents, "_stream": s})
            hist += [{"role": "assistant", "content": _prose(rng, 30)}, {"role": "user", "content": _tool_output(rng)}]
        else:  # responses
            items = [{"role": "user", "content": m["content"]} if m["role"] == "user"
                     else {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": m["content"]}]}
                     for m in hist]
            out.append({"model": "gpt-4.1-mini", "stream": s, "instructions": SYSTEM, "input": items})
            hist += [{"role": "assistant", "content": _prose(rng, 30)}, {"role": "user", "content": _tool_output(rng)}]
    return out


_ROUTES = {"openai": ("api.openai.com", "/v1/chat/completions"),
           "responses": ("api.openai.com", "/v1/responses"),
           "anthropic": ("api.anthropic.com", "/v1/messages"),
           "gemini": ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:{}")}


def _call(api: str, req: dict) -> tuple[str, str, bytes, int, str, list[bytes]]:
    """(host, path, request body, status, content type, reply parts) of one call, from fake_llm."""
    host, path = _ROUTES[api]
    if api == "gemini":
        s = req.pop("_stream")
        path = path.format("streamGenerateContent?alt=sse" if s else "generateContent")
    body = json.dumps(req).encode()
    status, ctype, parts = fake_llm.respond("POST", path, body)
    return host, path, body, status, ctype, parts


def _capture_cuts(direction: str, data: bytes) -> list[int]:
    return list(range(CAPTURE_CHUNK, len(data), CAPTURE_CHUNK))


def h1_connection(calls, pid: int, ssl: int, ts0: int) -> list:
    """Calls in a row on one keep-alive HTTP/1.1 connection: the request in one write, a
    streamed reply one part per chunk, a whole reply in one read."""
    conv = []
    for host, path, body, status, ctype, parts in calls:
        hs = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-not-a-key"}
        conv.append(("send", h1_request("POST", path, body, hs, host=host)))
        if ctype.startswith("text/event-stream"):
            conv.append(("recv", h1_response(status, b"", {"Content-Type": ctype, "Transfer-Encoding": "chunked"},
                                             length=False)))
            conv += [("recv", b"%x\r\n%s\r\n" % (len(p), p)) for p in parts]
            conv.append(("recv", b"0\r\n\r\n"))
        else:
            conv.append(("recv", h1_response(status, b"".join(parts), {"Content-Type": ctype})))
    return to_chunks(conv, pid=pid, ssl=ssl, splits=_capture_cuts, ts0=ts0)


def h2_connection(calls, pid: int, ssl: int, ts0: int, concurrent: int = 4) -> list:
    """Calls on one HTTP/2 connection, `concurrent` at a time, reply parts interleaved."""
    p = H2Pair()
    sid = 1
    for i in range(0, len(calls), concurrent):
        group = []
        for host, path, body, status, ctype, parts in calls[i:i + concurrent]:
            p.client.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "https"),
                                        (":authority", host), ("content-type", "application/json")])
            for k in range(0, len(body), 16384):
                p.client.send_data(sid, body[k:k + 16384], end_stream=k + 16384 >= len(body))
                p._pump()
            p.respond(sid, status, [("content-type", ctype)])
            group.append((sid, list(parts)))
            sid += 2
        while any(ps for _, ps in group):
            for s, ps in group:
                if ps:
                    p.server.send_data(s, ps.pop(0), end_stream=not ps)
            p._pump()
    return to_chunks(p.conv, pid=pid, ssl=ssl, splits=_capture_cuts, ts0=ts0)


def interleave(*conns: list) -> list:
    """Several connections' chunks merged by time, as the capture delivers them."""
    return sorted((c for conn in conns for c in conn), key=lambda c: c.ts)


def _payloads(calls) -> list[bytes]:
    """The JSON the pipeline must decode: request bodies, whole replies, SSE data payloads."""
    out = []
    for _, _, body, _, ctype, parts in calls:
        out.append(body)
        if ctype.startswith("text/event-stream"):
            for part in parts:
                for line in part.replace(b"\r\n", b"\n").split(b"\n"):
                    if line.startswith(b"data: ") and line != b"data: [DONE]":
                        out.append(line[6:])
        else:
            out.append(b"".join(parts))
    return out


def agent_nonstream(exchanges: int, _events: int = 0, usage: bool = True, seed: int = 1):
    """Non-streamed calls with agent-sized prompts: OpenAI and Anthropic conversations of 10
    turns, in turn, on one HTTP/1.1 connection."""
    rng = random.Random(seed)
    calls = []
    while len(calls) < exchanges:
        api = "openai" if len(calls) % 20 < 10 else "anthropic"
        calls += [_call(api, r) for r in agent_requests(rng, api, 10, False)]
    calls = calls[:exchanges]
    chunks = h1_connection(calls, 300, 3, 1_000_000_000)
    chunks.append(ConnClosed(chunks[-1].ts + 1, 300, 3))
    return chunks, _payloads(calls)


def agent_mix(exchanges: int, _events: int = 0, usage: bool = True, seed: int = 2):
    """Agent conversations, streamed (60 %) or not, on three connections at once: OpenAI chat
    and Responses over HTTP/1.1, Anthropic and Gemini over HTTP/2."""
    rng = random.Random(seed)
    per = {"h1": [], "h2": [], "h1b": []}
    apis = [("openai", "h1"), ("anthropic", "h2"), ("gemini", "h2"), ("responses", "h1b")]
    n = 0
    while n < exchanges:
        api, conn = apis[rng.randrange(4)] if n % 3 else apis[n % 2]
        reqs = agent_requests(rng, api, 8, None)[: exchanges - n]
        per[conn] += [_call(api, r) for r in reqs]
        n += len(reqs)
    conns = [h1_connection(per["h1"], 400, 4, 1_000_000_000),
             h2_connection(per["h2"], 401, 5, 1_000_000_500),
             h1_connection(per["h1b"], 402, 6, 1_000_000_700)]
    chunks = interleave(*conns)
    end = chunks[-1].ts
    chunks += [ConnClosed(end + 1, 400, 4), ConnClosed(end + 1, 401, 5), ConnClosed(end + 1, 402, 6)]
    return chunks, _payloads(per["h1"] + per["h2"] + per["h1b"])


WORKLOADS = {
    "HTTP/1.1 SSE": http1_sse,
    "HTTP/2 SSE": http2_sse,
    "non-stream, agent": agent_nonstream,
    "agent mix": agent_mix,
}


# -- timing --------------------------------------------------------------------------------------

def time_protocol(chunks, batch: int) -> tuple[float, int]:
    batches = [chunks[i:i + batch] for i in range(0, len(chunks), batch)]
    gc.collect()
    t = ProtocolTracker()
    feed, finish = (t.feed_raw, t.finish_raw) if hasattr(t, "feed_raw") else (t.feed_many, t.finish)  # older trees
    n = 0
    start = time.perf_counter()
    for b in batches:
        n += len(feed(b))
    n += len(finish(0))
    elapsed = time.perf_counter() - start
    assert t.internal_errors == 0
    return elapsed, n


def time_pipeline(chunks, live: bool, batch: int) -> tuple[float, int]:
    batches = [chunks[i:i + batch] for i in range(0, len(chunks), batch)]
    gc.collect()
    pl = Pipeline(live=live)
    n = 0
    start = time.perf_counter()
    for b in batches:
        n += len(pl.feed(b))
    n += len(pl.finish())
    elapsed = time.perf_counter() - start
    assert pl.internal_errors == 0
    return elapsed, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exchanges", type=int, default=200)
    ap.add_argument("--events", type=int, default=200, help="SSE events per streamed call (SSE workloads)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="capture events per Pipeline.feed() call")
    ap.add_argument("--only", action="append", help="run only the workloads whose name contains this")
    ap.add_argument("--no-usage", action="store_true", help="SSE streams without a usage event")
    args = ap.parse_args()
    estimate.count("warm up the tokenizer", "gpt-4o-mini")  # loading cl100k is not throughput
    print(f"{args.exchanges} exchanges per workload ({args.events} SSE events each in the SSE ones, "
          f"{'without' if args.no_usage else 'with'} usage); batches of {args.batch} capture events; "
          f"best of {args.runs} runs\n")
    print(f"{'workload':<22}{'layers':<22}{'MB':>7}{'calls':>7}{'s':>8}{'MB/s':>8}{'x orjson':>10}")
    for name, build in WORKLOADS.items():
        if args.only and not any(o in name for o in args.only):
            continue
        chunks, payloads = build(args.exchanges, args.events, usage=not args.no_usage)
        mb = sum(len(c.data) for c in chunks if type(c) is ChunkEvent) / 1e6
        json_s = best_of(time_orjson, payloads, args.runs)
        rows = [("protocol only", best_of(lambda c: time_protocol(c, args.batch), chunks, args.runs)[0], "-"),
                ("pipeline, headless", *best_of(lambda c: time_pipeline(c, False, args.batch), chunks, args.runs)),
                ("pipeline, live (UI)", *best_of(lambda c: time_pipeline(c, True, args.batch), chunks, args.runs))]
        for layers, secs, calls in rows:
            print(f"{name:<22}{layers:<22}{mb:>7.1f}{calls!s:>7}{secs:>8.3f}{mb / secs:>8.1f}{secs / json_s:>10.2f}",
                  flush=True)
    print("\nx orjson = time / orjson.loads time for the same request bodies, whole replies and SSE payloads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
