"""Real client: the official Anthropic Python SDK against the loopback server.

    anthropic_sdk.py --port N --ca CERT [--http2] [--scenario messages|tools|thinking|conversation|
                                                    error|big_system]

Prints one JSON object: {"scenario", "http2", "calls": [...]}, one entry per API call, in order,
with what the SDK returned: api, model, stream, text, thinking, tool_calls, usage, finish_reason
(the stop_reason), response_id, status, error.
"""

from __future__ import annotations

import argparse
import json
import ssl

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


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--http2", action="store_true")
    ap.add_argument("--scenario", default="messages", choices=sorted(SCENARIOS))
    args = ap.parse_args()
    with httpx2.Client(verify=ssl.create_default_context(cafile=args.ca), http2=args.http2) as http:
        client = anthropic.Anthropic(base_url=f"https://localhost:{args.port}", api_key="sk-ant-test-0123456789",
                                     http_client=http, max_retries=0)
        calls = SCENARIOS[args.scenario](client)
    print(json.dumps({"scenario": args.scenario, "http2": args.http2, "calls": calls}))


if __name__ == "__main__":
    main()
