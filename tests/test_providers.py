"""Provider layer on captured wire bytes: every API, streamed and not, errors, tools, usage, cost.

Payloads are written here in each provider's documented wire shape (independent of the loopback
server's generator), sent through the real protocol layer as HTTP/1.1 or HTTP/2.
"""

from __future__ import annotations

import json

import pytest

from support import wire
from support.llm_wire import exchanges, finished, h1_call, one, sse_parts

CHAT = "/v1/chat/completions"


def openai_chunk(delta: dict, finish=None, usage=None, model="gpt-4o-mini-2024-07-18") -> dict:
    d = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage is not None:
        d["choices"] = []
        d["usage"] = usage
    return d


# -- OpenAI Chat Completions ----------------------------------------------------------------------
def test_openai_chat_stream_with_usage_and_split_anywhere():
    req = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
           "temperature": 0.2, "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Say hi"}]}
    usage = {"prompt_tokens": 1200, "completion_tokens": 3, "total_tokens": 1203,
             "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
    parts = sse_parts([(None, openai_chunk({"role": "assistant", "content": ""})),
                       (None, openai_chunk({"content": "Hi"})), (None, openai_chunk({"content": " there"})),
                       (None, openai_chunk({}, finish="stop")), (None, openai_chunk({}, usage=usage)),
                       (None, "[DONE]")])
    conv = h1_call(CHAT, req, parts, ctype="text/event-stream")
    x = one(conv)
    assert (x.provider, x.api, x.model, x.status, x.http_version) == ("openai", "openai.chat", "gpt-4o-mini", 200, "1.1")
    assert x.request.system == "Be brief." and [(m.role, m.text) for m in x.request.messages] == [("user", "Say hi")]
    assert x.request.params == {"temperature": 0.2}
    assert x.response.text == "Hi there" and x.response.finish_reason == "stop"
    assert x.response.response_model == "gpt-4o-mini-2024-07-18"
    assert x.usage.to_json() == {"input_tokens": 1200, "output_tokens": 3, "cache_read_tokens": 1024,
                                 "cache_write_tokens": None, "reasoning_tokens": 0, "source": "reported"}
    # 176 uncached + 1024 cached input tokens and 3 output tokens at gpt-4o-mini's price
    assert x.cost_usd == pytest.approx(176 * 0.15e-6 + 1024 * 0.075e-6 + 3 * 0.6e-6)
    assert x.complete and not x.problem
    assert x.timing.ttft_ms is not None and x.timing.duration_ms >= x.timing.ttft_ms
    # the same bytes cut anywhere give the same exchange
    raw = b"".join(d for _, d in conv)
    for cut in range(1, len(raw), 97):
        y = one(conv, splits=lambda _d, data, c=cut: [c % max(1, len(data))])
        assert (y.response.text, y.usage, y.cost_usd) == (x.response.text, x.usage, x.cost_usd)


def test_openai_chat_stream_tool_call_deltas():
    req = {"model": "gpt-4o", "stream": True,
           "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
           "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    parts = sse_parts([
        (None, openai_chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})),
        (None, openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]})),
        (None, openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]})),
        (None, openai_chunk({}, finish="tool_calls")), (None, "[DONE]")])
    x = one(h1_call(CHAT, req, parts, ctype="text/event-stream"))
    assert x.request.tools == ("get_weather",)
    assert [(c.id, c.name, c.arguments) for c in x.response.tool_calls] == [
        ("call_abc", "get_weather", '{"city": "Paris"}')]
    assert x.response.finish_reason == "tool_calls"
    # no usage in the stream: estimated, and marked so
    assert x.usage.source == "estimated" and x.usage.input_tokens > 0 and x.usage.output_tokens > 0


def test_openai_chat_non_stream_with_tool_history_and_reasoning_model():
    req = {"model": "o4-mini", "messages": [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"}]}
    body = {"id": "chatcmpl-9", "object": "chat.completion", "model": "o4-mini-2025-04-16",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is 42."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 300, "total_tokens": 350,
                      "completion_tokens_details": {"reasoning_tokens": 256}}}
    x = one(h1_call(CHAT, req, [json.dumps(body).encode()]))
    assert x.request.system == "Use tools."
    assert [(m.role, m.text) for m in x.request.messages] == [("user", "Look\n[image_url]"), ("assistant", ""),
                                                              ("tool", "42")]
    assert x.request.messages[1].tool_calls[0].name == "lookup" and x.request.messages[2].tool_call_id == "call_1"
    assert x.response.text == "It is 42." and x.usage.reasoning_tokens == 256 and x.usage.output_tokens == 300
    assert x.cost_usd is not None and x.cost_usd > 0


@pytest.mark.parametrize("host,provider", [
    ("api.groq.com", "groq"), ("api.mistral.ai", "mistral"), ("api.deepseek.com", "deepseek"),
    ("openrouter.ai", "openrouter"), ("api.x.ai", "xai"), ("api.together.xyz", "together"),
    ("myres.openai.azure.com", "azure"), ("localhost:11434", "ollama"), ("10.0.0.5:8000", "openai-compatible"),
])
def test_openai_compatible_hosts(host, provider):
    path = "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21" if "azure" in host else CHAT
    req = {"model": "some-model", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    parts = sse_parts([(None, openai_chunk({"reasoning_content": "thinking..."}, model="some-model")),
                       (None, openai_chunk({"content": "answer"}, finish="stop", model="some-model")), (None, "[DONE]")])
    x = one(h1_call(path, req, parts, ctype="text/event-stream", host=host))
    assert (x.provider, x.api) == (provider, "openai.chat")
    assert x.response.text == "answer" and x.response.reasoning == "thinking..."
    assert x.cost_usd is None  # an unknown model is never priced


def test_groq_usage_in_x_groq():
    req = {"model": "llama-3.3-70b-versatile", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    last = openai_chunk({}, finish="stop", model="llama-3.3-70b-versatile")
    last["x_groq"] = {"id": "req_1", "usage": {"prompt_tokens": 12, "completion_tokens": 5}}
    parts = sse_parts([(None, openai_chunk({"content": "ok"}, model="llama-3.3-70b-versatile")), (None, last),
                       (None, "[DONE]")])
    x = one(h1_call(CHAT, req, parts, ctype="text/event-stream", host="api.groq.com"))
    assert (x.usage.input_tokens, x.usage.output_tokens, x.usage.source) == (12, 5, "reported")
    assert x.cost_usd is not None


def test_rate_limit_error_is_an_exchange_with_error():
    req = {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}
    body = {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "param": None,
                      "code": "rate_limit_exceeded"}}
    x = one(h1_call(CHAT, req, [json.dumps(body).encode()], status=429, resp_headers={"retry-after": "2"}))
    assert x.status == 429 and x.provider == "openai"
    assert x.response.error == "HTTP 429: requests: Rate limit reached for gpt-4o"
    assert x.usage.input_tokens == 0 and x.cost_usd == 0


def test_non_json_error_and_plain_http_are_kept():
    req = {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}
    conv = h1_call(CHAT, req, [b"<html>502 Bad Gateway</html>"], status=502, ctype="text/html")
    conv += [("send", wire.h1_request("GET", "/healthz")), ("recv", wire.h1_response(200, b"ok"))]
    xs = finished(conv)
    assert xs[0].response.error == "HTTP 502: <html>502 Bad Gateway</html>"
    assert xs[1].provider is None and xs[1].api is None and xs[1].status == 200


# -- OpenAI Responses ----------------------------------------------------------------------------
def test_openai_responses_stream_with_function_call():
    req = {"model": "gpt-4.1", "stream": True, "instructions": "You are terse.",
           "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]}],
           "tools": [{"type": "function", "name": "get_weather", "parameters": {}}], "previous_response_id": "resp_0"}
    resp = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1-2025-04-14",
            "usage": {"input_tokens": 80, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 100}}
    ev = [("response.created", {"type": "response.created", "sequence_number": 0,
                                "response": {**resp, "status": "in_progress", "usage": None}}),
          ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                          "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}}),
          ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Let me"}),
          ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "msg_1", "delta": " check."}),
          ("response.output_item.added", {"type": "response.output_item.added", "output_index": 1, "item": {
              "type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get_weather", "arguments": ""}}),
          ("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                      "item_id": "fc_1", "delta": "{\"city\":"}),
          ("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                      "item_id": "fc_1", "delta": "\"Oslo\"}"}),
          ("response.completed", {"type": "response.completed", "response": resp})]
    x = one(h1_call("/v1/responses", req, sse_parts(ev), ctype="text/event-stream"))
    assert (x.api, x.request.system, x.request.previous_response_id) == ("openai.responses", "You are terse.", "resp_0")
    assert [(m.role, m.text) for m in x.request.messages] == [("user", "Weather?")]
    assert x.response.text == "Let me check." and x.response.response_id == "resp_1"
    assert [(c.id, c.name, c.arguments) for c in x.response.tool_calls] == [("call_9", "get_weather", '{"city":"Oslo"}')]
    assert (x.usage.input_tokens, x.usage.output_tokens, x.response.finish_reason) == (80, 20, "completed")


def test_openai_responses_non_stream_string_input():
    req = {"model": "gpt-4.1-mini", "input": "hello"}
    body = {"id": "resp_2", "object": "response", "status": "completed", "model": "gpt-4.1-mini",
            "output": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "Greeting."}]},
                       {"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hello!", "annotations": []}]}],
            "usage": {"input_tokens": 5, "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}}}
    x = one(h1_call("/v1/responses", req, [json.dumps(body).encode()]))
    assert x.request.messages[0].text == "hello" and x.response.text == "Hello!"
    assert x.response.reasoning == "Greeting." and x.usage.reasoning_tokens == 3


# -- Anthropic Messages ---------------------------------------------------------------------------
def anthropic_stream(blocks_events: list, usage_start: dict, usage_end: dict, stop="end_turn") -> list[bytes]:
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [], "stop_reason": None, "usage": usage_start}
    ev = [("message_start", {"type": "message_start", "message": msg}), ("ping", {"type": "ping"})]
    ev += blocks_events
    ev += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                              "usage": usage_end}), ("message_stop", {"type": "message_stop"})]
    return sse_parts(ev)


def test_anthropic_stream_thinking_text_tool_use_and_cache():
    req = {"model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": True,
           "thinking": {"type": "enabled", "budget_tokens": 1024},
           "system": [{"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}],
           "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
           "messages": [{"role": "user", "content": "Weather in Rome?"}]}
    blocks = [
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Need the tool."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "EqQB"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Checking."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Ro"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": "me\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ]
    parts = anthropic_stream(blocks, {"input_tokens": 10, "cache_creation_input_tokens": 2000,
                                      "cache_read_input_tokens": 0, "output_tokens": 1},
                             {"output_tokens": 90}, stop="tool_use")
    x = one(h1_call("/v1/messages", req, parts, ctype="text/event-stream", host="api.anthropic.com",
                    req_headers={"x-api-key": "sk-ant-secret", "anthropic-version": "2023-06-01"}))
    assert (x.provider, x.api, x.model) == ("anthropic", "anthropic.messages", "claude-sonnet-4-5")
    assert x.request.system == "You are a weather bot." and x.request.tools == ("get_weather",)
    assert x.request.params["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert x.response.reasoning == "Need the tool." and x.response.text == "Checking."
    assert [(c.id, c.name, c.arguments) for c in x.response.tool_calls] == [("toolu_01", "get_weather", '{"city": "Rome"}')]
    assert x.response.finish_reason == "tool_use" and x.response.response_model == "claude-sonnet-4-5-20250929"
    # input counts every prompt token: 10 uncached + 2000 written to the cache
    assert (x.usage.input_tokens, x.usage.output_tokens, x.usage.cache_write_tokens, x.usage.cache_read_tokens) == \
        (2010, 90, 2000, 0)
    assert x.cost_usd == pytest.approx(10 * 3e-6 + 2000 * 3.75e-6 + 90 * 15e-6)


def test_anthropic_tool_use_without_deltas_and_tool_result_history():
    req = {"model": "claude-3-5-haiku-20241022", "max_tokens": 100, "stream": True, "messages": [
        {"role": "user", "content": "Time?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "12:00"},
                                     {"type": "text", "text": "and the date?"}]}]}
    blocks = [("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                   "type": "tool_use", "id": "toolu_2", "name": "today", "input": {}}}),
              ("content_block_stop", {"type": "content_block_stop", "index": 0})]
    x = one(h1_call("/v1/messages", req, anthropic_stream(blocks, {"input_tokens": 30, "output_tokens": 1},
                                                          {"output_tokens": 12}, "tool_use"),
                    ctype="text/event-stream", host="api.anthropic.com"))
    assert [(m.role, m.text) for m in x.request.messages] == [("user", "Time?"), ("assistant", ""), ("tool", "12:00"),
                                                              ("user", "and the date?")]
    assert [(c.name, c.arguments) for c in x.response.tool_calls] == [("today", "{}")]
    assert x.usage.input_tokens == 30 and x.usage.output_tokens == 12


def test_anthropic_non_stream_and_overloaded_error_and_stream_error_event():
    req = {"model": "claude-3-5-haiku-20241022", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    ok = {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
          "content": [{"type": "text", "text": "Hello."}], "stop_reason": "end_turn",
          "usage": {"input_tokens": 8, "output_tokens": 3, "cache_read_input_tokens": 100}}
    over = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    conv = h1_call("/v1/messages", req, [json.dumps(ok).encode()], host="api.anthropic.com")
    conv += h1_call("/v1/messages", req, [json.dumps(over).encode()], status=529, host="api.anthropic.com")
    err_parts = sse_parts([("message_start", {"type": "message_start", "message": {
        "id": "msg_3", "model": "claude-3-5-haiku-20241022", "usage": {"input_tokens": 8, "output_tokens": 1}}}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
    conv += h1_call("/v1/messages", dict(req, stream=True), err_parts, ctype="text/event-stream", host="api.anthropic.com")
    a, b, c = finished(conv)
    assert a.response.text == "Hello." and (a.usage.input_tokens, a.usage.cache_read_tokens) == (108, 100)
    assert b.status == 529 and b.response.error == "HTTP 529: overloaded_error: Overloaded"
    assert c.status == 200 and c.response.error == "overloaded_error: Overloaded"


# -- Google Gemini ---------------------------------------------------------------------------------
def gemini_chunk(text: str, usage: dict, finish=None, thought=False) -> dict:
    part = {"text": text, **({"thought": True} if thought else {})}
    cand = {"content": {"role": "model", "parts": [part]}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}


GEMINI_REQ = {"systemInstruction": {"parts": [{"text": "Answer in French."}]},
              "contents": [{"role": "user", "parts": [{"text": "Hello"}]},
                           {"role": "model", "parts": [{"text": "Bonjour"}]},
                           {"role": "user", "parts": [{"text": "How are you?"}]}],
              "generationConfig": {"temperature": 0.1, "thinkingConfig": {"thinkingBudget": 100}}}


def gemini_stream_chunks() -> list[dict]:
    return [gemini_chunk("Let me think", {"promptTokenCount": 20, "totalTokenCount": 20}, thought=True),
            gemini_chunk("Je vais ", {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22}),
            gemini_chunk("bien.", {"promptTokenCount": 20, "candidatesTokenCount": 4, "thoughtsTokenCount": 30,
                                   "totalTokenCount": 54}, finish="STOP")]


def check_gemini(x, stream: bool) -> None:
    assert (x.provider, x.api, x.model, x.request.stream) == ("google", "google.generate_content", "gemini-2.5-flash", stream)
    assert x.request.system == "Answer in French."
    assert [(m.role, m.text) for m in x.request.messages] == [("user", "Hello"), ("assistant", "Bonjour"),
                                                              ("user", "How are you?")]
    assert x.request.params == {"temperature": 0.1, "thinkingConfig": {"thinkingBudget": 100}}
    assert x.response.text == "Je vais bien." and x.response.reasoning == "Let me think"
    assert x.response.finish_reason == "STOP" and x.response.response_model == "gemini-2.5-flash"
    # thoughts are output tokens too: 4 + 30
    assert (x.usage.input_tokens, x.usage.output_tokens, x.usage.reasoning_tokens) == (20, 34, 30)
    assert x.cost_usd == pytest.approx(20 * 0.3e-6 + 34 * 2.5e-6)


def test_gemini_sse_with_crlf_over_http2_and_key_in_url_masked():
    p = wire.H2Pair()
    p.request(1, "POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET",
              json.dumps(GEMINI_REQ).encode(), authority="generativelanguage.googleapis.com")
    p.respond(1, 200, [("content-type", "text/event-stream")])
    for part in sse_parts([(None, c) for c in gemini_stream_chunks()], crlf=True):
        p.data(1, part)
    p.data(1, b"", end=True)
    x = one(p.conv)
    check_gemini(x, stream=True)
    assert x.http_version == "2" and "AIzaSECRET" not in x.path and "alt=sse" in x.path


def test_gemini_json_array_stream_and_non_stream():
    chunks = gemini_stream_chunks()
    text = "[" + ",\r\n".join(json.dumps(c, indent=1) for c in chunks) + "]"
    pieces = [text[i:i + 50].encode() for i in range(0, len(text), 50)]
    x = one(h1_call("/v1beta/models/gemini-2.5-flash:streamGenerateContent", GEMINI_REQ, pieces,
                    host="generativelanguage.googleapis.com"))
    check_gemini(x, stream=True)
    whole = gemini_chunk("", {"promptTokenCount": 20, "candidatesTokenCount": 4, "thoughtsTokenCount": 30})
    whole["candidates"][0]["content"]["parts"] = [{"text": "Let me think", "thought": True}, {"text": "Je vais bien."}]
    whole["candidates"][0]["finishReason"] = "STOP"
    y = one(h1_call("/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_REQ, [json.dumps(whole).encode()],
                    host="generativelanguage.googleapis.com"))
    check_gemini(y, stream=False)


def test_gemini_function_call_and_error():
    req = {"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
           "tools": [{"functionDeclarations": [{"name": "get_weather"}]}, {"googleSearch": {}}]}
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 5}}
    err = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    conv = h1_call("/v1beta/models/gemini-2.0-flash:generateContent", req, [json.dumps(body).encode()],
                   host="generativelanguage.googleapis.com")
    conv += h1_call("/v1beta/models/gemini-2.0-flash:generateContent", req, [json.dumps(err).encode()], status=429,
                    host="generativelanguage.googleapis.com")
    a, b = finished(conv)
    assert a.request.tools == ("get_weather", "googleSearch")
    assert [(c.name, json.loads(c.arguments)) for c in a.response.tool_calls] == [("get_weather", {"city": "Lyon"})]
    assert b.response.error == "HTTP 429: RESOURCE_EXHAUSTED: Resource has been exhausted"


# -- Cohere, Ollama ---------------------------------------------------------------------------------
def test_cohere_v2_stream_and_non_stream():
    req = {"model": "command-r-plus", "stream": True, "messages": [{"role": "system", "content": "Hi"},
                                                                   {"role": "user", "content": "Tell me"}]}
    ev = [("message-start", {"id": "c-1", "type": "message-start", "delta": {"message": {"role": "assistant"}}}),
          ("content-start", {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
          ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "A "}}}}),
          ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "story."}}}}),
          ("content-end", {"type": "content-end", "index": 0}),
          ("message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
              "billed_units": {"input_tokens": 5, "output_tokens": 2}, "tokens": {"input_tokens": 70, "output_tokens": 2}}}})]
    body = {"id": "c-2", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "Once."}]},
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 1}, "tokens": {"input_tokens": 70, "output_tokens": 1}}}
    conv = h1_call("/v2/chat", req, sse_parts(ev), ctype="text/event-stream", host="api.cohere.com")
    conv += h1_call("/v2/chat", dict(req, stream=False), [json.dumps(body).encode()], host="api.cohere.com")
    a, b = finished(conv)
    assert (a.provider, a.api, a.response.text, a.response.finish_reason) == ("cohere", "cohere.chat", "A story.", "COMPLETE")
    assert (a.usage.input_tokens, a.usage.output_tokens) == (5, 2) and a.request.system == "Hi"
    assert b.response.text == "Once." and b.usage.output_tokens == 1 and a.cost_usd is not None


def test_ollama_native_ndjson():
    req = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    lines = [{"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": False},
             {"model": "llama3.2", "message": {"role": "assistant", "content": "lo"}, "done": False},
             {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
              "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 2}]
    parts = [json.dumps(line).encode() + b"\n" for line in lines]
    x = one(h1_call("/api/chat", req, parts, ctype="application/x-ndjson", host="localhost:11434"))
    assert (x.provider, x.api, x.request.stream, x.response.text) == ("ollama", "ollama.chat", True, "Hello")
    assert (x.usage.input_tokens, x.usage.output_tokens, x.cost_usd) == (26, 2, None)


# -- recognising by shape, partial captures ----------------------------------------------------------
def test_gateway_path_recognised_by_body_shape():
    req = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
    body = {"id": "x", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}]}
    x = one(h1_call("/gateway/llm/invoke", req, [json.dumps(body).encode()], host="llm-gw.internal"))
    assert (x.provider, x.api, x.response.text) == ("openai-compatible", "openai.chat", "a")
    assert x.cost_usd is not None  # priced by the model's name: gpt-4o-mini is known


def test_joined_mid_response_recognised_from_the_stream():
    req = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    parts = sse_parts([(None, openai_chunk({"content": "one "})), (None, openai_chunk({"content": "two"}, finish="stop")),
                       (None, "[DONE]")])
    conv = h1_call(CHAT, req, parts, ctype="text/event-stream")
    x_full = one(conv)
    # the monitor starts after the request and the first two response chunks went by
    late = conv[3:]
    xs = finished(late)
    assert x_full.response.text == "one two"
    assert all(x.problem for x in xs)
    assert not any(x.response and x.response.text == "one two" for x in xs)


def test_truncated_stream_is_incomplete_but_keeps_what_arrived():
    req = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    parts = sse_parts([(None, openai_chunk({"content": "partial"})), (None, openai_chunk({"content": " more"}))])
    conv = h1_call(CHAT, req, parts, ctype="text/event-stream")[:-1]  # no last chunk: connection dies
    x = one(conv)
    assert x.response.text == "partial more" and not x.complete
    assert "connection ended" in x.problem or "response" in x.problem
    assert x.usage.source == "estimated"


def test_big_system_prompt_over_80k():
    system = "".join(f"Rule {i}: never reveal the secret number {i * 7}.\n" for i in range(2500))
    assert len(system) > 80_000
    req = {"model": "claude-3-5-haiku-20241022", "max_tokens": 50, "system": system,
           "messages": [{"role": "user", "content": "What is rule 2499?"}]}
    body = {"id": "m", "type": "message", "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": "Never reveal 17493."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 30000, "output_tokens": 6}}
    conv = h1_call("/v1/messages", req, [json.dumps(body).encode()], host="api.anthropic.com")
    x = one(conv, splits=lambda _d, data: list(range(16384, len(data), 16384)))
    assert x.request.system == system and x.complete and x.response.text == "Never reveal 17493."


def test_live_progress_grows_and_ends_with_reported_usage():
    req = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
           "messages": [{"role": "user", "content": "count"}]}
    words = [f" w{i}" for i in range(20)]
    parts = sse_parts([(None, openai_chunk({"content": w})) for w in words]
                      + [(None, openai_chunk({}, usage={"prompt_tokens": 9, "completion_tokens": 40})), (None, "[DONE]")])
    conv = h1_call(CHAT, req, parts, ctype="text/event-stream")
    events = exchanges(conv, splits=lambda d, data: list(range(40, len(data), 40)) if d == "recv" else [], live=True)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "ExchangeStarted" and kinds[-1] == "ExchangeFinished"
    progress = [e for e in events if type(e).__name__ == "ExchangeProgress"]
    assert "".join(p.text for p in progress) == "".join(words)
    assert progress[0].usage.source == "estimated" and progress[-1].usage.output_tokens == 40


def test_stream_ended_by_its_own_event_is_whole_even_if_the_client_hangs_up_early():
    """SDKs stop reading at [DONE] and close: the chunked framing's last bytes are never read."""
    req = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    parts = sse_parts([(None, openai_chunk({"content": "done"}, finish="stop")), (None, "[DONE]")])
    conv = h1_call(CHAT, req, parts, ctype="text/event-stream")[:-1]  # no "0\r\n\r\n"
    x = one(conv)
    assert x.complete and not x.problem and x.response.text == "done"


def test_a_traced_server_reports_its_side():
    """The process that answered (a local gateway or server using TLS) is marked as the server."""
    req = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
    body = {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}]}
    conv = h1_call(CHAT, req, [json.dumps(body).encode()])
    flipped = [("recv" if d == "send" else "send", data) for d, data in conv]
    assert one(conv).role == "client"
    x = one(flipped)
    assert x.role == "server" and x.response.text == "a" and x.request.messages[0].text == "q"


def test_response_head_before_the_request_body_ends():
    """A server may answer while the client is still sending (HTTP/2): the call is recognised
    once the request body is whole, not from the part seen when the response began."""
    p = wire.H2Pair()
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "long " * 3000}]}).encode()
    p.client.send_headers(1, [(":method", "POST"), (":path", CHAT), (":scheme", "https"),
                              (":authority", "api.openai.com"), ("content-type", "application/json")])
    p.client.send_data(1, body[:1000])
    p._pump()
    p.respond(1, 200, [("content-type", "application/json")])
    p.client.send_data(1, body[1000:], end_stream=True)
    p._pump()
    reply = {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    p.data(1, json.dumps(reply).encode(), end=True)
    x = one(p.conv)
    assert x.api == "openai.chat" and x.request.messages[0].text == "long " * 3000 and x.response.text == "ok"
