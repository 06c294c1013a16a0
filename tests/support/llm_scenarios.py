"""LLM client scenarios shared by the live test and the golden recorder, and the comparison of
what a client received with the monitor's exchange lines."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from harness import run_client

CLIENTS = Path(__file__).resolve().parent / "clients"

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


def run_sdk(script: str, scenario: str, http2: bool, port: int, cert: Path) -> dict:
    cmd = [sys.executable, str(CLIENTS / script), "--port", str(port), "--ca", str(cert), "--scenario", scenario]
    cp = run_client(cmd + (["--http2"] if http2 else []))
    return {"pid": cp.pid, "calls": json.loads(cp.stdout)["calls"]}


def run_curl_gemini(port: int, cert: Path, work: Path) -> dict:
    req = work / "gemini.json"
    req.write_text(json.dumps(GEMINI_REQ))
    out = work / "gemini.sse"
    cp = run_client([shutil.which("curl"), "--http2", "-sS", "-N", "--cacert", str(cert), "-o", str(out),
                     "-H", "content-type: application/json", "-H", "x-goog-api-key: AIzaTESTSECRET0123456789",
                     "--data-binary", f"@{req}",
                     f"https://localhost:{port}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"])
    return {"pid": cp.pid, "body": out.read_bytes()}


def run_node(port: int, cert: Path) -> dict:
    cp = run_client([shutil.which("node"), str(CLIENTS / "node_llm.mjs"), str(port)],
                    env={"NODE_EXTRA_CA_CERTS": str(cert)})
    return {"pid": cp.pid, "calls": json.loads(cp.stdout)["calls"]}


def usage_expected(api: str, u: dict) -> dict:
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


def compare(call: dict, x: dict) -> list[str]:
    problems = []

    def same(what, want, got):
        if want != got:
            problems.append(f"{x['id']} {what}: client {want!r} != monitor {got!r}")

    same("status", call["status"], x["status"])
    same("role", "client", x["role"])
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
    want = usage_expected(call["api"], call["usage"])
    same("usage", want, {k: x["usage"][k] for k in want})
    same("usage source", "reported", x["usage"]["source"])
    same("complete", True, x["complete"])
    if not x["complete"]:
        problems.append(f"{x['id']} problem: {x['problem']}")
    if x["cost_usd"] is None or x["cost_usd"] <= 0:
        problems.append(f"{x['id']} has no cost for {x['model']}")
    return problems


def match_calls(calls: list[dict], seen: list[dict]) -> list[str]:
    """Problems found pairing a client's calls with the exchange lines of its process."""
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
        problems += compare(call, x)
    return problems


def sse_objects(body: bytes) -> list[dict]:
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data and data[0] != b"[DONE]":
            out.append(json.loads(b"\n".join(data)))
    return out
