"""As root: the real monitor (`--headless`, exchange lines) watching real LLM clients.

The official openai and anthropic SDKs (HTTP/1.1, and HTTP/2 with concurrent streams),
`curl --http2` and Node's fetch talk to the loopback TLS server in each provider's wire format.
Each exchange line must match what the client itself received: text, tool calls, usage, finish
reason, status and error. Multi-turn scenarios must share one conversation_id, and replaying the
recording must print the very same lines.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conftest import REPO, require_bpf
from harness import Monitor, TlsServer, run_client

CLIENTS = Path(__file__).resolve().parent / "support" / "clients"

SDK_SCENARIOS = [  # (name, script, scenario, http2)
    ("openai-chat", "openai_sdk.py", "chat", False),
    ("openai-tools", "openai_sdk.py", "tools", False),
    ("openai-responses", "openai_sdk.py", "responses", False),
    ("openai-conversation", "openai_sdk.py", "conversation", False),
    ("openai-concurrent-h2", "openai_sdk.py", "concurrent", True),
    ("openai-error", "openai_sdk.py", "error", False),
    ("openai-reasoning-h2", "openai_sdk.py", "reasoning", True),
    ("anthropic-messages", "anthropic_sdk.py", "messages", False),
    ("anthropic-tools-h2", "anthropic_sdk.py", "tools", True),
    ("anthropic-thinking", "anthropic_sdk.py", "thinking", False),
    ("anthropic-conversation-h2", "anthropic_sdk.py", "conversation", True),
    ("anthropic-error", "anthropic_sdk.py", "error", False),
    ("anthropic-big-system", "anthropic_sdk.py", "big_system", False),
]
GEMINI_REQ = {"systemInstruction": {"parts": [{"text": "Answer briefly."}]},
              "contents": [{"role": "user", "parts": [{"text": "What does curl --http2 do?"}]}]}


def _run_sdk(script: str, scenario: str, http2: bool, port: int, cert: Path) -> dict:
    cmd = [sys.executable, str(CLIENTS / script), "--port", str(port), "--ca", str(cert), "--scenario", scenario]
    cp = run_client(cmd + (["--http2"] if http2 else []))
    return {"pid": cp.pid, "calls": json.loads(cp.stdout)["calls"]}


def _run_curl_gemini(port: int, cert: Path, work: Path) -> dict:
    req = work / "gemini.json"
    req.write_text(json.dumps(GEMINI_REQ))
    out = work / "gemini.sse"
    cp = run_client([shutil.which("curl"), "--http2", "-sS", "-N", "--cacert", str(cert), "-o", str(out),
                     "-H", "content-type: application/json", "-H", "x-goog-api-key: AIzaTESTSECRET0123456789",
                     "--data-binary", f"@{req}",
                     f"https://localhost:{port}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"])
    return {"pid": cp.pid, "body": out.read_bytes()}


def _run_node(port: int, cert: Path) -> dict:
    cp = run_client([shutil.which("node"), str(CLIENTS / "node_llm.mjs"), str(port)],
                    env={"NODE_EXTRA_CA_CERTS": str(cert)})
    return {"pid": cp.pid, "calls": json.loads(cp.stdout)["calls"]}


@pytest.fixture(scope="module")
def live(tls_cert, tmp_path_factory):
    require_bpf()
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("llm")
    server = TlsServer(cert, key, work / "server")
    mon = Monitor(work, mode=())
    try:
        results = {name: _run_sdk(script, scen, h2, server.port, cert) for name, script, scen, h2 in SDK_SCENARIOS}
        results["curl-gemini-h2"] = _run_curl_gemini(server.port, cert, work)
        results["node-fetch"] = _run_node(server.port, cert)
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


def _usage_expected(api: str, u: dict) -> dict:
    """The client's usage object in the monitor's one convention (README: usage)."""
    if api == "chat.completions":
        return {"input_tokens": u["prompt_tokens"], "output_tokens": u["completion_tokens"],
                "cache_read_tokens": (u.get("prompt_tokens_details") or {}).get("cached_tokens"),
                "reasoning_tokens": (u.get("completion_tokens_details") or {}).get("reasoning_tokens")}
    if api == "responses":
        return {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
                "cache_read_tokens": (u.get("input_tokens_details") or {}).get("cached_tokens"),
                "reasoning_tokens": (u.get("output_tokens_details") or {}).get("reasoning_tokens")}
    read, write = u.get("cache_read_input_tokens") or 0, u.get("cache_creation_input_tokens") or 0
    return {"input_tokens": u["input_tokens"] + read + write, "output_tokens": u["output_tokens"],
            "cache_read_tokens": u.get("cache_read_input_tokens"),
            "cache_write_tokens": u.get("cache_creation_input_tokens")}


def _compare(call: dict, x: dict) -> list[str]:
    problems = []

    def same(what, want, got):
        if want != got:
            problems.append(f"{x['id']} {what}: client {want!r} != monitor {got!r}")

    same("status", call["status"], x["status"])
    # the Responses client records the answering model; the others the one asked for
    same("model", call["model"], x["response_model"] if call["api"] == "responses" else x["model"])
    same("stream", call["stream"], x["stream"])
    if call["status"] >= 400:
        if not x["response"]["error"] or call["error"] not in x["response"]["error"]:
            problems.append(f"{x['id']} error: {call['error']!r} not in {x['response']['error']!r}")
        return problems
    same("text", call["text"], x["response"]["text"])
    if "thinking" in call:
        same("thinking", call["thinking"], x["response"]["reasoning"])
    same("tool calls", [(c["id"], c["name"], json.loads(c["arguments"])) for c in call["tool_calls"]],
         [(c["id"], c["name"], json.loads(c["arguments"])) for c in x["response"]["tool_calls"]])
    same("finish_reason", call["finish_reason"], x["response"]["finish_reason"])
    same("response id", call["response_id"], x["response"]["id"])
    want = _usage_expected(call["api"], call["usage"])
    same("usage", want, {k: x["usage"][k] for k in want})
    same("usage source", "reported", x["usage"]["source"])
    same("complete", True, x["complete"])
    if not x["complete"]:
        problems.append(f"{x['id']} problem: {x['problem']}")
    if x["cost_usd"] is None or x["cost_usd"] <= 0:
        problems.append(f"{x['id']} has no cost for {x['model']}")
    return problems


@pytest.mark.bpf
@pytest.mark.parametrize("name", [s[0] for s in SDK_SCENARIOS])
def test_sdk_calls_match_what_the_client_received(live, name):
    calls = live["results"][name]["calls"]
    seen = _of(live, name)
    assert len(seen) == len(calls), (name, [x["path"] for x in seen], live["mon"].stderr[-3000:])
    ids = [c["response_id"] for c in calls]
    problems = []
    if len(set(ids)) == len(ids):  # concurrent calls end in any order: pair them by response id
        by_id = {x["response"]["id"] if x["status"] < 400 else None: x for x in seen}
        errors = [x for x in seen if x["status"] >= 400]
        pairs = [(c, by_id.get(c["response_id"]) if c["status"] < 400 else errors.pop(0)) for c in calls]
    else:  # sequential calls (some repeat a request, so ids repeat): in order
        pairs = list(zip(calls, seen, strict=True))
    for call, x in pairs:
        if x is None:
            problems.append(f"no exchange with response id {call['response_id']}")
            continue
        problems += _compare(call, x)
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


def _sse_objects(body: bytes) -> list[dict]:
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data and data[0] != b"[DONE]":
            out.append(json.loads(b"\n".join(data)))
    return out


@pytest.mark.bpf
def test_curl_gemini_sse_over_http2(live):
    (x,) = _of(live, "curl-gemini-h2")
    chunks = _sse_objects(live["results"]["curl-gemini-h2"]["body"])
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
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in _sse_objects(body) if c["choices"])
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
