"""Responses in the providers' real wire formats, for the loopback test server.

Deterministic: the same request gives the same bytes, so recordings are reproducible.
Each provider function takes the decoded request and returns (content-type, body parts); a
streamed reply has one part per SSE event (or per piece of a streamed JSON array), as the
server sends one part per chunk or DATA frame.

What a request gets:
- tools, and no tool result yet in the last turn: a tool call to the first tool, with arguments
  built from its parameter names;
- OpenAI o-series / gpt-5 models, Gemini 2.5 / 3 models: reasoning (thoughts) tokens;
- prompt text over 4096 characters: cached input tokens (Anthropic: the system prompt; a system
  block with cache_control also reports cache creation);
- Anthropic `thinking: {type: enabled}`: a thinking block before the text;
- a model name with "ratelimit": 429, with "overloaded": 529 (Anthropic) or 503; each with the
  provider's own error body.

A script (`load_script`, tls_server.py --script FILE) replaces the generated replies of the
requests it names, so a recording can read like a real session: a JSON list of rules, the
first whose `match` (plain text) occurs in the request's last turn (a message, a Gemini
content, the Responses input; as JSON) gives the reply: `text`, `thinking` (Anthropic), a
`tool` call ({"name", "arguments"}) or an `error` ("ratelimit" or "overloaded"). A rule with
`once` answers its first match only. Without a script nothing changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from pathlib import Path

WORDS = (
    "the monitor sees plaintext before encryption and after decryption so every prompt "
    "and every streamed token is visible without a proxy or a certificate"
).split()
CREATED = 1763769600
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"
CACHE_CHARS = 4096  # prompts longer than this report cached tokens


# -- script (optional) ------------------------------------------------------------------------

SCRIPT: list[dict] = []
_SPENT: set[int] = set()  # `once` rules already used
_SCRIPT_LOCK = threading.Lock()


def load_script(path) -> None:
    SCRIPT[:] = json.loads(Path(path).read_text())
    _SPENT.clear()


def _last_turn(req: dict):
    """The request's last turn, whatever the API: a message, a Gemini content, the Responses input."""
    for key in ("messages", "contents", "input"):
        value = req.get(key)
        if isinstance(value, list) and value:
            return value[-1]
    return req.get("input") or req.get("message")


def scripted(req: dict) -> dict | None:
    """The script's rule for this request, if any (a `once` rule is used up)."""
    if not SCRIPT:
        return None
    turn = json.dumps(_last_turn(req), ensure_ascii=False)
    with _SCRIPT_LOCK:
        for i, rule in enumerate(SCRIPT):
            if i not in _SPENT and rule["match"] in turn:
                if rule.get("once"):
                    _SPENT.add(i)
                return rule
    return None


def _scripted_tool(rule: dict | None) -> tuple[str, dict] | None:
    tool = (rule or {}).get("tool")
    return (tool["name"], tool.get("arguments") or {}) if tool else None


def _out_tokens(text: str) -> int:
    """Tokens of a scripted reply, about four characters each."""
    return max(1, round(len(text) / 4))


# -- shared helpers ---------------------------------------------------------------------------

def _text(seed: bytes, n_words: int) -> str:
    h = hashlib.sha256(seed).digest()
    return " ".join(WORDS[(h[i % len(h)] + i) % len(WORDS)] for i in range(n_words))


def _seed(*parts) -> bytes:
    return json.dumps(parts, sort_keys=True).encode()


def _hex(seed: bytes, n: int) -> str:
    out = hashlib.sha256(seed).hexdigest()
    while len(out) < n:
        out += hashlib.sha256(out.encode()).hexdigest()
    return out[:n]


def _alnum(seed: bytes, n: int) -> str:
    """Base62-looking id characters, as in `call_...` and `toolu_01...` ids."""
    raw = base64.b64encode(hashlib.sha512(seed).digest()).decode()
    return re.sub(r"[^A-Za-z0-9]", "x", raw)[:n]


def _words(text: str) -> list[str]:
    """Stream pieces of a text, one word each, with the space in front as tokenizers do."""
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))] if text else []


def _split(s: str, n: int) -> list[str]:
    """`s` in `n` (or fewer) consecutive non-empty pieces."""
    size = max(1, -(-len(s) // n))
    return [s[i : i + size] for i in range(0, len(s), size)]


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {_dumps(data)}\n\n".encode()


def _tokens(chars: int, base: int = 17) -> int:
    return base + chars // 4


def _cached(prompt_chars: int, prompt_tokens: int) -> int:
    """Cached prompt tokens in whole 1024-token blocks, for prompts over CACHE_CHARS."""
    if prompt_chars <= CACHE_CHARS:
        return 0
    return max(1024, prompt_tokens // 1024 * 1024) if prompt_tokens > 1024 else prompt_tokens // 2


def _first_tool(tools) -> tuple[str, dict] | None:
    """(name, JSON schema) of the first function tool, in any provider's tool format."""
    for t in tools or []:
        if not isinstance(t, dict):
            continue
        decls = t.get("functionDeclarations") or t.get("function_declarations")
        if decls:
            d = decls[0]
            return d.get("name", "tool"), d.get("parameters") or d.get("parametersJsonSchema") or {}
        fn = t["function"] if isinstance(t.get("function"), dict) else t
        if fn.get("name"):
            return fn["name"], fn.get("parameters") or fn.get("input_schema") or {}
    return None


def tool_arguments(schema: dict, seed: bytes) -> dict:
    """Plausible arguments for a JSON schema: one value per property, by its type."""
    props = (schema or {}).get("properties") or {}
    words = _text(seed, max(1, len(props))).split()
    out = {}
    for i, (name, spec) in enumerate(props.items()):
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "string")
        kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
        kind = str(kind).lower()
        if spec.get("enum"):
            out[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            out[name] = 3 + (seed[i % len(seed)] if seed else 0) % 20
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = [words[i]]
        elif kind == "object":
            out[name] = {}
        else:
            out[name] = words[i]
    return out


def _is_reasoning_openai(model: str) -> bool:
    name = model.rpartition("/")[2]
    return bool(re.match(r"o\d", name)) or name.startswith("gpt-5")


def _reasoning_tokens(seed: bytes) -> int:
    return 64 * (2 + hashlib.sha256(seed).digest()[0] % 6)


# -- errors -----------------------------------------------------------------------------------

def request_id(method: str, path: str, body: bytes) -> str:
    """The id the server gives a request (headers, and Anthropic's error bodies): from its bytes."""
    return hashlib.sha256(method.encode() + path.encode() + body).hexdigest()[:32]


def error_reply(provider: str, model: str, rid: str = "", kind: str | None = None) -> tuple[int, bytes] | None:
    """(status, body) for a model name asking for an error (or an error `kind` a script asks for),
    in the provider's own error format."""
    model = model or ""
    if kind in ("ratelimit", "overloaded"):
        pass
    elif "ratelimit" in model:
        kind = "ratelimit"
    elif "overloaded" in model:
        kind = "overloaded"
    else:
        return None
    if provider == "anthropic":
        err = (("rate_limit_error", ("This request would exceed the rate limit for your organization of "
                                     "50 requests per minute. For details, refer to: "
                                     "https://docs.claude.com/en/api/rate-limits."))
               if kind == "ratelimit" else ("overloaded_error", "Overloaded"))
        body = {"type": "error", "error": {"type": err[0], "message": err[1]},
                "request_id": f"req_011{rid[:24]}"}
        return (429 if kind == "ratelimit" else 529), _dumps(body).encode()
    if provider == "gemini":
        err = ((429, "You exceeded your current quota, please check your plan and billing details.",
                "RESOURCE_EXHAUSTED") if kind == "ratelimit"
               else (503, "The model is overloaded. Please try again later.", "UNAVAILABLE"))
        body = {"error": {"code": err[0], "message": err[1], "status": err[2]}}
        return err[0], (json.dumps(body, indent=2) + "\n").encode()
    if provider == "cohere":
        msg = ("You are using a Trial key, which is limited to 20 API calls / minute."
               if kind == "ratelimit" else "The model is overloaded, please try again later.")
        return (429 if kind == "ratelimit" else 503), _dumps({"id": str(_uuid(model.encode())),
                                                              "message": msg}).encode()
    if kind == "ratelimit":
        body = {"error": {"message": f"Rate limit reached for {model} in organization org-loopback on "
                          "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                          "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
        return 429, _dumps(body).encode()
    body = {"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error",
                      "param": None, "code": None}}
    return 503, _dumps(body).encode()


# -- OpenAI Chat Completions ------------------------------------------------------------------

def _content_chars(messages) -> int:
    total = 0
    for m in messages or []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            total += len(c)
        elif isinstance(c, list):
            total += sum(len(p.get("text", "")) for p in c if isinstance(p, dict))
    return total


def _chat_usage(req: dict, seed: bytes, out_tokens: int) -> dict:
    model = req.get("model", "")
    prompt = _tokens(len(seed))
    reasoning = _reasoning_tokens(seed) if _is_reasoning_openai(model) else 0
    completion = out_tokens + reasoning
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": _cached(_content_chars(req.get("messages")), prompt),
                                      "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _chat_tool_call(req: dict, seed: bytes) -> dict | None:
    """The tool call to make: when tools are offered and the last message is not a tool result."""
    tool = _first_tool(req.get("tools"))
    messages = req.get("messages") or [{}]
    if tool is None or (isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
        return None
    args = _dumps(tool_arguments(tool[1], seed))
    return {"id": "call_" + _alnum(seed + b"call", 24), "type": "function",
            "function": {"name": tool[0], "arguments": args}}


def openai_chat(req: dict, rule: dict | None = None) -> tuple[str, list[bytes]]:
    """(content-type, body parts). Streaming replies are SSE `data:` events ending with [DONE]."""
    model = req.get("model", "gpt-4o-mini")
    seed = json.dumps(req.get("messages", []), sort_keys=True).encode()
    if rule:
        tool = _scripted_tool(rule)
        call = tool and {"id": "call_" + _alnum(seed + b"call", 24), "type": "function",
                         "function": {"name": tool[0], "arguments": _dumps(tool[1])}}
        text = "" if call else rule.get("text", "")
    else:
        call = _chat_tool_call(req, seed)
        text = "" if call else _text(seed, 24)
    out_tokens = 9 + len(call["function"]["arguments"]) // 3 if call else _out_tokens(text) if rule else 24
    usage = _chat_usage(req, seed, out_tokens)
    cid = "chatcmpl-" + hashlib.sha1(seed).hexdigest()[:24]
    finish = "tool_calls" if call else "stop"
    base = {"id": cid, "created": CREATED, "model": model + "-2024-07-18", "service_tier": "default",
            "system_fingerprint": "fp_loopback"}
    if not req.get("stream"):
        message = {"role": "assistant", "content": text or None, "refusal": None, "annotations": []}
        if call:
            message["tool_calls"] = [call]
        body = {"id": cid, "object": "chat.completion", **base, "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage}
        return JSON, [_dumps(body).encode()]
    with_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    base = {"id": cid, "object": "chat.completion.chunk", **base}

    def chunk(delta: dict, finish_reason=None) -> bytes:
        ev = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        if with_usage:
            ev["usage"] = None
        return b"data: " + _dumps(ev).encode() + b"\n\n"

    if call:
        fn = call["function"]
        parts = [chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": ""}}],
            "refusal": None})]
        parts += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                  for piece in _split(fn["arguments"], 6)]
    else:
        parts = [chunk({"role": "assistant", "content": "", "refusal": None})]
        parts += [chunk({"content": piece}) for piece in _words(text)]
    parts.append(chunk({}, finish))
    if with_usage:
        parts.append(b"data: " + _dumps(dict(base, choices=[], usage=usage)).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return SSE, parts


# -- OpenAI Responses -------------------------------------------------------------------------

def _response_items(req: dict) -> list:
    inp = req.get("input", [])
    return [{"role": "user", "content": inp}] if isinstance(inp, str) else list(inp or [])


def _response_output(req: dict, seed: bytes, rule: dict | None = None) -> list[dict]:
    """Output items, completed: reasoning (o-series), then a function call or a message."""
    items = []
    if _is_reasoning_openai(req.get("model", "")):
        items.append({"id": "rs_" + _hex(seed + b"rs", 48), "type": "reasoning", "summary": []})
    if rule:
        call = _scripted_tool(rule)
    else:
        tool = _first_tool(req.get("tools"))
        answered = any(isinstance(i, dict) and i.get("type") == "function_call_output"
                       for i in _response_items(req))
        call = (tool[0], tool_arguments(tool[1], seed)) if tool and not answered else None
    if call:
        items.append({"id": "fc_" + _hex(seed + b"fc", 48), "type": "function_call", "status": "completed",
                      "arguments": _dumps(call[1]),
                      "call_id": "call_" + _alnum(seed + b"call", 24), "name": call[0]})
    else:
        items.append({"id": "msg_" + _hex(seed + b"msg", 48), "type": "message", "status": "completed",
                      "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                   "text": rule.get("text", "") if rule else _text(seed, 24)}],
                      "role": "assistant"})
    return items


def _response_usage(req: dict, seed: bytes, output: list[dict]) -> dict:
    inp = _tokens(len(seed))
    reasoning = _reasoning_tokens(seed) if any(i["type"] == "reasoning" for i in output) else 0
    out = reasoning
    for item in output:
        if item["type"] == "message":
            out += len(item["content"][0]["text"].split(" "))
        elif item["type"] == "function_call":
            out += 9 + len(item["arguments"]) // 3
    chars = len(req.get("instructions") or "") + len(_dumps(req.get("input", "")))
    return {"input_tokens": inp, "input_tokens_details": {"cached_tokens": _cached(chars, inp)},
            "output_tokens": out, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out}


def _response_object(req: dict, rid: str, status: str, output: list, usage: dict | None) -> dict:
    reasoning = {"effort": "medium", "summary": None} if _is_reasoning_openai(req.get("model", "")) \
        else {"effort": None, "summary": None}
    return {
        "id": rid, "object": "response", "created_at": CREATED, "status": status, "background": False,
        "error": None, "incomplete_details": None, "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"), "max_tool_calls": None,
        "model": req.get("model", "gpt-4o") + "-2024-08-06", "output": output,
        "parallel_tool_calls": True, "previous_response_id": req.get("previous_response_id"),
        "prompt_cache_key": None, "reasoning": reasoning, "safety_identifier": None,
        "service_tier": "default", "store": req.get("store", True), "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": req.get("tool_choice", "auto"), "tools": req.get("tools", []), "top_logprobs": 0,
        "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None, "metadata": {},
    }


def _obfuscation(seed: bytes, delta: str) -> str:
    return _alnum(seed + delta.encode(), max(2, 16 - len(delta)))


def _stream_item(item: dict, index: int, ev, seed: bytes) -> None:
    """The events of one output item, from added to done."""
    if item["type"] == "message":
        part = item["content"][0]
        ev("response.output_item.added", output_index=index, item=dict(item, status="in_progress", content=[]))
        loc = {"item_id": item["id"], "output_index": index, "content_index": 0}
        ev("response.content_part.added", **loc, part=dict(part, text=""))
        for piece in _words(part["text"]):
            ev("response.output_text.delta", **loc, delta=piece, logprobs=[],
               obfuscation=_obfuscation(seed, piece))
        ev("response.output_text.done", **loc, text=part["text"], logprobs=[])
        ev("response.content_part.done", **loc, part=part)
    elif item["type"] == "function_call":
        ev("response.output_item.added", output_index=index,
           item=dict(item, status="in_progress", arguments=""))
        for piece in _split(item["arguments"], 6):
            ev("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece,
               obfuscation=_obfuscation(seed, piece))
        ev("response.function_call_arguments.done", item_id=item["id"], output_index=index,
           name=item["name"], arguments=item["arguments"])
    else:
        ev("response.output_item.added", output_index=index, item=item)
    ev("response.output_item.done", output_index=index, item=item)


def openai_responses(req: dict, rule: dict | None = None) -> tuple[str, list[bytes]]:
    """The Responses API: one `response` object, or its SSE event sequence."""
    seed = _seed(req.get("instructions"), req.get("input"), req.get("previous_response_id"))
    rid = "resp_" + _hex(seed + b"resp", 48)
    output = _response_output(req, seed, rule)
    usage = _response_usage(req, seed, output)
    done = _response_object(req, rid, "completed", output, usage)
    if not req.get("stream"):
        return JSON, [_dumps(done).encode()]
    parts: list[bytes] = []

    def ev(kind: str, **fields) -> None:
        parts.append(_sse({"type": kind, "sequence_number": len(parts), **fields}, kind))

    ev("response.created", response=_response_object(req, rid, "in_progress", [], None))
    ev("response.in_progress", response=_response_object(req, rid, "in_progress", [], None))
    for index, item in enumerate(output):
        _stream_item(item, index, ev, seed)
    ev("response.completed", response=done)
    return SSE, parts


# -- Anthropic Messages -----------------------------------------------------------------------

def _system_blocks(req: dict) -> list[dict]:
    system = req.get("system") or []
    return [{"type": "text", "text": system}] if isinstance(system, str) else list(system)


def _anthropic_usage(req: dict, seed: bytes) -> dict:
    """Input side of the usage: uncached input, cache reads (long system) and writes (cache_control)."""
    blocks = _system_blocks(req)
    chars = sum(len(b.get("text", "")) for b in blocks if isinstance(b, dict))
    marked = [b for b in blocks if isinstance(b, dict) and b.get("cache_control")]
    sys_tokens = chars // 4
    read = sys_tokens if chars > CACHE_CHARS else 0
    created = 0
    if marked:
        created = sys_tokens - sys_tokens * 3 // 4 if read else sys_tokens
        read = read * 3 // 4
    one_hour = any(b["cache_control"].get("ttl") == "1h" for b in marked)
    return {"input_tokens": 21 + len(seed) // 4, "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": 0 if one_hour else created,
                               "ephemeral_1h_input_tokens": created if one_hour else 0}}


def _anthropic_blocks(req: dict, seed: bytes, rule: dict | None = None) -> list[dict]:
    """Content blocks of the reply: thinking (if enabled), text, tool_use (tools, no result yet)."""
    blocks = []
    if (req.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        sig = base64.b64encode(hashlib.sha512(seed).digest() * 3).decode()
        thinking = (rule or {}).get("thinking") or _text(seed + b"thinking", 30)
        blocks.append({"type": "thinking", "thinking": thinking, "signature": sig})
    if rule:
        tool = _scripted_tool(rule)
        if rule.get("text") or not tool:
            blocks.append({"type": "text", "text": rule.get("text", "")})
        if tool:
            blocks.append({"type": "tool_use", "id": "toolu_01" + _alnum(seed + b"toolu", 22), "name": tool[0],
                           "input": tool[1]})
        return blocks
    tool = _first_tool(req.get("tools"))
    last = (req.get("messages") or [{}])[-1]
    content = last.get("content") if isinstance(last, dict) else None
    answered = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    if tool and not answered:
        blocks.append({"type": "text", "text": _text(seed + b"preface", 8)})
        blocks.append({"type": "tool_use", "id": "toolu_01" + _alnum(seed + b"toolu", 22), "name": tool[0],
                       "input": tool_arguments(tool[1], seed)})
    else:
        blocks.append({"type": "text", "text": _text(seed, 20)})
    return blocks


def _block_tokens(block: dict) -> int:
    if block["type"] == "tool_use":
        return 12 + len(json.dumps(block["input"])) // 3
    return len(block.get("text", block.get("thinking", "")).split(" "))


def _block_events(index: int, block: dict, ev) -> None:
    """content_block_start, its deltas, content_block_stop."""
    kind = block["type"]
    if kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        pieces = _split(block["thinking"], max(4, len(block["thinking"]) // 80))
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        start = dict(block, input={})
        deltas = [{"type": "input_json_delta", "partial_json": p}
                  for p in ["", *_split(json.dumps(block["input"]), 5)]]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _words(block["text"])]
    ev("content_block_start", index=index, content_block=start)
    if index == 0:
        ev("ping")
    for d in deltas:
        ev("content_block_delta", index=index, delta=d)
    ev("content_block_stop", index=index)


def anthropic_messages(req: dict, rule: dict | None = None) -> tuple[str, list[bytes]]:
    model = req.get("model", "claude-3-5-haiku-20241022")
    seed = json.dumps(req.get("messages", []), sort_keys=True).encode()
    mid = "msg_" + hashlib.sha1(seed).hexdigest()[:24]
    blocks = _anthropic_blocks(req, seed, rule)
    stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
    usage_in = _anthropic_usage(req, seed)
    out_tokens = sum(_block_tokens(b) for b in blocks)
    if not req.get("stream"):
        body = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": blocks,
                "stop_reason": stop, "stop_sequence": None,
                "usage": {**usage_in, "output_tokens": out_tokens, "service_tier": "standard"}}
        return JSON, [_dumps(body).encode()]
    parts: list[bytes] = []

    def ev(name: str, **fields) -> None:
        parts.append(f"event: {name}\ndata: {_dumps({'type': name, **fields})}\n\n".encode())

    ev("message_start", message={
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {**usage_in, "output_tokens": 1, "service_tier": "standard"}})
    for index, block in enumerate(blocks):
        _block_events(index, block, ev)
    final = {k: usage_in[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
    ev("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
       usage={**final, "output_tokens": out_tokens})
    ev("message_stop")
    return SSE, parts


# -- Google Gemini ----------------------------------------------------------------------------

def _gemini_thinks(model: str, req: dict) -> bool:
    budget = ((req.get("generationConfig") or {}).get("thinkingConfig") or {}).get("thinkingBudget")
    return ("2.5" in model or "gemini-3" in model) and budget != 0


def _gemini_parts(req: dict, seed: bytes, model: str, rule: dict | None = None) -> list[dict]:
    """A functionCall part (tools, no functionResponse in the last turn) or text."""
    if rule:
        tool = _scripted_tool(rule)
        if not tool:
            return [{"text": rule.get("text", "")}]
        part = {"functionCall": {"name": tool[0], "args": tool[1]}}
        if _gemini_thinks(model, req):
            part["thoughtSignature"] = base64.b64encode(hashlib.sha256(seed).digest() * 2).decode()
        return [part]
    tool = _first_tool(req.get("tools"))
    last = (req.get("contents") or [{}])[-1]
    answered = isinstance(last, dict) and any(
        isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in last.get("parts", []))
    if tool and not answered:
        part = {"functionCall": {"name": tool[0], "args": tool_arguments(tool[1], seed)}}
        if _gemini_thinks(model, req):
            part["thoughtSignature"] = base64.b64encode(hashlib.sha256(seed).digest() * 2).decode()
        return [part]
    return [{"text": _text(seed, 30)}]


def _gemini_usage(req: dict, seed: bytes, model: str, out_tokens: int) -> dict:
    prompt = _tokens(len(seed), base=4)
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": out_tokens}
    thoughts = _reasoning_tokens(seed) + 13 if _gemini_thinks(model, req) else 0
    usage["totalTokenCount"] = prompt + out_tokens + thoughts
    cached = _cached(len(seed), prompt)
    if cached or req.get("cachedContent"):
        usage["cachedContentTokenCount"] = cached or prompt // 2
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if "cachedContentTokenCount" in usage:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["cachedContentTokenCount"]}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _gemini_chunk(parts: list[dict], usage: dict, model: str, rid: str, final: bool) -> dict:
    cand = {"content": {"parts": parts, "role": "model"}}
    if final:
        cand["finishReason"] = "STOP"
    cand["index"] = 0
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": rid}


def gemini(req: dict, model: str, stream: bool, sse: bool, rule: dict | None = None) -> tuple[str, list[bytes]]:
    """generateContent (pretty JSON), streamGenerateContent as SSE (alt=sse) or as a JSON array."""
    seed = _seed(req.get("contents"), req.get("systemInstruction"))
    rid = base64.urlsafe_b64encode(hashlib.sha256(seed + b"gemini").digest()[:16]).decode().rstrip("=")
    parts = _gemini_parts(req, seed, model, rule)
    total_out = len(parts[0]["text"].split(" ")) if "text" in parts[0] else 12
    if not stream:
        body = _gemini_chunk(parts, _gemini_usage(req, seed, model, total_out), model, rid, True)
        return "application/json; charset=UTF-8", [(json.dumps(body, indent=2) + "\n").encode()]
    if "text" in parts[0]:
        words = parts[0]["text"].split(" ")
        groups = [" ".join(words[i : i + 8]) + (" " if i + 8 < len(words) else "") for i in range(0, len(words), 8)]
        pieces = [[{"text": g}] for g in groups]
    else:
        pieces = [parts]
    chunks, done = [], 0
    for i, piece in enumerate(pieces):
        done += len(piece[0]["text"].split()) if "text" in piece[0] else total_out
        final = i == len(pieces) - 1
        chunks.append(_gemini_chunk(piece, _gemini_usage(req, seed, model, done), model, rid, final))
    if sse:
        return "text/event-stream", [
            f"data: {json.dumps(c, separators=(',', ': '))}\r\n\r\n".encode() for c in chunks]
    out = [("[" if i == 0 else ",\r\n") + json.dumps(c, indent=2) + "\n" for i, c in enumerate(chunks)]
    return "application/json; charset=UTF-8", [p.encode() for p in out] + [b"]"]


# -- Cohere chat v2 ---------------------------------------------------------------------------

def _uuid(seed: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.sha256(seed).digest()[:16], version=4)


def _cohere_usage(seed: bytes, out_tokens: int) -> dict:
    billed = _tokens(len(seed), base=3)
    return {"billed_units": {"input_tokens": billed, "output_tokens": out_tokens},
            "tokens": {"input_tokens": billed + 66, "output_tokens": out_tokens + 2}, "cached_tokens": 0}


def _cohere_tool_call(req: dict, seed: bytes) -> tuple[str, dict] | None:
    """(tool_plan, tool_call) when tools are offered and the last message is not a tool result."""
    tool = _first_tool(req.get("tools"))
    last = (req.get("messages") or [{}])[-1]
    if tool is None or (isinstance(last, dict) and last.get("role") == "tool"):
        return None
    args = json.dumps(tool_arguments(tool[1], seed))
    call = {"id": f"{tool[0]}_{_alnum(seed + b'cohere', 12).lower()}", "type": "function",
            "function": {"name": tool[0], "arguments": args}}
    return f"I will use {tool[0]} to {_text(seed, 6)}.", call


def cohere_chat(req: dict, rule: dict | None = None) -> tuple[str, list[bytes]]:
    """POST /v2/chat: a chat response, or its SSE events (message-start ... message-end).
    (A script's rule gives the text only.)"""
    seed = _seed(req.get("messages"))
    cid = str(_uuid(seed))
    tool = None if rule else _cohere_tool_call(req, seed)
    text = rule.get("text", "") if rule else "" if tool else _text(seed, 24)
    out_tokens = 9 + len(tool[1]["function"]["arguments"]) // 3 if tool else _out_tokens(text) if rule else 24
    finish = "TOOL_CALL" if tool else "COMPLETE"
    usage = _cohere_usage(seed, out_tokens)
    if not req.get("stream"):
        msg = ({"role": "assistant", "tool_plan": tool[0], "tool_calls": [tool[1]]} if tool
               else {"role": "assistant", "content": [{"type": "text", "text": text}]})
        return JSON, [_dumps({"id": cid, "message": msg, "finish_reason": finish, "usage": usage}).encode()]
    parts: list[bytes] = []

    def ev(kind: str, **fields) -> None:
        parts.append(_sse({"type": kind, **fields}, kind))

    ev("message-start", id=cid, delta={"message": {"role": "assistant", "content": [], "tool_plan": "",
                                                   "tool_calls": [], "citations": []}})
    if tool:
        for piece in _words(tool[0]):
            ev("tool-plan-delta", delta={"message": {"tool_plan": piece}})
        call = tool[1]
        ev("tool-call-start", index=0, delta={"message": {"tool_calls": {
            "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}}})
        for piece in _split(call["function"]["arguments"], 5):
            ev("tool-call-delta", index=0, delta={"message": {"tool_calls": {"function": {"arguments": piece}}}})
        ev("tool-call-end", index=0)
    else:
        ev("content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}})
        for piece in _words(text):
            ev("content-delta", index=0, delta={"message": {"content": {"text": piece}}})
        ev("content-end", index=0)
    ev("message-end", delta={"finish_reason": finish, "usage": usage})
    return SSE, parts


# -- routing ----------------------------------------------------------------------------------

GEMINI_ROUTE = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")


def bulk_body(size: int, seed: bytes = b"") -> bytes:
    """A JSON document of exactly `size` bytes (size >= 32) with varied content."""
    prefix = b'{"object":"bulk","data":"'
    suffix = b'"}'
    fill = size - len(prefix) - len(suffix)
    block = hashlib.sha256(seed).hexdigest().encode() * 2
    out = bytearray()
    i = 0
    while len(out) < fill:
        out += hashlib.sha256(block + i.to_bytes(4, "little")).hexdigest().encode()
        i += 1
    return prefix + bytes(out[:fill]) + suffix


def _query(query: str) -> dict:
    return dict(p.partition("=")[::2] for p in query.split("&") if p)


def _provider_reply(route: str, query: str, req: dict, rid: str) -> tuple[int, str, list[bytes]] | None:
    """Dispatch an LLM API route; None when no provider serves it."""
    gem = GEMINI_ROUTE.search(route)
    if gem:
        provider, model = "gemini", gem.group(1)
    elif route.endswith(("/chat/completions", "/responses")):
        provider, model = "openai", req.get("model") or _azure_deployment(route)
    elif route.endswith("/v1/messages"):
        provider, model = "anthropic", req.get("model", "")
    elif route.endswith("/v2/chat"):
        provider, model = "cohere", req.get("model", "")
    else:
        return None
    rule = scripted(req)
    err = error_reply(provider, model, rid, (rule or {}).get("error"))
    if err:
        ctype = "application/json; charset=UTF-8" if provider == "gemini" else JSON
        return err[0], ctype, [err[1]]
    if gem:
        ctype, parts = gemini(req, model, gem.group(2) == "streamGenerateContent", _query(query).get("alt") == "sse",
                              rule)
    elif route.endswith("/chat/completions"):
        ctype, parts = openai_chat(dict(req, model=model) if model else req, rule)
    elif route.endswith("/responses"):
        ctype, parts = openai_responses(req, rule)
    elif provider == "anthropic":
        ctype, parts = anthropic_messages(req, rule)
    else:
        ctype, parts = cohere_chat(req, rule)
    return 200, ctype, parts


def _azure_deployment(route: str) -> str:
    m = re.search(r"/deployments/([^/]+)/", route)
    return m.group(1) if m else ""


def respond(method: str, path: str, body: bytes) -> tuple[int, str, list[bytes]]:
    """Route a request: (status, content-type, body parts)."""
    route, _, query = path.partition("?")
    if route == "/bulk":
        size = max(32, int(_query(query).get("size", "65536")))
        return 200, JSON, [bulk_body(size, body[:4096])]
    if route.endswith("/v1/models"):
        models = [{"id": m, "object": "model", "created": CREATED, "owned_by": "loopback"}
                  for m in ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022")]
        return 200, JSON, [json.dumps({"object": "list", "data": models}).encode()]
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        return 400, JSON, [b'{"error":{"message":"invalid JSON body","type":"invalid_request_error"}}']
    if not isinstance(req, dict):
        req = {}
    reply = _provider_reply(route, query, req, request_id(method, path, body))
    if reply is None:
        return 404, JSON, [b'{"error":{"message":"unknown route","type":"not_found"}}']
    return reply
