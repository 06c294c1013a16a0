"""Real SDK traffic without root: the golden recording of the openai and anthropic SDKs,
curl --http2 and Node fetch (tests/golden/llm-clients.llmspy), replayed through the pipeline,
must match what each client itself received."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from llm_scenarios import match_calls, sse_objects

from llmspy_tui.capture.events import ChunkEvent
from llmspy_tui.capture.recordfile import RecordingReader
from llmspy_tui.export import exchange_record
from llmspy_tui.pipeline import Pipeline

GOLDEN = Path(__file__).resolve().parent / "golden"
TRUTH = json.loads((GOLDEN / "llm-clients.truth.json").read_text())


def replay(events) -> list[dict]:
    pl = Pipeline()
    views = pl.feed(events) + pl.finish()
    assert pl.internal_errors == 0
    return [exchange_record(v) for v in views if v.exchange.is_llm]


def rechunk(events, size: int):
    """The same capture, as if every SSL call had delivered at most `size` bytes."""
    for e in events:
        if type(e) is ChunkEvent and e.data and len(e.data) > size:
            for i in range(0, len(e.data), size):
                yield replace(e, offset=e.offset + i, data=e.data[i:i + size], total_len=len(e.data[i:i + size]))
        else:
            yield e


@pytest.fixture(scope="module")
def events():
    return list(RecordingReader(str(GOLDEN / "llm-clients.llmspy")))


@pytest.fixture(scope="module")
def lines(events):
    return replay(events)


def _of(lines, name):
    pid = TRUTH[name]["pid"]
    return sorted((x for x in lines if x["pid"] == pid), key=lambda x: x["ts_start"])


@pytest.mark.parametrize("name", [n for n, r in TRUTH.items() if "calls" in r and n != "node-fetch"])
def test_replayed_sdk_calls_match_the_client(lines, name):
    seen = _of(lines, name)
    assert len(seen) == len(TRUTH[name]["calls"])
    assert not match_calls(TRUTH[name]["calls"], seen)


def test_gemini_sse_and_node_fetch(lines):
    (g,) = _of(lines, "curl-gemini-h2")
    chunks = sse_objects(base64.b64decode(TRUTH["curl-gemini-h2"]["body_b64"]))
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"] if not p.get("thought"))
    assert g["response"]["text"] == text and g["usage"]["input_tokens"] == chunks[-1]["usageMetadata"]["promptTokenCount"]
    node = _of(lines, "node-fetch")
    assert len(node) == len(TRUTH["node-fetch"]["calls"]) and all(x["complete"] for x in node)
    assert {x["api"] for x in node} == {"openai.chat", "google.generate_content"}


def test_conversations_and_providers(lines):
    multi_turn = {"openai-conversation": 3, "anthropic-conversation-h2": 3, "openai-tools": 2,
                  "anthropic-tools-h2": 2}
    for name in TRUTH:
        convs = [x["conversation_id"] for x in _of(lines, name)]
        if name in multi_turn:
            assert len(convs) == multi_turn[name] and len(set(convs)) == 1, name
    owners = {}
    for x in lines:  # a conversation never spans two processes
        assert owners.setdefault(x["conversation_id"], x["pid"]) == x["pid"]
    # single calls of the chat scenario (the same request twice) stay apart
    chat = [x["conversation_id"] for x in _of(lines, "openai-chat")]
    assert len(set(chat)) == len(chat)
    assert {x["provider"] for x in lines} == {"openai-compatible", "anthropic", "google"}


def test_any_chunking_gives_the_same_lines(events, lines):
    assert replay(list(rechunk(events, 61))) == lines

