"""One exchange as a JSON-ready dict: the headless line format, also used by exports.

Header values appear only when asked for, and then with credentials masked unless the user
passed --show-secrets. Timestamps are seconds since the epoch; durations are milliseconds.
"""

from __future__ import annotations

from ..providers.model import Message, ToolCall
from ..redact import redact_headers
from ..store import ExchangeView


def _calls(calls: tuple[ToolCall, ...]) -> list[dict]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def _message(m: Message) -> dict:
    d: dict = {"role": m.role, "text": m.text}
    if m.tool_calls:
        d["tool_calls"] = _calls(m.tool_calls)
    if m.tool_call_id:
        d["tool_call_id"] = m.tool_call_id
    if m.thinking:
        d["thinking"] = m.thinking
    return d


def exchange_record(v: ExchangeView, headers: bool = False, show_secrets: bool = False) -> dict:
    x = v.exchange
    req, resp = x.request, x.response
    d = {
        "type": "exchange",
        "id": x.id,
        "conversation_id": v.conversation_id,
        "ts_start": x.timing.ts_start / 1e9,
        "ts_end": x.timing.ts_end / 1e9,
        "pid": x.pid,
        "role": x.role,
        "comm": v.comm,
        "exe": v.exe,
        "host": x.host,
        "method": x.method,
        "path": x.path,
        "http_version": x.http_version,
        "status": x.status,
        "provider": x.provider,
        "api": x.api,
        "model": req.model if req else None,
        "response_model": resp.response_model if resp else None,
        "stream": req.stream if req else None,
        "request": None if req is None else {
            "system": req.system,
            "messages": [_message(m) for m in req.messages],
            "tools": list(req.tools),
            "params": req.params,
            **({"previous_response_id": req.previous_response_id} if req.previous_response_id else {}),
        },
        "response": None if resp is None else {
            "id": resp.response_id,
            "text": resp.text,
            "reasoning": resp.reasoning,
            "tool_calls": _calls(resp.tool_calls),
            "finish_reason": resp.finish_reason,
            "error": resp.error,
        },
        "usage": x.usage.to_json() if x.is_llm else None,
        "cost_usd": x.cost_usd,
        "timing": {"ttft_ms": x.timing.ttft_ms, "duration_ms": x.timing.duration_ms},
        "complete": x.complete,
        "problem": x.problem or None,
        "in_flight": v.in_flight,
    }
    if headers:
        d["request_headers"] = redact_headers(x.request_headers, show_secrets)
        d["response_headers"] = redact_headers(x.response_headers, show_secrets)
    return d
