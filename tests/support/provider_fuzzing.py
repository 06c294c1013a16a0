"""Hostile LLM calls through every layer after the protocol one: nothing may escape.

Used by the test suite (tests/test_provider_fuzz.py, a fixed number of cases) and by
bench/fuzz.py (longer runs). A case starts from a real call in some provider's wire shape (the
SDK traffic of tests/golden/llm-clients.llmspy, fake_llm's replies for every API, and hand-written
Cohere v1 and Ollama calls), mutates it (JSON values of the request and of the streamed items
given wrong types, huge or negative counts, deep nesting, odd strings; bytes flipped, cut or made
non-UTF-8; SSE/NDJSON items dropped, repeated, reordered; odd hosts, paths, methods, statuses,
content types; requests or responses missing, cut short, or ending in odd orders), and feeds it
as protocol events (the very types the protocol layer emits, in its bulk BodyFlush form as the
pipeline hands them on, or as public events) into ExchangeTracker, then the exchange events into
a Store. Every kept exchange of the snapshot is then rendered as an exchange record (the headless
line), and exported as JSON, JSONL and Markdown, with and without --show-secrets, and its bodies
go through the redaction helpers.

A few cases in a hundred fuzz the recording-file reader instead: a real recording's frames with
mutated payloads (checksums fixed up, so that the decoder sees them), bytes, or header, read with
RecordingReader and replayed through the whole pipeline.

A case fails when any exception escapes, when the provider layer counts an internal error (it
catches its own exceptions: "internal error" or "request not understood" on an exchange), or
when the store's tallies do not return to no call in flight once everything is finished. The
failure names the case's seed: `run_case(seed)` replays it alone.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import fake_llm
import orjson
from fuzzing import mutate as mutate_bytes
from wire import h1_request, h1_response

from llmspy_tui.capture.events import ProcessExit, ProcessInfo, ProcessSeen
from llmspy_tui.capture.recordfile import (
    FRAME,
    MAGIC,
    T_CHUNK,
    T_HEADER,
    RecordingReader,
    _frame,
    encode_event,
)
from llmspy_tui.errors import UserError
from llmspy_tui.export import FORMATS, exchange_record, export_bytes
from llmspy_tui.pipeline import Pipeline
from llmspy_tui.protocol import ProtocolTracker
from llmspy_tui.protocol import events as pe
from llmspy_tui.protocol.events import BodyFlush
from llmspy_tui.providers import ExchangeTracker, Options
from llmspy_tui.providers.events import ExchangeFinished
from llmspy_tui.redact import mask_cmdline_arg, mask_http1_secrets, redact_headers, redact_target
from llmspy_tui.store import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "llm-clients.llmspy"
T0 = 1_764_000_000_000_000_000  # capture time of a case's first event (ns)


# -- the corpus: real calls, as protocol events ------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One call as the protocol layer reported it, taken apart for mutation."""

    name: str
    head: pe.RequestHead
    req_body: bytes
    req_obj: object  # the request body parsed, or None
    resp_head: pe.ResponseHead | None
    framing: str  # "sse", "ndjson", "json-array" or "" (a whole body)
    items: tuple  # ((event, data bytes, parsed data or None), ...)
    resp_body: bytes
    resp_obj: object


def _loads(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def calls_of(events: list, name: str) -> list[Call]:
    """The calls of a protocol event sequence, one per (connection, stream) with a request."""
    by_key: dict = {}
    for ev in events:
        if hasattr(ev, "stream"):
            by_key.setdefault((ev.conn, ev.stream), []).append(ev)
    out = []
    for evs in by_key.values():
        head = next((e for e in evs if type(e) is pe.RequestHead), None)
        if head is None:
            continue
        rh = next((e for e in evs if type(e) is pe.ResponseHead and not e.interim), None)
        req = b"".join(e.data for e in evs if type(e) is pe.BodyData and e.side == pe.REQUEST)
        resp = b"".join(e.data for e in evs if type(e) is pe.BodyData and e.side == pe.RESPONSE)
        items, framing = [], ""
        for e in evs:
            if type(e) is pe.SseEvent:
                framing = "sse"
                data = e.data.encode()
                items.append((e.event, data, _loads(data)))
            elif type(e) is pe.JsonItem:
                framing = e.framing
                items.append(("", e.text, _loads(e.text)))
        out.append(Call(f"{name} {head.method} {head.target}", head, req, _loads(req), rh, framing,
                        tuple(items), resp, _loads(resp)))
    return out


def _protocol_events(conv) -> list:
    from wire import to_chunks

    pt = ProtocolTracker()
    chunks = to_chunks(conv)
    out = pt.feed_many(chunks) + pt.finish(chunks[-1].ts + 1)
    assert pt.internal_errors == 0
    return out


def _h1(path: str, host: str, req: dict, status: int, ctype: str, parts: list[bytes], headers=None) -> list:
    """One HTTP/1.1 call: a streamed reply chunked one part per chunk, as the loopback server sends it."""
    body = json.dumps(req).encode()
    hs = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-secret-0123456789", **(headers or {})}
    conv = [("send", h1_request("POST", path, body, hs, host=host))]
    if len(parts) > 1 or ctype.startswith("text/event-stream"):
        conv.append(("recv", h1_response(status, b"", {"Content-Type": ctype, "Transfer-Encoding": "chunked"},
                                         length=False)))
        conv += [("recv", b"%x\r\n%s\r\n" % (len(p), p)) for p in parts if p]
        conv.append(("recv", b"0\r\n\r\n"))
    else:
        conv.append(("recv", h1_response(status, b"".join(parts), {"Content-Type": ctype})))
    return conv


_TOOLS_OPENAI = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
_TOOLS_ANTHROPIC = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {
    "city": {"type": "string"}}}}]
_TOOLS_GEMINI = [{"functionDeclarations": [{"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}]}, {"googleSearch": {}}]
_MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
         {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
             "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
         {"role": "user", "content": [{"type": "text", "text": "And Rome?"},
                                      {"type": "image_url", "image_url": {"url": "data:x"}}]}]
_GEM = {"systemInstruction": {"parts": [{"text": "Answer briefly."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}, {"role": "model", "parts": [{"text": "Hi"}]},
                     {"role": "user", "parts": [{"text": "Weather in Lyon?"}]}],
        "generationConfig": {"temperature": 0.1, "thinkingConfig": {"thinkingBudget": 100}}}
_ANTHROPIC_MSGS = [
    {"role": "user", "content": "Time?"},
    {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "x"},
                                      {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "12:00"},
                                 {"type": "text", "text": "and the weather?"}]}]

# (path, host, request, extra request headers) answered by fake_llm in each API's wire format
_GENERATED = [
    ("/v1/chat/completions", "api.openai.com", {"model": "gpt-4o-mini", "stream": True, "temperature": 0.2,
     "stream_options": {"include_usage": True}, "messages": _MSGS[:2]}, None),
    ("/v1/chat/completions", "api.openai.com", {"model": "gpt-4o", "stream": True, "tools": _TOOLS_OPENAI,
     "messages": _MSGS[:2]}, None),
    ("/v1/chat/completions", "api.groq.com", {"model": "o4-mini", "messages": _MSGS, "tools": _TOOLS_OPENAI}, None),
    ("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", "res.openai.azure.com",
     {"stream": True, "messages": _MSGS[:2]}, {"api-key": "azure-secret"}),
    ("/v1/chat/completions", "api.openai.com", {"model": "gpt-4o-ratelimit", "messages": _MSGS[:2]}, None),
    ("/v1/responses", "api.openai.com", {"model": "gpt-5-mini", "stream": True, "input": "Say hi",
     "instructions": "Be brief.", "reasoning": {"effort": "low", "summary": "auto"}}, None),
    ("/v1/responses", "api.openai.com", {"model": "gpt-4.1", "tools": [{"type": "function", "name": "get_weather",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}], "previous_response_id": "resp_0",
     "input": [{"role": "user", "content": [{"type": "input_text", "text": "Rome?"}]},
               {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "c1", "output": "Sunny"}]}, None),
    ("/v1/responses", "api.openai.com", {"model": "gpt-4.1", "stream": True, "tools": [{"type": "function",
     "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
     "input": [{"role": "user", "content": "Weather?"}]}, None),
    ("/v1/messages", "api.anthropic.com", {"model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": True,
     "thinking": {"type": "enabled", "budget_tokens": 1024}, "tools": _TOOLS_ANTHROPIC,
     "system": [{"type": "text", "text": "You are a weather bot. " * 200, "cache_control": {"type": "ephemeral"}}],
     "messages": [{"role": "user", "content": "Weather in Rome?"}]}, {"anthropic-version": "2023-06-01",
                                                                      "x-api-key": "sk-ant-secret"}),
    ("/v1/messages", "api.anthropic.com", {"model": "claude-3-5-haiku-20241022", "max_tokens": 100,
     "messages": _ANTHROPIC_MSGS}, {"anthropic-version": "2023-06-01"}),
    ("/v1/messages", "api.anthropic.com", {"model": "claude-3-5-haiku-overloaded", "max_tokens": 100,
     "stream": True, "messages": _ANTHROPIC_MSGS[:1]}, None),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET0123456789",
     "generativelanguage.googleapis.com", _GEM, None),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "generativelanguage.googleapis.com",
     dict(_GEM, tools=_TOOLS_GEMINI), {"x-goog-api-key": "AIzaSECRET0123456789"}),
    ("/v1beta/models/gemini-2.0-flash:generateContent", "generativelanguage.googleapis.com", _GEM, None),
    ("/v1beta/models/gemini-2.0-flash-ratelimit:generateContent", "generativelanguage.googleapis.com", _GEM, None),
    ("/v1/projects/p/locations/us/publishers/google/models/gemini-2.5-pro:generateContent",
     "us-aiplatform.googleapis.com", dict(_GEM, tools=_TOOLS_GEMINI), None),
    ("/v2/chat", "api.cohere.com", {"model": "command-r-plus", "stream": True, "messages": _MSGS[:2]}, None),
    ("/v2/chat", "api.cohere.com", {"model": "command-a-03-2025", "tools": _TOOLS_OPENAI, "messages": _MSGS[:2]},
     None),
    ("/v2/chat", "api.cohere.com", {"model": "command-r-plus", "stream": True, "tools": _TOOLS_OPENAI,
     "messages": _MSGS[:2]}, None),
]


def _handwritten() -> list:
    """Cohere v1 and Ollama (fake_llm does not serve them), in their documented shapes."""
    v1_req = {"model": "command-r", "message": "Tell me a story", "preamble": "Be brief.", "stream": True,
              "chat_history": [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello"}]}
    v1_lines = [{"is_finished": False, "event_type": "stream-start", "generation_id": "g-1"},
                {"is_finished": False, "event_type": "text-generation", "text": "Once"},
                {"is_finished": False, "event_type": "text-generation", "text": " upon."},
                {"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "response": {
                    "generation_id": "g-1", "text": "Once upon.", "meta": {
                        "billed_units": {"input_tokens": 9, "output_tokens": 3},
                        "tokens": {"input_tokens": 70, "output_tokens": 3}}}}]
    v1_body = {"text": "Once.", "generation_id": "g-2", "finish_reason": "COMPLETE",
               "tool_calls": [{"name": "get_weather", "parameters": {"city": "Oslo"}}],
               "meta": {"billed_units": {"input_tokens": 9, "output_tokens": 1}, "cached_tokens": 4}}
    ollama_req = {"model": "llama3.2", "messages": _MSGS[:2], "tools": _TOOLS_OPENAI, "options": {"seed": 1}}
    ollama_lines = [{"model": "llama3.2", "message": {"role": "assistant", "content": "Hel", "thinking": "h"},
                     "done": False},
                    {"model": "llama3.2", "message": {"role": "assistant", "content": "", "tool_calls": [
                        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, "done": False},
                    {"model": "llama3.2", "message": {"role": "assistant", "content": "lo"}, "done": True,
                     "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 2}]
    nd = "application/x-ndjson"
    return [
        _h1("/v1/chat", "api.cohere.ai", v1_req, 200, nd, [orjson.dumps(x) + b"\n" for x in v1_lines]),
        _h1("/v1/chat", "api.cohere.ai", dict(v1_req, stream=False), 200, "application/json", [orjson.dumps(v1_body)]),
        _h1("/api/chat", "localhost:11434", ollama_req, 200, nd, [orjson.dumps(x) + b"\n" for x in ollama_lines]),
        _h1("/api/chat", "10.1.2.3:11434", dict(ollama_req, stream=False), 200, "application/json",
            [orjson.dumps(ollama_lines[-1])]),
        _h1("/api/chat", "localhost:11434", ollama_req, 404, "application/json",
            [b'{"error":"model \\"llama3.2\\" not found, try pulling it first"}']),
    ]


_CORPUS: list[Call] | None = None


def corpus() -> list[Call]:
    """Every call of the corpus (built once)."""
    global _CORPUS
    if _CORPUS is None:
        calls = []
        if GOLDEN.exists():
            pt = ProtocolTracker()
            evs = pt.feed_many(list(RecordingReader(str(GOLDEN))))
            calls += calls_of(evs + pt.finish(T0 * 2), "golden")
        for path, host, req, headers in _GENERATED:
            status, ctype, parts = fake_llm.respond("POST", path, json.dumps(req).encode())
            calls += calls_of(_protocol_events(_h1(path, host, req, status, ctype, parts, headers)), "generated")
        for conv in _handwritten():
            calls += calls_of(_protocol_events(conv), "handwritten")
        _CORPUS = calls
    return _CORPUS


# -- mutations ---------------------------------------------------------------------------------
# Stand-ins for what no JSON encoder here writes, spliced into the text: an integer beyond 64
# bits, and values nested deeper than orjson writes (and than Python's repr goes) but not deeper
# than orjson reads.
_HUGE = "\x00huge\x00"
_DEEP_LIST = "\x00deep list\x00"
_DEEP_OBJECT = "\x00deep object\x00"
_SPLICE = {orjson.dumps(_HUGE): b"1" + b"0" * 40, orjson.dumps(_DEEP_LIST): b"[" * 1000 + b"1" + b"]" * 1000,
           orjson.dumps(_DEEP_OBJECT): b'{"a":' * 600 + b"null" + b"}" * 600}
_DEEP_TEXT = "[" * 3000 + "]" * 3000  # JSON text nested deeper than any recursive parser goes
_STRINGS = ["", " ", "0", "12", "-5", "1e3", "NaN", "null", "[DONE]", "\x00", "é\u202e\u200b", "````` ``` `",
            "# h\n---\n> q\n| a |", "<script>x</script>", "Bearer sk-abcdef0123456789", "x" * 3000,
            "{\"city\": \"Paris\"}", "{not json", _DEEP_TEXT, "\\", "\n\n\r\n", "data: {}\n\n", "*_[]~|#"]
_SCALARS = [None, True, False, 0, 1, -1, -(2**63), 2**64 - 1, _HUGE, 0.5, -0.0, 1e308, -1e308, 3.0, _DEEP_LIST,
            _DEEP_OBJECT]


def _deep(n: int, leaf=1):
    v = leaf
    for _ in range(n):
        v = [v]
    return v


def _hostile(rng: random.Random, v):
    """A wrong value in place of `v`: another type, an extreme number, an odd string, nesting."""
    r = rng.random()
    if r < 0.3:
        return rng.choice(_SCALARS)
    if r < 0.5:
        return rng.choice(_STRINGS)
    if r < 0.65:  # the same value, typed wrong
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, int):
            return rng.choice((str(v), float(v), -v - 1, v * 10**6, _HUGE, [v], {"value": v}))
        if isinstance(v, float):
            return rng.choice((str(v), int(v), -v, [v]))
        if isinstance(v, str):
            return rng.choice((len(v), [v], {"text": v}, {"type": v}, v * rng.randint(2, 50), v[: len(v) // 2]))
        if isinstance(v, list):
            return rng.choice(({str(i): x for i, x in enumerate(v)}, len(v), v * 3, [v], []))
        if isinstance(v, dict):
            return rng.choice((list(v.values()), list(v), {}, dumps(v)[:50].decode("utf-8", "replace"), [v],
                               {**v, "type": None}))
        return rng.choice(_STRINGS)
    if r < 0.75:
        return _deep(rng.choice((2, 10, 100, 250)), rng.choice((1, None, "x", {})))
    if r < 0.85:
        return rng.choice(([], {}, [None], [1, "a", None, {}], {"type": None}, {"type": 5, "text": 5},
                           [{"type": "text", "text": None}], [{"type": "tool_use", "input": "x"}],
                           {"message": None, "content": 7}, {"": ""}))
    return rng.randbytes(rng.randint(1, 12)).decode("latin-1")


def _mutate_json(rng: random.Random, v, depth: int = 0):
    """A copy of `v` with one thing changed at a random place (only the path to it is copied)."""
    if depth < 16 and rng.random() < 0.8:
        if isinstance(v, dict) and v:
            k = rng.choice(list(v))
            new = dict(v)
            r = rng.random()
            if r < 0.12:
                del new[k]
            elif r < 0.16:
                new[rng.choice(_STRINGS[:12])] = _hostile(rng, None)
            else:
                new[k] = _mutate_json(rng, v[k], depth + 1)
            return new
        if isinstance(v, list) and v:
            i = rng.randrange(len(v))
            new = list(v)
            r = rng.random()
            if r < 0.1:
                del new[i]
            elif r < 0.2:
                new.insert(i, v[i])
            elif r < 0.25:
                rng.shuffle(new)
            else:
                new[i] = _mutate_json(rng, v[i], depth + 1)
            return new
    return _hostile(rng, v)


def dumps(v) -> bytes:
    """JSON text of a mutated value (a stand-in for a huge integer becomes one)."""
    try:
        data = orjson.dumps(v)
    except TypeError:  # past orjson's nesting limit, or an integer beyond 64 bits
        try:
            data = json.dumps(v).encode()
        except RecursionError:  # mutations piled up too deep for Python too: as deep as it gets
            data = _SPLICE[orjson.dumps(_DEEP_LIST)]
    if b"\\u0000" in data:
        for stand_in, text in _SPLICE.items():
            data = data.replace(stand_in, text)
    return data


def mutate_data(rng: random.Random, data: bytes, obj) -> bytes:
    """Mutated JSON (wrong values) when it parsed, else (sometimes anyway) mutated bytes."""
    if obj is not None and rng.random() < 0.8:
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            obj = _mutate_json(rng, obj)
        return dumps(obj)
    return mutate_bytes(rng, data)


_HOSTS = ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com", "us-aiplatform.googleapis.com",
          "api.cohere.com", "localhost:11434", "api.groq.com", "x.openai.azure.com", "openrouter.ai", "api.x.ai",
          "gw.internal:8443", "", "[::1]:11434", "user@api.openai.com", "API.OPENAI.COM.", "127.0.0.1", "a" * 300,
          "évil.example", "host:notaport", ":", "@", "[", "api.anthropic.com:443"]
_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v2/chat", "/v1/chat", "/api/chat",
          "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
          "/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaSECRET0123456789",
          "/v1/projects/p/locations/us/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict",
          "/v1/models/:generateContent", "/models/", "/", "", "*", "/gateway/invoke?api_key=sk-123&x=1",
          "http://api.openai.com/v1/chat/completions", "/v1/chat/completions?key=", "/%00/chat/completions",
          "/v1/messages?" + "k=v&" * 100, "/api/chat/", "/v1/responses/"]
_METHODS = ["POST", "GET", "PUT", "post", "", "PRI", "DELETE"]
_STATUSES = [200, 200, 201, 204, 206, 301, 400, 401, 404, 413, 422, 429, 500, 502, 503, 529, 599, 999, 0, 1]
_CTYPES = ["application/json", "text/event-stream", "application/x-ndjson", "text/plain", "", "text/html",
           "application/json; charset=utf-16", "multipart/form-data; boundary=x", "application/octet-stream"]
_MODELS = ["gpt-4o", "gpt-4o-mini-2024-07-18", "claude-sonnet-4-5", "gemini-2.5-flash", "command-r-plus",
           "llama3.2", "unknown-model-x", "", "gpt-4o\x00", "o3", "whisper-large-v3", "models/gemini-2.5-pro",
           "ft:gpt-4o-mini:org::abc", "a" * 500, "claude-3-5-haiku-20241022"]
_COMMS = ["python3", "", "`node`", "*a*", "#x\n", "a" * 100, "\x1b[31m", "é"]


def _headers(rng: random.Random, headers: tuple, ctype: str | None = None) -> tuple:
    hs = list(headers)
    r = rng.random()
    if ctype is not None:
        hs = [(k, v) for k, v in hs if k != "content-type"] + [("content-type", ctype)]
    elif r < 0.3:
        hs.append(rng.choice([("anthropic-version", "2023-06-01"), ("authorization", "Bearer sk-" + "x" * 40),
                              ("x-api-key", ""), ("cookie", "a=b; c=d"), ("api-key", "é" * 5),
                              ("x-goog-api-key", "\x00\xff"), ("authorization", "Basic")]))
    elif r < 0.4:
        hs = [(k, v) for k, v in hs if rng.random() < 0.5]
    return tuple(hs)


_TURNS = {"messages": [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "and then?"}],
          "contents": [{"role": "model", "parts": [{"text": "ok"}]}, {"role": "user", "parts": [{"text": "and then?"}]}],
          "input": [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "and then?"}]}


def _next_turn(call: Call) -> Call:
    """The call that continues `call`'s conversation: its history, a reply, a new question."""
    obj = call.req_obj
    if isinstance(obj, dict):
        for key, turn in _TURNS.items():
            history = obj.get(key)
            if isinstance(history, list):
                new = {**obj, key: history + turn}
                return replace(call, req_body=orjson.dumps(new), req_obj=new)
    return call


class _Case:
    """Protocol events for the calls of one case, with capture times in order."""

    def __init__(self, rng: random.Random, pid: int) -> None:
        self.rng = rng
        self.pid = pid
        self.ts = T0
        self.events: list = []

    def tick(self) -> int:
        self.ts += self.rng.choice((0, 1, 1000, 10**6, 10**9))
        if self.rng.random() < 0.005:  # a clock that went back (events of other CPUs)
            self.ts -= self.rng.choice((1, 10**9))
        return self.ts

    def body(self, conn: str, stream: int, side: str, data: bytes, items: list | None, framing: str,
             bulk: bool) -> None:
        """Body bytes and stream items: the pipeline's bulk form, or the public events."""
        rng = self.rng
        cuts = sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(rng.choice((0, 1, 3))))})
        pieces = [(data[a:b], self.tick()) for a, b in zip(cuts, cuts[1:])]
        its = items or []
        if bulk:
            k = max(0, len(pieces) - 1)
            raw = [(self.tick(), ev, d, None, None, rng.random() < 0.95, min(k, i % (k + 1)))
                   for i, (ev, d) in enumerate(its)]
            split = rng.randrange(len(raw) + 1) if raw and rng.random() < 0.3 else len(raw)
            self.events.append(BodyFlush(conn, self.pid, stream, side, pieces, raw[:split] if items is not None
                                         else None, framing))
            if split < len(raw):  # the rest of the stream in a later flush
                self.events.append(BodyFlush(conn, self.pid, stream, side, [], raw[split:], framing))
            return
        for d, ts in pieces:
            self.events.append(pe.BodyData(ts, conn, self.pid, stream, side, d))
        for ev, d in its:
            if framing == "sse":
                self.events.append(pe.SseEvent(self.tick(), conn, self.pid, stream, side, ev,
                                               d.decode("utf-8", "replace"), rng.choice((None, "1")),
                                               rng.choice((None, 3000)), rng.random() < 0.95))
            else:
                self.events.append(pe.JsonItem(self.tick(), conn, self.pid, stream, side, d,
                                               framing or rng.choice(("ndjson", "json-array"))))

    def end(self, conn: str, stream: int, side: str, size: int, complete: bool, problem: str = "") -> None:
        ts = self.tick()
        self.events.append(pe.MessageEnd(ts, conn, self.pid, stream, side, ts - 5, ts, size, size, complete, problem))


def _sse_text(items: list) -> bytes:
    return b"".join((b"event: " + ev.encode() + b"\n" if ev else b"") + b"data: " + d + b"\n\n" for ev, d in items)


def _stream_items(rng: random.Random, call: Call) -> list:
    items = [(ev, d) for ev, d, _ in call.items]
    objs = [o for _, _, o in call.items]
    for _ in range(rng.choice((0, 1, 1, 2, 4))):
        if not items:
            break
        r = rng.random()
        i = rng.randrange(len(items))
        if r < 0.45:  # wrong values in one item
            items[i] = (items[i][0], mutate_data(rng, items[i][1], objs[i]))
        elif r < 0.55:
            items[i] = (items[i][0], mutate_bytes(rng, items[i][1]))
        elif r < 0.65:
            del items[i], objs[i]
        elif r < 0.72:
            j = rng.randrange(len(items))
            items.insert(j, items[i])
            objs.insert(j, objs[i])
        elif r < 0.77:
            pairs = list(zip(items, objs))
            rng.shuffle(pairs)
            items, objs = [p[0] for p in pairs], [p[1] for p in pairs]
        elif r < 0.85:  # another item's event name, or none
            items[i] = (rng.choice(("", "error", "message_stop", "response.completed", "ping", "x" * 50,
                                    items[rng.randrange(len(items))][0])), items[i][1])
        elif r < 0.92:
            items.insert(i, rng.choice((("", b"[DONE]"), ("", b""), ("", b": keep-alive"), ("", b"{}"),
                                        ("error", b'{"type":"error","error":{"message":5}}'), ("", b"null"),
                                        ("", b"[1,2]"), ("", b"\xff\xfe{"), ("", b'"text"'))))
            objs.insert(i, None)
        else:  # cut short
            del items[i:], objs[i:]
    return items


def _call_events(rng: random.Random, c: _Case, call: Call, conn: str, stream: int) -> None:
    """One mutated call's protocol events, appended to the case."""
    head = call.head
    target, authority, method = head.target, head.authority, head.method
    if rng.random() < 0.15:
        authority = rng.choice(_HOSTS)
    if rng.random() < 0.12:
        target = rng.choice(_PATHS)
    if rng.random() < 0.04:
        method = rng.choice(_METHODS)
    req = call.req_body
    r = rng.random()
    if r < 0.5:
        req = mutate_data(rng, req, call.req_obj)
    elif r < 0.55 and isinstance(call.req_obj, dict):  # an odd model: pricing and tokenizers
        req = dumps({**call.req_obj, "model": rng.choice(_MODELS)})
    elif r < 0.58:
        req = rng.choice((b"", b"[]", b"null", b"{}", b"[{}]", b"\xef\xbb\xbf{}", b" \n{\"a\":1}", b"{" * 2000))
    bulk = rng.random() < 0.7
    role = "server" if rng.random() < 0.05 else "client"
    if rng.random() < 0.8:
        c.events.append(pe.ConnectionDetected(c.tick(), conn, c.pid, rng.choice(("http/1.1", "h2")), role,
                                              rng.random() < 0.1))
    ending = rng.random()
    joined_late = ending < 0.05  # the monitor joined after the request: no head, no request body
    if not joined_late:
        c.events.append(pe.RequestHead(c.tick(), conn, c.pid, stream, head.http_version, method, target, authority,
                                       head.scheme, _headers(rng, head.headers), rng.random() < 0.95, c.ts))
        c.body(conn, stream, pe.REQUEST, req, None, "", bulk)
    early_head = 0.05 <= ending < 0.09  # the response head before the request's end
    no_req_end = 0.09 <= ending < 0.12
    rh = call.resp_head
    if rh is not None and early_head:
        c.events.append(pe.ResponseHead(c.tick(), conn, c.pid, stream, rh.http_version, rh.status, rh.reason,
                                        rh.headers, True, False, c.ts))
    if not joined_late and not no_req_end:
        c.end(conn, stream, pe.REQUEST, len(req), rng.random() < 0.97, rng.choice(("", "gap of 12 bytes")))
    if 0.12 <= ending < 0.16 or rh is None:  # no response at all
        if rng.random() < 0.5:
            c.events.append(pe.ConnectionEnd(c.tick(), conn, c.pid, rng.choice(("closed", "process exit"))))
        return
    status = rng.choice(_STATUSES) if rng.random() < 0.15 else rh.status
    ctype = rng.choice(_CTYPES) if rng.random() < 0.1 else None
    if rng.random() < 0.03:
        c.events.append(pe.ResponseHead(c.tick(), conn, c.pid, stream, rh.http_version, 100, "Continue", (), True,
                                        True, c.ts))
    if not early_head:
        c.events.append(pe.ResponseHead(c.tick(), conn, c.pid, stream, rh.http_version, status, rh.reason,
                                        _headers(rng, rh.headers, ctype), rng.random() < 0.95, False, c.ts))
    framing = call.framing
    if framing:
        items = _stream_items(rng, call)
        if framing == "sse":
            body = _sse_text(items)
        elif framing == "ndjson":
            body = b"".join(d + b"\n" for _, d in items)
        else:
            body = b"[" + b",".join(d for _, d in items) + b"]"
        if rng.random() < 0.05:  # the stream's text, but not framed as a stream
            items = None
    else:
        body = call.resp_body
        r = rng.random()
        if r < 0.55:
            body = mutate_data(rng, body, call.resp_obj)
        elif r < 0.6 and call.resp_obj is not None:  # SSE sent with another content type
            body = _sse_text([("", dumps(call.resp_obj)), ("", b"[DONE]")])
        items = None
        if rng.random() < 0.05:  # a whole body framed as a stream after all
            framing = rng.choice(("sse", "ndjson", "json-array"))
            items = [("", body)]
    c.body(conn, stream, pe.RESPONSE, body, items, framing, bulk)
    if 0.16 <= ending < 0.28:  # the response is cut short, one way or another
        r = rng.random()
        if r < 0.4:
            c.end(conn, stream, pe.RESPONSE, len(body), False,
                  rng.choice(("connection closed before the body ended", "connection closed before the stream ended",
                              "stream reset", "bytes lost", "gap of 5 bytes; connection closed before the body ended",
                              "body capped at 64 MiB")))
        elif r < 0.8:
            c.events.append(pe.ConnectionEnd(c.tick(), conn, c.pid, rng.choice(("closed", "process exit"))))
        # else: the capture ends with the call still open
    else:
        c.end(conn, stream, pe.RESPONSE, len(body), True)
        if rng.random() < 0.3:
            c.events.append(pe.ConnectionEnd(c.tick(), conn, c.pid, "closed"))


# -- rendering ---------------------------------------------------------------------------------
def render(rng: random.Random, snap, finished_ids: set) -> int:
    """Every kept exchange as a record; finished ones also exported in every format, and their
    conversation in one; bodies and headers through the redaction helpers. Returns bytes made."""
    made = 0
    secrets = rng.random() < 0.2
    convs = set()
    for xid, v in snap.exchanges.items():
        made += len(orjson.dumps(exchange_record(v, True, secrets)))
        if xid not in finished_ids:
            continue
        x = v.exchange
        for fmt in FORMATS:
            made += len(export_bytes(snap, exchange_id=xid, fmt=fmt, show_secrets=secrets))
        if v.conversation_id is not None:
            convs.add(v.conversation_id)
        made += len(mask_http1_secrets(x.request_body[:4096])) + len(mask_http1_secrets(x.response_body[:4096]))
        made += len(redact_headers(x.response_headers)) + len(redact_target(x.path))
        if x.request is not None:
            made += len(mask_cmdline_arg(x.request.model))
    for cid in convs:
        if cid in snap.conversations:
            made += len(export_bytes(snap, conversation_id=cid, fmt=rng.choice(FORMATS), show_secrets=secrets))
    return made


# -- cases -------------------------------------------------------------------------------------
class FuzzFailure(AssertionError):
    pass


def _check_store(snap) -> None:
    tallies = [snap.total, *snap.by_model.values(), *(p.tally for p in snap.processes),
               *(c.tally for c in snap.conversations.values())]
    if any(t.in_flight for t in tallies):
        raise FuzzFailure(f"calls still in flight after the end: {[t.in_flight for t in tallies]}")


def provider_case(rng: random.Random, calls: list[Call]) -> dict:
    """One case: one to three mutated calls through providers, store, export and redaction."""
    pid = rng.randint(1, 4)
    c = _Case(rng, pid)
    n = rng.choice((1, 1, 1, 2, 3))
    picked = [rng.choice(calls) for _ in range(n)]
    if n > 1 and rng.random() < 0.5:  # the same call again: a retry, or the next turn of its conversation
        picked[1] = _next_turn(picked[0]) if rng.random() < 0.5 else picked[0]
    same_conn = rng.random() < 0.5
    for i, call in enumerate(picked):
        conn = f"{pid}:{(0x1000 if same_conn else 0x1000 + i):x}"
        _call_events(rng, c, call, conn, i + 1 if same_conn else rng.choice((1, 3)))
    small = rng.random() < 0.1
    opts = Options(keep_body=rng.choice((0, 7, 300)) if small else 4 << 20,
                   parse_body=rng.choice((0, 50, 1000)) if small else 64 << 20,
                   live=rng.random() < 0.5, show_secrets=rng.random() < 0.1)
    xt = ExchangeTracker(opts)
    store = Store(max_exchanges=rng.choice((1, 2)), max_body_bytes=rng.choice((0, 500))) if rng.random() < 0.1 \
        else Store()
    if rng.random() < 0.3:
        store.apply([ProcessSeen(T0, ProcessInfo(pid, 1, rng.choice(_COMMS), "/usr/bin/x", ("x", "--key=sk-abc123"),
                                                 1))])
    events = c.events
    out = []
    k = 0
    while k < len(events):  # the protocol layer's output, in a few batches
        step = rng.choice((1, 2, 5, len(events)))
        got = xt.feed_many(events[k : k + step])
        out += got
        store.apply(got)
        k += step
    if rng.random() < 0.3:
        store.apply([ProcessExit(c.ts, pid)])
    got = xt.finish(c.tick())
    out += got
    store.apply(got)
    if xt.internal_errors:
        problems = [e.exchange.problem for e in out if type(e) is ExchangeFinished]
        raise FuzzFailure(f"{xt.internal_errors} internal errors in the provider layer: {problems}")
    finished = {e.exchange.id for e in out if type(e) is ExchangeFinished}
    snap = store.snapshot()
    _check_store(snap)
    made = render(rng, snap, finished)
    return {"exchanges": len(finished), "llm": sum(1 for e in out if type(e) is ExchangeFinished and e.exchange.is_llm),
            "events": len(events), "bytes": made}


# -- the recording-file reader ----------------------------------------------------------------
_FRAMES: list[bytes] | None = None


def _frames() -> list[bytes]:
    """The frames of a real recording's first calls (header first)."""
    global _FRAMES
    if _FRAMES is None:
        reader = RecordingReader(str(GOLDEN))
        events = []
        for ev in reader:
            events.append(ev)
            if len(events) >= 60:
                break
        _FRAMES = [_frame(T_HEADER, orjson.dumps(reader.info.header))] + [encode_event(e) for e in events]
    return _FRAMES


def _mutate_frame(rng: random.Random, frame: bytes) -> bytes:
    """A frame whose payload is wrong but whose checksum is right (so the decoder sees it)."""
    _, _, ftype = FRAME.unpack_from(frame)
    payload = frame[FRAME.size:]
    if rng.random() < 0.1:
        ftype = rng.randrange(256)
    if ftype != T_CHUNK and rng.random() < 0.8:
        payload = mutate_data(rng, payload, _loads(payload))
    elif ftype == T_CHUNK and payload and rng.random() < 0.5:  # odd numbers in the chunk head
        b = bytearray(payload)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(min(len(b), 60))
            b[i] = rng.choice((0, 255, b[i] ^ 0x80))
        payload = bytes(b)
    else:
        payload = mutate_bytes(rng, payload)
    return _frame(ftype, payload)


def recording_case(rng: random.Random, path: str) -> dict:
    frames = list(_frames())
    start = rng.randrange(1, len(frames))
    body = frames[start : start + rng.choice((3, 10, 60))]
    r = rng.random()
    if r < 0.15:
        head = _mutate_frame(rng, frames[0])
    else:
        head = frames[0]
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(body))
        body[i] = _mutate_frame(rng, body[i])
    data = MAGIC + head + b"".join(body)
    if rng.random() < 0.3:
        data = mutate_bytes(rng, data)
    with open(path, "wb") as f:
        f.write(data)
    try:
        reader = RecordingReader(path)
    except UserError:
        return {"exchanges": 0, "llm": 0, "events": 0, "bytes": len(data)}
    events = list(reader)
    if reader.info.problem and not isinstance(reader.info.problem, str):
        raise FuzzFailure(f"recording problem is not text: {reader.info.problem!r}")
    pl = Pipeline(Store())
    views = pl.feed(events) + pl.finish()
    if pl.internal_errors:
        raise FuzzFailure(f"{pl.internal_errors} internal errors replaying a damaged recording")
    snap = pl.store.snapshot()
    made = render(rng, snap, {v.exchange.id for v in views})
    return {"exchanges": len(views), "llm": sum(1 for v in views if v.exchange.is_llm), "events": len(events),
            "bytes": made}


# -- driving -----------------------------------------------------------------------------------
def run_case(seed: int, calls: list[Call] | None = None, path: str | None = None) -> dict:
    """One case, by its seed (what a failure names)."""
    rng = random.Random(seed)
    if rng.random() < 0.02:
        if path is None:
            with tempfile.TemporaryDirectory() as d:
                return recording_case(rng, os.path.join(d, "fuzz.llmspy"))
        return recording_case(rng, path)
    return provider_case(rng, calls if calls is not None else corpus())


def fuzz(cases: int, seed: int = 1) -> dict:
    """Run `cases` cases; raise at the first failure, naming its seed."""
    calls = corpus()
    rng = random.Random(seed)
    stats = {"cases": 0, "exchanges": 0, "llm": 0, "events": 0, "bytes": 0}
    with tempfile.TemporaryDirectory(prefix="llmspy-fuzz-") as d:
        path = os.path.join(d, "fuzz.llmspy")
        for n in range(cases):
            case_seed = rng.getrandbits(64)
            try:
                got = run_case(case_seed, calls, path)
            except Exception as e:
                raise FuzzFailure(f"case {n} (seed {case_seed}): {type(e).__name__}: {e}; "
                                  f"replay it with provider_fuzzing.run_case({case_seed})") from e
            stats["cases"] += 1
            for k in ("exchanges", "llm", "events", "bytes"):
                stats[k] += got[k]
    return stats
