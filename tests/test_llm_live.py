"""As root: the real monitor (`--headless`, exchange lines) watching real LLM clients.

The official openai and anthropic SDKs (HTTP/1.1, and HTTP/2 with concurrent streams),
`curl --http2` and Node's fetch talk to the loopback TLS server in each provider's wire format.
Each exchange line must match what the client itself received: text, tool calls, usage, finish
reason, status and error. Multi-turn scenarios must share one conversation_id, and replaying the
recording must print the very same lines.
"""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest
from conftest import REPO, require_bpf
from harness import Monitor, TlsServer
from llm_scenarios import (
    SDK_SCENARIOS,
    match_calls,
    run_curl_gemini,
    run_node,
    run_sdk,
    sse_objects,
)


@pytest.fixture(scope="module")
def live(tls_cert, tmp_path_factory):
    require_bpf()
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("llm")
    server = TlsServer(cert, key, work / "server")
    mon = Monitor(work, mode=())
    try:
        results = {name: run_sdk(script, scen, h2, server.port, cert) for name, script, scen, h2 in SDK_SCENARIOS}
        results["curl-gemini-h2"] = run_curl_gemini(server.port, cert, work)
        results["node-fetch"] = run_node(server.port, cert)
    finally:
        server.stop()
        rc = mon.stop()
    assert rc == 0, mon.stderr
    out = mon.out_path.read_bytes()
    lines = [orjson.loads(line) for line in out.splitlines()]
    return {"results": results, "lines": lines, "raw": out, "mon": mon}


def _of(live, name: str) -> list[dict]:
    pid = live["results"][name]["pid"]
    return sorted((x for x in live["lines"] if x["pid"] == pid), key=lambda x: x["ts_start"])


@pytest.mark.bpf
@pytest.mark.parametrize("name", [s[0] for s in SDK_SCENARIOS])
def test_sdk_calls_match_what_the_client_received(live, name):
    calls = live["results"][name]["calls"]
    seen = _of(live, name)
    assert len(seen) == len(calls), (name, [x["path"] for x in seen], live["mon"].stderr[-3000:])
    problems = match_calls(calls, seen)
    assert not problems, problems
    h2 = name.endswith("-h2")
    assert {x["http_version"] for x in seen} == {"2" if h2 else "1.1"}
    assert {x["provider"] for x in seen} == {"openai-compatible" if name.startswith("openai") else "anthropic"}
    assert all(x["comm"] == "python" or x["comm"].startswith("python") for x in seen), {x["comm"] for x in seen}
    print(f"\n{name}: {len(seen)} calls match the client; cost ${sum(x['cost_usd'] or 0 for x in seen):.6f}")


@pytest.mark.bpf
@pytest.mark.parametrize("name,turns", [("openai-conversation", 3), ("anthropic-conversation-h2", 3),
                                        ("openai-tools", 2), ("anthropic-tools-h2", 2)])
def test_multi_turn_calls_share_one_conversation(live, name, turns):
    seen = _of(live, name)
    assert len(seen) == turns
    assert len({x["conversation_id"] for x in seen}) == 1, [x["conversation_id"] for x in seen]
    others = {x["conversation_id"] for x in live["lines"] if x["pid"] != live["results"][name]["pid"]}
    assert seen[0]["conversation_id"] not in others


@pytest.mark.bpf
def test_concurrent_http2_streams_share_a_connection(live):
    seen = [x for x in _of(live, "openai-concurrent-h2") if x["path"].endswith("/chat/completions")]
    assert len(seen) >= 4
    # four streams in flight at once: each started before another ended
    assert sum(1 for a in seen for b in seen if a is not b and a["ts_start"] < b["ts_end"] and b["ts_start"] < a["ts_end"]) > 0
    assert len({x["conversation_id"] for x in seen}) == len(seen)  # unrelated calls never merge


@pytest.mark.bpf
def test_big_system_prompt_whole(live):
    seen = _of(live, "anthropic-big-system")
    assert all(len(x["request"]["system"]) >= 80_000 for x in seen), [len(x["request"]["system"]) for x in seen]
    assert all(x["complete"] for x in seen)


@pytest.mark.bpf
def test_curl_gemini_sse_over_http2(live):
    (x,) = _of(live, "curl-gemini-h2")
    chunks = sse_objects(live["results"]["curl-gemini-h2"]["body"])
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
                   if not p.get("thought"))
    u = chunks[-1]["usageMetadata"]
    assert (x["provider"], x["api"], x["http_version"], x["model"]) == ("google", "google.generate_content", "2",
                                                                        "gemini-2.5-flash")
    assert x["request"]["system"] == "Answer briefly." and x["response"]["text"] == text and text
    assert x["usage"]["input_tokens"] == u["promptTokenCount"]
    assert x["usage"]["output_tokens"] == u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0)
    assert x["usage"]["source"] == "reported" and x["cost_usd"] > 0
    assert "AIzaTESTSECRET" not in live["raw"].decode()


@pytest.mark.bpf
def test_node_fetch_calls(live):
    calls = live["results"]["node-fetch"]["calls"]
    seen = _of(live, "node-fetch")
    assert len(seen) == len(calls) and all(x["complete"] for x in seen)
    for call, x in zip(calls, seen, strict=True):
        assert x["status"] == call["status"] == 200
        body = call["body"].encode()
        if call["content_type"].startswith("text/event-stream"):
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in sse_objects(body) if c["choices"])
        else:  # Gemini's streamed JSON array
            text = "".join(p.get("text", "") for c in json.loads(body) for p in c["candidates"][0]["content"]["parts"]
                           if not p.get("thought"))
        assert x["response"]["text"] == text and text


@pytest.mark.bpf
def test_replay_prints_the_same_lines(live):
    cp = subprocess.run([sys.executable, "-m", "llmspy_tui", "--headless", "--replay", str(live["mon"].record)],
                        capture_output=True, cwd=str(REPO), timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == live["raw"]
    assert b"sk-test" not in cp.stdout and b"sk-ant" not in cp.stdout
