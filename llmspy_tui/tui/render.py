"""Plain renderings of an exchange for the detail tabs: summary, raw HTTP, timing, tools.

Kept apart from the widgets so they can be read (and tested) as text.
"""

from __future__ import annotations

import time

import orjson
from rich.text import Text

from ..providers.events import Exchange
from ..providers.model import ToolCall
from ..redact import redact_headers
from ..store import ExchangeView
from . import fmt

SHOWN_BODY = 1 << 20  # bytes of each body shown in Raw; the rest is in exports
SHOWN_TEXT = 20_000  # characters of one message shown in Prompt


def cut(text: str, limit: int = SHOWN_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… {len(text) - limit:,} more characters (export the call to see them all)"


def pretty_json(text: str) -> str:
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except (orjson.JSONDecodeError, TypeError):
        return text


def body_text(body: bytes, headers) -> str:
    if not body:
        return "(no body)"
    shown = body[:SHOWN_BODY]
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    text = shown.decode("utf-8", errors="replace")
    if "\ufffd" in text and text.count("\ufffd") > len(text) // 20:
        return f"({len(body):,} bytes of binary content)"
    if "json" in ctype and len(body) <= SHOWN_BODY:
        text = pretty_json(text)
    elif not ctype and text.lstrip().startswith(("{", "[")) and len(body) <= SHOWN_BODY:
        text = pretty_json(text)
    if len(body) > SHOWN_BODY:
        text += f"\n… {len(body) - SHOWN_BODY:,} more bytes (export the call to see them all)"
    return text


def raw_text(x: Exchange, in_flight: bool, show_secrets: bool) -> str:
    """Request and response as HTTP text: head, masked headers, decoded body, pretty JSON."""
    out = [f"{x.method} {x.path} HTTP/{x.http_version}", f"host: {x.host}"]
    for k, v in redact_headers(x.request_headers, show_secrets):
        if k.lower() != "host" and not k.startswith(":"):
            out.append(f"{k}: {v}")
    out += ["", body_text(x.request_body, x.request_headers), "", "─" * 40, ""]
    if x.status is None and in_flight:
        out.append("(waiting for the response)")
    elif x.status is None:
        out.append("(no response seen)")
    else:
        out.append(f"HTTP/{x.http_version} {x.status}")
        for k, v in redact_headers(x.response_headers, show_secrets):
            if not k.startswith(":"):
                out.append(f"{k}: {v}")
        out.append("")
        if in_flight:
            out.append("(streaming: the body appears here when the response ends; see Response)")
        else:
            out.append(body_text(x.response_body, x.response_headers))
    if x.body_truncated:
        out.append("\n(a body was longer than the monitor keeps: shown up to that limit)")
    return "\n".join(out)


def timing_text(x: Exchange, in_flight: bool) -> Text:
    t = x.timing
    rows: list[tuple[str, int | None]] = [
        ("request started", t.ts_start),
        ("request sent", t.ts_request_end),
        ("response head", t.ts_response_start),
        ("first token", t.ts_first_token),
        ("streaming…" if in_flight else "response ended", t.ts_end),
    ]
    out = Text()
    wall = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.ts_start / 1e9)) if t.ts_start else "—"
    out.append(f"Started {wall}.{(t.ts_start // 1_000_000) % 1000:03d}\n\n", style="bold")
    span = max(1, (t.ts_end or t.ts_start) - t.ts_start)
    width = 40
    for label, ts in rows:
        if ts is None:
            out.append(f"  {label:<16} {'—':>10}\n", style="dim")
            continue
        off = (ts - t.ts_start) / 1e6
        bar = int(width * (ts - t.ts_start) / span)
        out.append(f"  {label:<16} {'+' + fmt.ms(off):>10}  ")
        out.append("█" * bar + "▏", style="bold")
        out.append("\n")
    out.append("\n")
    phases = []
    if t.ts_request_end:
        phases.append(("upload", (t.ts_request_end - t.ts_start) / 1e6))
        if t.ts_response_start:
            phases.append(("waiting for the model", (t.ts_response_start - t.ts_request_end) / 1e6))
    if t.ttft_ms is not None:
        phases.append(("time to first token", t.ttft_ms))
        phases.append(("generation", (t.ts_end - t.ts_first_token) / 1e6))
    phases.append(("total", t.duration_ms))
    for label, value in phases:
        out.append(f"  {label:<24} {fmt.ms(value):>10}\n")
    out_tok = x.usage.output_tokens
    if out_tok and t.ts_first_token and t.ts_end > t.ts_first_token:
        rate = out_tok / ((t.ts_end - t.ts_first_token) / 1e9)
        out.append(f"  {'output rate':<24} {rate:>7.0f} tok/s\n")
    return out


def summary_text(v: ExchangeView, pal: dict[str, str]) -> Text:
    x = v.exchange
    u = x.usage
    out = Text(no_wrap=False)
    out.append(f"{x.id} ", style="bold")
    out.append(f"{v.comm or '?'} (pid {x.pid})")
    if x.role == "server":
        out.append(" [answering side]", style="dim")
    out.append(f"  {x.provider or 'HTTP'}{' · ' + x.api if x.api else ''}  ")
    model = x.model
    answered = x.response.response_model if x.response else None
    out.append(model or "?", style="bold")
    if answered and answered != model:
        out.append(f" → {answered}")
    req = x.request
    if req is not None:
        out.append("  stream" if req.stream else "  no stream", style="dim")
    out.append("\n")
    if v.in_flight:
        out.append("▶ streaming " if x.timing.ts_first_token else "… waiting ", style=f"bold {pal['streaming']}")
    elif x.error or (x.status or 0) >= 400:
        out.append(f"✗ {x.status or ''} {x.error or ''} ", style=f"bold {pal['error']}")
    elif not x.complete:
        out.append(f"⚠ {x.status or ''} incomplete ", style=pal["warning"])
    else:
        out.append(f"✓ {x.status} ", style=pal["success"])
        if x.response is not None and x.response.finish_reason:
            out.append(f"({x.response.finish_reason}) ")
    out.append(f" tokens {fmt.tokens(u.input_tokens)} in")
    if u.cache_read_tokens:
        out.append(f" ({fmt.tokens(u.cache_read_tokens)} cached)")
    if u.cache_write_tokens:
        out.append(f" ({fmt.tokens(u.cache_write_tokens)} written to cache)")
    out.append(f" / {fmt.tokens(u.output_tokens)} out")
    if u.reasoning_tokens:
        out.append(f" ({fmt.tokens(u.reasoning_tokens)} reasoning)")
    if u.source == "estimated":
        out.append(" (estimated)", style="dim")
    out.append(f"  cost {fmt.cost(x.cost_usd)}  ttft {fmt.ms(x.timing.ttft_ms)}  "
               f"{'elapsed' if v.in_flight else 'total'} {fmt.ms(x.timing.duration_ms)}")
    if x.problem and not v.in_flight:
        out.append(f"\n{x.problem}", style=pal["warning"])
    return out


def tool_call_text(c: ToolCall) -> str:
    return f"{c.name}  id={c.id or '—'}\n{pretty_json(c.arguments) if c.arguments else '(no arguments)'}"


def tool_definition_text(tool) -> str:
    """One tool definition from any provider's shape: name, description, parameters."""
    if not isinstance(tool, dict):
        return str(tool)
    decls = tool.get("functionDeclarations") or tool.get("function_declarations")
    if isinstance(decls, list):  # Gemini groups several functions in one tool
        return "\n\n".join(tool_definition_text(d) for d in decls)
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = fn.get("name") or tool.get("type") or "?"
    desc = fn.get("description") or ""
    params = fn.get("parameters") or fn.get("input_schema") or fn.get("parameters_json_schema")
    out = f"{name}" + (f" — {desc}" if desc else "")
    if params:
        out += "\n" + orjson.dumps(params, option=orjson.OPT_INDENT_2).decode()
    return out


def tool_definitions(x: Exchange) -> list:
    """The request's tool definitions as sent (name, description, schema), from its body; the
    parsed request keeps only their names. Falls back to those names."""
    names = list(x.request.tools) if x.request is not None else []
    if not x.request_body or len(x.request_body) > SHOWN_BODY * 4:
        return names
    try:
        body = orjson.loads(x.request_body)
    except (orjson.JSONDecodeError, TypeError):
        return names
    tools = (body.get("tools") or body.get("functions")) if isinstance(body, dict) else None
    if not isinstance(tools, list) or not tools:
        return names
    return tools
