"""Hostile LLM calls through providers, store, exports and redaction: fuzzed, and the shapes the
fuzzer found (each fixed bug keeps its regression test here)."""

from __future__ import annotations

import json
import os
import time

import orjson
import pytest
from provider_fuzzing import fuzz, run_case

from llmspy_tui.capture.events import Counters
from llmspy_tui.capture.recordfile import (
    MAGIC,
    T_CLOSE,
    T_COUNTERS,
    T_EXIT,
    T_HEADER,
    T_PROCESS,
    RecordingReader,
    _frame,
    encode_event,
)
from llmspy_tui.errors import UserError
from llmspy_tui.export import FORMATS, exchange_record, export_bytes
from llmspy_tui.providers.events import Exchange, ExchangeFinished, ExchangeStarted
from llmspy_tui.providers.model import LlmRequest, Timing, Usage
from llmspy_tui.store import Store
from support import wire
from support.llm_wire import h1_call, sse_parts, through_store

CHAT = "/v1/chat/completions"
REQ = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}


def test_fuzz_providers_store_exports():
    """At least 100k cases in CI (LLMSPY_FUZZ_CASES overrides; bench/fuzz.py runs longer)."""
    cases = int(os.environ.get("LLMSPY_FUZZ_CASES", "100000"))
    start = time.perf_counter()
    stats = fuzz(cases, seed=int(os.environ.get("LLMSPY_FUZZ_SEED", "20261201")))
    took = time.perf_counter() - start
    assert stats["cases"] == cases
    # not a no-op: most cases make exchanges, most of them LLM calls, rendered to something
    assert stats["exchanges"] > cases and stats["llm"] > cases // 2 and stats["bytes"] > cases * 1000
    print(f"\nprovider fuzz: {stats['cases']} cases, {stats['exchanges']} exchanges ({stats['llm']} LLM calls), "
          f"{stats['bytes'] / 1e6:.0f} MB rendered, {cases / took:.0f} cases/s, no escape")


def test_a_case_replays_from_its_seed():
    assert run_case(12345) == run_case(12345)


# -- helpers ---------------------------------------------------------------------------------------
def call(conv) -> tuple:
    """The one exchange of a conversation through the whole pipeline, exported every way."""
    views, pl = through_store([conv])
    assert pl.internal_errors == 0
    (v,) = views
    snap = pl.store.snapshot()
    for fmt in FORMATS:
        for secrets in (False, True):
            assert export_bytes(snap, exchange_id=v.exchange.id, fmt=fmt, show_secrets=secrets)
            if v.conversation_id:
                assert export_bytes(snap, conversation_id=v.conversation_id, fmt=fmt, show_secrets=secrets)
    orjson.dumps(exchange_record(v, True))
    assert snap.total.in_flight == 0
    return v.exchange, snap


def raw(path: str, req, body: bytes, **kw):
    """A call whose reply body is given as bytes (so it can hold what JSON encoders refuse)."""
    return h1_call(path, req, [body], **kw)


def raw_both(path: str, req: bytes, body: bytes, host: str = "api.openai.com"):
    """A call whose request and reply bodies are both given as bytes."""
    return [("send", wire.h1_request("POST", path, req, {"Content-Type": "application/json"}, host=host)),
            ("recv", wire.h1_response(200, body, {"Content-Type": "application/json"}))]


DEEP_LIST = b"[" * 1000 + b"1" + b"]" * 1000  # orjson reads it; neither orjson nor repr() writes it


# -- a hostile shape per provider: a clear problem, never a crash ----------------------------------
def test_openai_chat_usage_as_strings_is_named_and_estimated():
    body = {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": "12", "completion_tokens": 3.0}}
    x, _ = call(h1_call(CHAT, REQ, [json.dumps(body).encode()]))
    assert x.response.text == "hi" and x.usage.source == "estimated"
    assert "reported input token count ignored: '12' is not a count" in x.problem
    assert "reported output token count ignored: 3.0 is not a count" in x.problem


def test_openai_chat_tool_arguments_not_json_and_content_a_number():
    parts = sse_parts([(None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "content": 42, "tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{nope"}}]}}]}),
        (None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": [0], "function": {"arguments": {"deep": [[[1]]]}}}]}}]}),
        (None, "[DONE]")])
    x, snap = call(h1_call(CHAT, dict(REQ, stream=True), parts, ctype="text/event-stream"))
    assert x.response.text == ""
    assert [(c.id, c.arguments) for c in x.response.tool_calls] == [("call_1", "{nope"), ("", '{"deep":[[[1]]]}')]
    md = export_bytes(snap, exchange_id=x.id, fmt="md").decode()
    assert "{nope" in md


def test_openai_chat_choices_of_the_wrong_type():
    """Regression: `choices` as a number (stream) or an object (body) raised TypeError/KeyError."""
    parts = sse_parts([(None, {"object": "chat.completion.chunk", "choices": 7}),
                       (None, {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "ok"}}]}),
                       (None, "[DONE]")])
    x, _ = call(h1_call(CHAT, dict(REQ, stream=True), parts, ctype="text/event-stream"))
    assert x.response.text == "ok" and "internal" not in x.problem
    for choices in ({"0": {"message": {"content": "x"}}}, 1.5, "abc"):
        body = {"object": "chat.completion", "model": "gpt-4o-mini", "choices": choices}
        x, _ = call(h1_call(CHAT, REQ, [json.dumps(body).encode()]))
        assert x.response.text == "" and "internal" not in x.problem


def test_openai_responses_output_not_a_list_and_negative_usage():
    """Regression: `output` as a number raised TypeError while the exchange was finishing, and
    the exchange was lost (never finished: in flight forever in the store)."""
    req = {"model": "gpt-4.1", "input": "hi"}
    body = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1", "output": 3,
            "usage": {"input_tokens": -5, "output_tokens": 2}}
    x, _ = call(h1_call("/v1/responses", req, [json.dumps(body).encode()]))
    assert x.response.text == "" and x.response.finish_reason == "completed"
    assert "reported input token count ignored: -5 is not a count" in x.problem
    body = {"id": "resp_2", "object": "response", "output": [{"type": "message", "content": 5},
                                                            {"type": "reasoning", "summary": True}]}
    x, _ = call(h1_call("/v1/responses", req, [json.dumps(body).encode()]))
    assert "internal" not in x.problem


def test_anthropic_block_index_a_list_and_content_a_bool():
    """Regression: a content block index that is a list (unhashable) raised TypeError in the
    builder and in the stream's scratch notes; `content: true` raised while finishing."""
    req = {"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "q"}]}
    parts = sse_parts([
        ("content_block_start", {"type": "content_block_start", "index": [1],
                                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": {"i": 1},
                                 "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": [1]}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": "9"}}),
        ("message_stop", {"type": "message_stop"})])
    x, _ = call(h1_call("/v1/messages", req, parts, ctype="text/event-stream", host="api.anthropic.com"))
    assert [(c.name, c.arguments) for c in x.response.tool_calls] == [("now", "{}"), ("", "{}")]
    assert "reported output token count ignored" in x.problem
    body = {"type": "message", "model": "claude-sonnet-4-5", "content": True, "usage": {"input_tokens": 1}}
    x, _ = call(h1_call("/v1/messages", dict(req, stream=False), [json.dumps(body).encode()], host="api.anthropic.com"))
    assert x.response.text == "" and "internal" not in x.problem


def test_gemini_candidates_a_number_and_deep_generation_config():
    """Regression: `candidates: 1.5` raised while finishing; a generationConfig value nested
    deeper than orjson writes went into `params` whole and broke every JSON export of the call."""
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    req = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"x": deep}}
    body = {"candidates": 1.5, "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}
    x, _ = call(raw("/v1beta/models/gemini-2.5-flash:generateContent", req, json.dumps(body).encode(),
                    host="generativelanguage.googleapis.com"))
    assert x.usage.input_tokens == 3 and x.response.text == ""
    assert isinstance(x.request.params["x"], str) and x.request.params["x"].endswith("…")


def test_cohere_tool_calls_not_lists():
    """Regression: v2 `message.tool_calls` and v1 `tool_calls` as numbers raised while finishing."""
    req = {"model": "command-r-plus", "messages": [{"role": "user", "content": "q"}]}
    body = {"id": "c", "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}], "tool_calls": 2.5},
            "usage": {"billed_units": {"input_tokens": [1], "output_tokens": 1}}}
    x, _ = call(h1_call("/v2/chat", req, [json.dumps(body).encode()], host="api.cohere.com"))
    assert x.response.text == "ok" and "reported input token count ignored: [1] is not a count" in x.problem
    v1 = {"model": "command-r", "message": "q", "chat_history": 5}
    x, _ = call(h1_call("/v1/chat", v1, [json.dumps({"text": "ok", "tool_calls": 7}).encode()], host="api.cohere.com"))
    assert x.response.text == "ok" and x.request.messages[-1].text == "q"


def test_ollama_tool_calls_a_number_and_absurd_counts():
    """Regression: counts beyond 64 bits once summed (Anthropic adds three) made the exchange
    record unwritable by orjson: such counts are no token counts, and are said to be ignored."""
    req = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": "q"}]}
    body = b'{"model":"llama3.2","message":{"role":"assistant","content":"hi","tool_calls":3},"done":true,' \
           b'"prompt_eval_count":18446744073709551615,"eval_count":2}'
    x, snap = call(raw("/api/chat", req, body, host="localhost:11434"))
    assert x.response.text == "hi" and x.usage.output_tokens == 2 and x.usage.source == "estimated"
    assert "reported input token count ignored: 18446744073709551615 is not a count" in x.problem
    big = 18446744073709551615
    body = ('{"type":"message","content":[],"usage":{"input_tokens":%d,"cache_read_input_tokens":%d,'
            '"cache_creation_input_tokens":%d,"output_tokens":1}}' % (big, big, big)).encode()
    x, snap = call(raw("/v1/messages", {"model": "claude-sonnet-4-5", "messages": []}, body, host="api.anthropic.com"))
    orjson.dumps(snap.total.to_json())
    assert x.usage.input_tokens is None or x.usage.input_tokens < 1 << 64


def test_deeply_nested_tool_arguments_export_as_text():
    """Regression: tool arguments nested deeper than Python's json goes raised RecursionError in
    the Markdown export (shown as JSON when they parse: these do not)."""
    deep = "[" * 3000 + "]" * 3000
    req = {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": deep}}]},
        {"role": "tool", "tool_call_id": "c1", "content": deep}]}
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"tool_calls": [
        {"id": "c2", "function": {"name": "f", "arguments": deep}}]}}]}
    x, snap = call(h1_call(CHAT, req, [json.dumps(body).encode()]))
    md = export_bytes(snap, exchange_id=x.id, fmt="md").decode()
    assert deep in md


def test_values_nested_deeper_than_repr_goes():
    """Regression: values nested ~1000 deep (orjson reads up to 1024) raised RecursionError from
    str()/repr()/f-strings of them: a part type named by such a value, a finish reason, a usage
    count said to be ignored, a tool call id, a parameter (which, unwritable, was kept whole and
    broke the JSON exports), and a Gemini array body (read recursively)."""
    req = b'{"model":"gpt-4.1","temperature":%s,"input":[{"type":%s},{"role":"user","content":"q"}]}' % (
        DEEP_LIST, DEEP_LIST)
    body = b'{"object":"response","status":"incomplete","incomplete_details":{"reason":%s},"output":[' \
           b'{"type":"function_call","id":"f","call_id":%s,"name":"n","arguments":"{}"}],' \
           b'"usage":{"input_tokens":%s,"output_tokens":1}}' % (DEEP_LIST, DEEP_LIST, DEEP_LIST)
    x, snap = call(raw_both("/v1/responses", req, body))
    assert x.request.params["temperature"] == "[a JSON array nested too deep to show]"
    assert x.request.messages[0].text == "[[a JSON array nested too deep to show]]"
    assert x.response.finish_reason == "incomplete: [a JSON array nested too deep to show]"
    assert x.response.tool_calls[0].id == "[a JSON array nested too deep to show]"
    assert "reported input token count ignored: [a JSON array nested too deep to show] is not a count" in x.problem
    gem = b'{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
    x, _ = call(raw_both("/v1beta/models/gemini-2.5-flash:generateContent", gem,
                         b'[' + DEEP_LIST + b',{"candidates":[{"content":{"parts":[{"text":"ok"}]}}]}]',
                         host="generativelanguage.googleapis.com"))
    assert x.response.text == "ok"


def test_a_call_whose_role_changes_leaves_no_call_in_flight():
    """Regression: the store took a call out of the tallies chosen by its finished role, not by
    those it was counted in at its start (the connection's role can be learnt or forgotten
    between the two), so totals were left with -1 or +1 calls in flight forever."""
    req = LlmRequest("gpt-4o", messages=())
    for first, last in (("server", "client"), ("client", "server")):
        x = Exchange("x1", "1:1", 1, 7, "h", "POST", CHAT, "1.1", None, "openai", "openai.chat", req, None,
                     timing=Timing(1, 1), role=first)
        store = Store()
        store.apply([ExchangeStarted(1, x)])
        done = Exchange("x1", "1:1", 1, 7, "h", "POST", CHAT, "1.1", 200, "openai", "openai.chat", req, None,
                        usage=Usage(1, 1), timing=Timing(1, 2), role=last)
        store.apply([ExchangeFinished(2, done)])
        snap = store.snapshot()
        assert snap.total.in_flight == 0 and all(p.tally.in_flight == 0 for p in snap.processes)
        assert all(t.in_flight == 0 for t in snap.by_model.values())


# -- the recording file --------------------------------------------------------------------------
def _recording(tmp_path, frames: list[bytes], header=None) -> str:
    path = tmp_path / "r.llmspy"
    head = {"format": "llmspy-capture", "version": 1} if header is None else header
    path.write_bytes(MAGIC + _frame(T_HEADER, orjson.dumps(head)) + b"".join(frames))
    return str(path)


def test_recording_with_a_header_not_an_object_is_refused_clearly(tmp_path):
    """Regression: a header that was valid JSON but not an object raised AttributeError."""
    for header in ([1, 2], "llmspy-capture", 7):
        with pytest.raises(UserError, match="corrupt header"):
            RecordingReader(_recording(tmp_path, [], header))
        (tmp_path / "r.llmspy").unlink()


def test_recording_frames_not_objects_are_skipped_with_a_note(tmp_path):
    """Regression: process, close, exit and counter frames whose JSON was not an object (or
    counters whose values were not one) raised AttributeError out of the reader; times out of
    the u64 range went on to break the Markdown export's dates (OverflowError), and a name
    nested too deep raised RecursionError."""
    for ftype, payload in ((T_PROCESS, b"[1]"), (T_COUNTERS, b"3.5"), (T_COUNTERS, b'{"ts":1,"values":[1]}')):
        (tmp_path / "r.llmspy").unlink(missing_ok=True)
        reader = RecordingReader(_recording(tmp_path, [_frame(ftype, payload)]))
        assert list(reader) == []
        assert reader.info.problem.startswith(f"undecodable frame of type {ftype} skipped")
    (tmp_path / "r.llmspy").unlink()
    good = Counters(5, {"bytes": 1})
    for ftype, payload in ((T_CLOSE, b'{"ts":1e300,"pid":1,"conn":1}'), (T_EXIT, b'{"ts":1,"pid":-1}'),
                           (T_PROCESS, b'{"pid":1,"comm":%s}' % DEEP_LIST)):
        reader = RecordingReader(_recording(tmp_path, [_frame(ftype, payload), encode_event(good)]))
        assert list(reader) == [good] and f"undecodable frame of type {ftype} skipped" in reader.info.problem
        (tmp_path / "r.llmspy").unlink()
    reader = RecordingReader(_recording(tmp_path, [_frame(T_COUNTERS, b"[]"), encode_event(good)]))
    assert list(reader) == [good] and reader.info.counters == {"bytes": 1}


def test_markdown_dates_out_of_any_calendar():
    """Regression (with the reader's range check, its root): a time no datetime holds raised
    OverflowError out of the Markdown export."""
    from llmspy_tui.export.markdown import when

    assert when(10**300) == f"{10**300} ns since the epoch"
    assert when(1_764_000_000_000_000_000).startswith("2025-11-24")


def test_joined_mid_stream_with_an_object_field_nested_too_deep():
    """Regression: recognising the API of a stream whose request was not seen took str() of the
    item's `object` field: RecursionError for one nested ~1000 deep (found by bench/fuzz.py)."""
    from llmspy_tui.protocol import events as pe
    from llmspy_tui.providers import ExchangeTracker

    xt = ExchangeTracker()
    chunk = b'{"object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"}}]}'
    events = [pe.ResponseHead(1, "c", 1, 1, "1.1", 200, "OK", (("content-type", "text/event-stream"),)),
              pe.SseEvent(2, "c", 1, 1, pe.RESPONSE, "", (b'{"object":' + DEEP_LIST + b"}").decode()),
              pe.SseEvent(3, "c", 1, 1, pe.RESPONSE, "", chunk.decode()),
              pe.MessageEnd(4, "c", 1, 1, pe.RESPONSE, 1, 4, 10, 10, True)]
    out = xt.feed_many(events) + xt.finish(5)
    assert xt.internal_errors == 0
    (x,) = [e.exchange for e in out if type(e) is ExchangeFinished]
    assert (x.api, x.response.text) == ("openai.chat", "hi") and "request not seen" in x.problem
