"""Real client: the official Anthropic Python SDK against the loopback server.

    anthropic_sdk.py --port N --ca CERT [--http2] [--scenario messages|tools|thinking|conversation|
                                                    error|big_system|session]
                     [--host NAME --resolve NAME:ADDR] [--plan FILE]

--host names the server in the URL (default localhost), --resolve (as curl's) connects to ADDR
for NAME. The `session` scenario runs an agent session from --plan (see scenario_session).

Prints one JSON object: {"scenario", "http2", "calls": [...]}, one entry per API call, in order,
with what the SDK returned: api, model, stream, text, thinking, tool_calls, usage, finish_reason
(the stop_reason), response_id, status, error.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import time

import anthropic
import httpx2  # this anthropic release is built on httpx2 and refuses httpx objects

MODEL = "claude-sonnet-4-6"
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city",
                "input_schema": {"type": "object", "properties": {
                    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city"]}}


def record(model: str, stream: bool, **fields) -> dict:
    out = {"api": "messages", "model": model, "stream": stream, "text": "", "thinking": "", "tool_calls": [],
           "usage": None, "finish_reason": None, "response_id": None, "status": 200, "error": None}
    out.update(fields)
    return out


def from_message(msg, stream: bool, text: str | None = None) -> dict:
    """A record from a final Message; `text` as streamed, when it was."""
    blocks = msg.content
    calls = [{"id": b.id, "name": b.name, "arguments": json.dumps(b.input)} for b in blocks if b.type == "tool_use"]
    if text is None:
        text = "".join(b.text for b in blocks if b.type == "text")
    return record(msg.model, stream, text=text, thinking="".join(b.thinking for b in blocks if b.type == "thinking"),
                  tool_calls=calls, usage=msg.usage.model_dump(mode="json"), finish_reason=msg.stop_reason,
                  response_id=msg.id)


def create(client: anthropic.Anthropic, **kw) -> dict:
    return from_message(client.messages.create(max_tokens=1024, **kw), False)


def helper_stream(client: anthropic.Anthropic, **kw) -> dict:
    """`messages.stream(...)`: text from text_stream, the rest from the final message."""
    with client.messages.stream(max_tokens=1024, **kw) as s:
        text = "".join(s.text_stream)
        msg = s.get_final_message()
    return from_message(msg, True, text)


def raw_stream(client: anthropic.Anthropic, model: str, **kw) -> dict:
    """`stream=True`: the events as they come, put together by hand."""
    text, thinking, calls, usage, stop, mid = [], [], {}, {}, None, None
    for ev in client.messages.create(model=model, max_tokens=1024, stream=True, **kw):
        if ev.type == "message_start":
            mid, usage = ev.message.id, ev.message.usage.model_dump(mode="json")
        elif ev.type == "content_block_start" and ev.content_block.type == "tool_use":
            calls[ev.index] = {"id": ev.content_block.id, "name": ev.content_block.name, "arguments": ""}
        elif ev.type == "content_block_delta":
            d = ev.delta
            if d.type == "text_delta":
                text.append(d.text)
            elif d.type == "thinking_delta":
                thinking.append(d.thinking)
            elif d.type == "input_json_delta":
                calls[ev.index]["arguments"] += d.partial_json
        elif ev.type == "message_delta":
            stop = ev.delta.stop_reason
            usage.update({k: v for k, v in ev.usage.model_dump(mode="json").items() if v is not None})
    return record(model, True, text="".join(text), thinking="".join(thinking), tool_calls=list(calls.values()),
                  usage=usage, finish_reason=stop, response_id=mid)


def assistant_turn(call: dict) -> dict:
    """The assistant message to send back (thinking blocks left out: no tools with thinking here)."""
    content = [{"type": "text", "text": call["text"]}] if call["text"] else []
    content += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": json.loads(c["arguments"])}
                for c in call["tool_calls"]]
    return {"role": "assistant", "content": content}


# -- scenarios --------------------------------------------------------------------------------

def scenario_messages(client: anthropic.Anthropic) -> list[dict]:
    msgs = [{"role": "user", "content": "Say hello."}]
    return [create(client, model="claude-haiku-4-5", messages=msgs),
            helper_stream(client, model=MODEL, messages=msgs, system="You are terse."),
            raw_stream(client, MODEL, messages=msgs)]


def scenario_tools(client: anthropic.Anthropic) -> list[dict]:
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = helper_stream(client, model=MODEL, messages=msgs, tools=[WEATHER_TOOL])
    msgs += [assistant_turn(first), {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": c["id"], "content": json.dumps({"temp_c": 18})}
        for c in first["tool_calls"]]}]
    return [first, create(client, model=MODEL, messages=msgs, tools=[WEATHER_TOOL])]


def scenario_thinking(client: anthropic.Anthropic) -> list[dict]:
    msgs = [{"role": "user", "content": "Is 1021 prime?"}]
    think = {"type": "enabled", "budget_tokens": 1024}
    return [create(client, model=MODEL, messages=msgs, thinking=think),
            raw_stream(client, MODEL, messages=msgs, thinking=think),
            helper_stream(client, model=MODEL, messages=msgs, thinking=think)]


def scenario_conversation(client: anthropic.Anthropic) -> list[dict]:
    msgs, calls = [], []
    for i, kind in enumerate(("create", "helper", "raw")):
        msgs.append({"role": "user", "content": f"Question number {i + 1}?"})
        if kind == "create":
            call = create(client, model=MODEL, messages=msgs, system="You are helpful.")
        elif kind == "helper":
            call = helper_stream(client, model=MODEL, messages=msgs, system="You are helpful.")
        else:
            call = raw_stream(client, MODEL, messages=msgs, system="You are helpful.")
        msgs.append(assistant_turn(call))
        calls.append(call)
    return calls


def scenario_error(client: anthropic.Anthropic) -> list[dict]:
    calls = []
    for model in ("claude-ratelimit", "claude-overloaded"):
        try:
            create(client, model=model, messages=[{"role": "user", "content": "hi"}])
            calls.append(record(model, False, error="no error raised"))
        except anthropic.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}
            calls.append(record(model, False, status=e.status_code,
                                error=(body.get("error") or {}).get("message", e.message),
                                response_id=body.get("request_id")))
    return calls


def big_system_prompt(size: int = 80 * 1024) -> str:
    line = "Section {n}: the capture shows each request and reply in plaintext, in order.\n"
    out, n = [], 0
    while sum(map(len, out)) < size:
        out.append(line.format(n=n))
        n += 1
    return "".join(out)


def scenario_big_system(client: anthropic.Anthropic) -> list[dict]:
    """An 80 KB system prompt: as a string (cache read), then as a cache_control block (read + write)."""
    system = big_system_prompt()
    msgs = [{"role": "user", "content": "Summarise the sections."}]
    cached = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    return [create(client, model=MODEL, messages=msgs, system=system),
            helper_stream(client, model=MODEL, messages=msgs, system=cached)]


PLAN: dict = {}  # --plan


def scenario_session(client: anthropic.Anthropic) -> list[dict]:
    """An agent session from --plan: {"system", "tools": [{name, description, parameters}],
    "conversations": [{"model", "system"?, "cache_system"?, "thinking"? (budget), "max_tokens"?,
    "tools"?: [names], "tool_outputs": [...], "turns": [{"user", "stream"?, "pause"?}]}]}, one
    conversation after another. Each turn is a tool-use loop: a tool_use gets the conversation's
    next tool output as its tool_result, until a reply has none. Assistant turns go back whole,
    thinking blocks (with their signatures) included, as the API requires with tools."""
    defs = {t["name"]: {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
            for t in PLAN.get("tools", [])}
    calls = []
    for conv in PLAN["conversations"]:
        kw: dict = {"model": conv["model"], "max_tokens": conv.get("max_tokens", 4096)}
        system = conv.get("system", PLAN.get("system"))
        if system:
            kw["system"] = ([{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
                            if conv.get("cache_system") else system)
        if conv.get("tools"):
            kw["tools"] = [defs[name] for name in conv["tools"]]
        if conv.get("thinking"):
            kw["thinking"] = {"type": "enabled", "budget_tokens": conv["thinking"]}
        outputs = iter(conv.get("tool_outputs", []))
        msgs: list = []
        for turn in conv["turns"]:
            time.sleep(turn.get("pause", 0))
            msgs.append({"role": "user", "content": turn["user"]})
            while True:
                if turn.get("stream"):
                    with client.messages.stream(messages=msgs, **kw) as s:
                        text = "".join(s.text_stream)
                        msg = s.get_final_message()
                    call = from_message(msg, True, text)
                else:
                    msg = client.messages.create(messages=msgs, **kw)
                    call = from_message(msg, False)
                calls.append(call)
                msgs.append({"role": "assistant",
                             "content": [b.model_dump(mode="json", exclude_none=True) for b in msg.content]})
                if not call["tool_calls"]:
                    break
                msgs.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": c["id"], "content": next(outputs)}
                    for c in call["tool_calls"]]})
    return calls


def resolve(pairs: list[str]) -> None:
    """Connect to ADDR whenever NAME is looked up (NAME:ADDR pairs, as curl --resolve without a port)."""
    table = dict(p.rsplit(":", 1) for p in pairs)
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        return real(table.get(host, host), *args, **kw)

    socket.getaddrinfo = getaddrinfo


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--http2", action="store_true")
    ap.add_argument("--scenario", default="messages", choices=sorted(SCENARIOS))
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--resolve", action="append", default=[], metavar="NAME:ADDR")
    ap.add_argument("--plan")
    args = ap.parse_args()
    if args.plan:
        PLAN.update(json.loads(open(args.plan).read()))
    resolve(args.resolve)
    authority = args.host if args.port == 443 else f"{args.host}:{args.port}"
    with httpx2.Client(verify=ssl.create_default_context(cafile=args.ca), http2=args.http2) as http:
        client = anthropic.Anthropic(base_url=f"https://{authority}",
                                     api_key=PLAN.get("api_key", "sk-ant-test-0123456789"),
                                     http_client=http, max_retries=PLAN.get("max_retries", 0))
        calls = SCENARIOS[args.scenario](client)
    print(json.dumps({"scenario": args.scenario, "http2": args.http2, "calls": calls}))


if __name__ == "__main__":
    main()
