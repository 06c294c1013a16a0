"""Real client: the official OpenAI Python SDK against the loopback server.

    openai_sdk.py --port N --ca CERT [--http2] [--scenario chat|tools|responses|conversation|
                                                 concurrent|error|reasoning|session]
                  [--host NAME --resolve NAME:ADDR] [--plan FILE]

--host names the server in the URL (default localhost), --resolve (as curl's) connects to ADDR
for NAME, so a certificate for NAME on the loopback server looks like the real API. The
`session` scenario runs an agent session from --plan (see scenario_session).

Prints one JSON object: {"scenario", "http2", "calls": [...]}, one entry per API call, in order,
with what the SDK returned: api, model, stream, text, tool_calls, usage, finish_reason,
response_id, status, error.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import threading
import time

import httpx
import openai

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}


def record(api: str, model: str, stream: bool, **fields) -> dict:
    out = {"api": api, "model": model, "stream": stream, "text": "", "tool_calls": [], "usage": None,
           "finish_reason": None, "response_id": None, "status": 200, "error": None}
    out.update(fields)
    return out


def _dump(usage) -> dict | None:
    return usage.model_dump(mode="json") if usage is not None else None


# -- Chat Completions -------------------------------------------------------------------------

def chat(client: openai.OpenAI, model: str, messages: list, **kw) -> dict:
    r = client.chat.completions.create(model=model, messages=messages, **kw)
    msg = r.choices[0].message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
             for c in msg.tool_calls or []]
    return record("chat.completions", model, False, text=msg.content or "", tool_calls=calls,
                  usage=_dump(r.usage), finish_reason=r.choices[0].finish_reason, response_id=r.id)


def chat_stream(client: openai.OpenAI, model: str, messages: list, **kw) -> dict:
    """Stream with include_usage; text and tool calls put together from the deltas."""
    text, calls, usage, finish, rid = [], {}, None, None, None
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True,
                                                stream_options={"include_usage": True}, **kw):
        rid = chunk.id
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            text.append(choice.delta.content or "")
            for tc in choice.delta.tool_calls or []:
                c = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                c["id"] = tc.id or c["id"]
                if tc.function:
                    c["name"] = tc.function.name or c["name"]
                    c["arguments"] += tc.function.arguments or ""
    return record("chat.completions", model, True, text="".join(text), tool_calls=list(calls.values()),
                  usage=_dump(usage), finish_reason=finish, response_id=rid)


def assistant_turn(call: dict) -> dict:
    """The assistant message to send back: its text, or its tool calls."""
    if call["tool_calls"]:
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in call["tool_calls"]]}
    return {"role": "assistant", "content": call["text"]}


# -- Responses --------------------------------------------------------------------------------

def _response_record(r, stream: bool, text: str) -> dict:
    calls = [{"id": i.call_id, "name": i.name, "arguments": i.arguments}
             for i in r.output if i.type == "function_call"]
    return record("responses", r.model, stream, text=text, tool_calls=calls, usage=_dump(r.usage),
                  finish_reason=r.status, response_id=r.id)


def responses(client: openai.OpenAI, **kw) -> dict:
    r = client.responses.create(**kw)
    return _response_record(r, False, r.output_text)


def responses_stream(client: openai.OpenAI, **kw) -> dict:
    """Text from output_text.delta events; the rest from response.completed."""
    text, final = [], None
    for ev in client.responses.create(stream=True, **kw):
        if ev.type == "response.output_text.delta":
            text.append(ev.delta)
        elif ev.type == "response.completed":
            final = ev.response
    return _response_record(final, True, "".join(text))


# -- scenarios --------------------------------------------------------------------------------

def scenario_chat(client: openai.OpenAI) -> list[dict]:
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
    return [chat(client, "gpt-4o-mini", msgs), chat_stream(client, "gpt-4o", msgs)]


def scenario_tools(client: openai.OpenAI) -> list[dict]:
    msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = chat_stream(client, "gpt-4o", msgs, tools=[WEATHER_TOOL])
    msgs += [assistant_turn(first)] + [
        {"role": "tool", "tool_call_id": c["id"], "content": json.dumps({"temp_c": 18, "sky": "clear"})}
        for c in first["tool_calls"]]
    return [first, chat(client, "gpt-4o", msgs, tools=[WEATHER_TOOL])]


def scenario_responses(client: openai.OpenAI) -> list[dict]:
    first = responses_stream(client, model="gpt-4.1", instructions="Answer in one sentence.",
                             input="What does an eBPF monitor see?")
    second = responses(client, model="gpt-4.1", previous_response_id=first["response_id"],
                       input=[{"role": "user", "content": "And what does it not see?"}])
    tool = {"type": "function", "name": "get_weather", "description": "Current weather",
            "parameters": WEATHER_TOOL["function"]["parameters"]}
    third = responses_stream(client, model="gpt-4.1", input="Weather in Oslo?", tools=[tool])
    return [first, second, third]


def scenario_conversation(client: openai.OpenAI) -> list[dict]:
    """Three turns under a long system prompt (over 4096 characters: the server reports cached tokens)."""
    rules = " ".join(f"Rule {i}: answer precisely and cite the packet capture." for i in range(100))
    msgs = [{"role": "system", "content": "You are a helpful assistant. " + rules}]
    calls = []
    for i, (question, streamed) in enumerate([("First question?", False), ("Second question?", True),
                                              ("Third question?", False)]):
        msgs.append({"role": "user", "content": f"{question} (turn {i + 1})"})
        call = (chat_stream if streamed else chat)(client, "gpt-4o-mini", msgs)
        msgs.append(assistant_turn(call))
        calls.append(call)
    return calls


def scenario_concurrent(client: openai.OpenAI) -> list[dict]:
    """Four streams at once; one request first so they all share its (HTTP/2) connection."""
    client.models.list()
    results: list = [None] * 4

    def run(i: int) -> None:
        results[i] = chat_stream(client, "gpt-4o", [{"role": "user", "content": f"parallel stream {i}"}])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def scenario_error(client: openai.OpenAI) -> list[dict]:
    calls = []
    for model in ("gpt-4o-ratelimit", "gpt-4o-overloaded"):
        try:
            chat(client, model, [{"role": "user", "content": "hi"}])
            calls.append(record("chat.completions", model, False, error="no error raised"))
        except openai.APIStatusError as e:
            message = e.body.get("message", e.message) if isinstance(e.body, dict) else e.message
            calls.append(record("chat.completions", model, False, status=e.status_code, error=message,
                                response_id=e.response.headers.get("x-request-id")))
    return calls


def scenario_reasoning(client: openai.OpenAI) -> list[dict]:
    msgs = [{"role": "user", "content": "Prove that there are infinitely many primes."}]
    return [chat(client, "o4-mini", msgs), chat_stream(client, "o4-mini", msgs),
            responses(client, model="o4-mini", input=msgs[0]["content"], reasoning={"effort": "medium"})]


PLAN: dict = {}  # --plan


def scenario_session(client: openai.OpenAI) -> list[dict]:
    """An agent session from --plan: {"system", "tools": [{name, description, parameters}],
    "conversations": [{"model", "system"?, "tools"?: [names], "tool_outputs": [...],
    "turns": [{"user", "stream"?, "pause"?}]}], "parallel"?}. Each turn is a tool-call loop: a
    tool call gets the conversation's next tool output as its result, until a reply has none.
    Conversations run one after another, or all at once with "parallel"."""
    defs = {t["name"]: {"type": "function", "function": t} for t in PLAN.get("tools", [])}

    def run(conv: dict) -> list[dict]:
        tools = [defs[name] for name in conv.get("tools", [])]
        system = conv.get("system", PLAN.get("system"))
        msgs = [{"role": "system", "content": system}] if system else []
        outputs = iter(conv.get("tool_outputs", []))
        calls = []
        for turn in conv["turns"]:
            time.sleep(turn.get("pause", 0))
            msgs.append({"role": "user", "content": turn["user"]})
            while True:
                call = (chat_stream if turn.get("stream") else chat)(
                    client, conv["model"], msgs, **({"tools": tools} if tools else {}))
                calls.append(call)
                msgs.append(assistant_turn(call))
                if not call["tool_calls"]:
                    break
                msgs += [{"role": "tool", "tool_call_id": c["id"], "content": next(outputs)}
                         for c in call["tool_calls"]]
        return calls

    convs = PLAN["conversations"]
    if not PLAN.get("parallel"):
        return [call for conv in convs for call in run(conv)]
    results: list = [None] * len(convs)

    def worker(i: int) -> None:
        results[i] = run(convs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(convs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [call for calls in results for call in calls]


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
    ap.add_argument("--scenario", default="chat", choices=sorted(SCENARIOS))
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--resolve", action="append", default=[], metavar="NAME:ADDR")
    ap.add_argument("--plan")
    args = ap.parse_args()
    if args.plan:
        PLAN.update(json.loads(open(args.plan).read()))
    resolve(args.resolve)
    authority = args.host if args.port == 443 else f"{args.host}:{args.port}"
    with httpx.Client(verify=ssl.create_default_context(cafile=args.ca), http2=args.http2) as http:
        client = openai.OpenAI(base_url=f"https://{authority}/v1",
                               api_key=PLAN.get("api_key", "sk-test-openai-0123456789"),
                               http_client=http, max_retries=PLAN.get("max_retries", 0))
        calls = SCENARIOS[args.scenario](client)
    print(json.dumps({"scenario": args.scenario, "http2": args.http2, "calls": calls}))


if __name__ == "__main__":
    main()
