"""A conversation or a call as a Markdown transcript, for a human (a bug report, a note).

A chat request resends the whole history, so printing every request in full would repeat the
first message once per turn. The transcript shows the history once: the first call's messages
in full, then for each later call only what it adds beyond the previous call's messages and
reply. When a call does not extend the previous one that way, all its messages are shown.

Captured text is untrusted: message bodies go into fenced blocks whose fence is longer than any
backtick run inside them, and text placed inline (titles, names) is escaped, so no content can
break out of its place in the document.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from .. import __version__
from ..providers.events import Exchange
from ..providers.model import LlmRequest, Message, ToolCall, Usage
from ..store import ConversationView, ExchangeView, Tally

_BACKTICKS = re.compile(r"`+")
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_ROLES = {"system": "System", "developer": "Developer", "user": "User", "assistant": "Assistant",
          "tool": "Tool result"}


# -- Markdown building blocks -----------------------------------------------------------------
def fence(text: str, lang: str = "text") -> str:
    """A fenced code block that no content can close early."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    f = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{f}{lang}\n{body}{f}\n"


def inline(text: str) -> str:
    """Text for a heading or a list item: one line, Markdown punctuation escaped."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def code(text: str) -> str:
    """An inline code span, delimited by more backticks than the text contains."""
    text = " ".join(text.split())
    n = max((len(m) for m in _BACKTICKS.findall(text)), default=0) + 1
    pad = " " if text.startswith("`") or text.endswith("`") or n > 1 else ""
    return f"{'`' * n}{pad}{text}{pad}{'`' * n}"


def quote(text: str) -> str:
    """A block quote: every line prefixed, so the quote cannot end early."""
    return "".join(f"> {line}".rstrip() + "\n" for line in text.splitlines() or [""])


def _json_block(text: str, pretty: bool = True) -> str:
    """A block marked as JSON when the text parses (pretty-printed if asked), else as it came."""
    try:
        value = json.loads(text)
        if pretty:
            text = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):  # RecursionError: nested deeper than json goes
        return fence(text)
    return fence(text, "json")


# -- numbers and times ------------------------------------------------------------------------
def when(ns: int) -> str:
    try:
        dt = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):  # a time no calendar holds (a damaged recording)
        return f"{ns} ns since the epoch"
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d} UTC"


def money(usd: float | None) -> str:
    if usd is None:
        return "— (no known price)"
    if usd >= 1:
        return f"${usd:,.2f}"
    return "$" + (f"{usd:.6f}".rstrip("0").rstrip(".") or "0")


def _n(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def _used(u: Usage) -> bool:
    return bool(u.input_tokens or u.output_tokens)


def tokens(u: Usage) -> str:
    if u.input_tokens is None and u.output_tokens is None:
        return "unknown"
    s = f"{_n(u.input_tokens)} in / {_n(u.output_tokens)} out"
    extra = [f"{label} {v:,}" for label, v in (("cache read", u.cache_read_tokens),
                                               ("cache write", u.cache_write_tokens),
                                               ("reasoning", u.reasoning_tokens)) if v]
    if extra:
        s += f" ({', '.join(extra)})"
    return s + (" (estimated)" if u.source == "estimated" else "")


def totals(t: Tally) -> list[str]:
    """Bullet lines for a conversation's tally."""
    calls = f"- Calls: {t.calls}"
    if t.errors:
        calls += f" ({t.errors} failed)"
    if t.in_flight:
        calls += f" ({t.in_flight} in flight)"
    cost = money(t.cost_usd) if t.cost_usd or not t.cost_unknown else money(None)
    if t.cost_unknown and t.cost_usd:
        cost = f"at least {cost} ({t.cost_unknown} calls without a known price)"
    return [calls, f"- Tokens: {t.input_tokens:,} in / {t.output_tokens:,} out", f"- Cost: {cost}"]


# -- messages ---------------------------------------------------------------------------------
def _canon_args(args: str) -> str:
    try:
        return json.dumps(json.loads(args), sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        return args.strip()


def _key(m: Message) -> tuple:
    """What makes two messages the same turn: clients re-serialise tool arguments when echoing."""
    calls = tuple((c.name, _canon_args(c.arguments)) for c in m.tool_calls)
    return (m.role, m.text.strip(), calls, m.tool_call_id if m.role == "tool" else "")


def new_messages(prev: Exchange | None, req: LlmRequest) -> tuple[tuple[Message, ...], bool]:
    """The messages of `req` not already shown with `prev`, and whether `req` extends `prev`."""
    msgs = req.messages
    if prev is None or prev.request is None:
        return msgs, False
    before = prev.request.messages
    if len(msgs) <= len(before) or [_key(m) for m in msgs[:len(before)]] != [_key(m) for m in before]:
        return msgs, False
    rest = msgs[len(before):]
    resp = prev.response
    if rest and resp is not None and _key(rest[0]) == _key(Message("assistant", resp.text, resp.tool_calls)):
        rest = rest[1:]  # the previous reply, echoed back: shown already as that call's reply
    return rest, True


def _tool_calls(calls: tuple[ToolCall, ...]) -> list[str]:
    out = []
    for c in calls:
        ident = f" ({code(c.id)})" if c.id else ""
        out += [f"**Tool call** {code(c.name or '?')}{ident}\n", _json_block(c.arguments or "")]
    return out


def message(m: Message) -> list[str]:
    label = f"**{_ROLES.get(m.role, inline(m.role.capitalize() or '?'))}**"
    if m.role == "tool" and m.tool_call_id:
        label += f" ({code(m.tool_call_id)})"
    out = [label + "\n"]
    if m.thinking:
        out += ["*Thinking sent back:*\n", quote(m.thinking)]
    if m.text or not (m.tool_calls or m.thinking):
        out.append(_json_block(m.text, pretty=False) if m.role == "tool" else fence(m.text))
    return out + _tool_calls(m.tool_calls)


# -- calls ------------------------------------------------------------------------------------
def _status(v: ExchangeView) -> str:
    x = v.exchange
    if v.in_flight:
        s = "in flight"
    else:
        s = str(x.status) if x.status is not None else "no response"
    if x.response is not None and x.response.finish_reason:
        s += f" · finish: {inline(x.response.finish_reason)}"
    if x.error:
        s += " · failed"
    return s


def call_facts(v: ExchangeView) -> list[str]:
    x = v.exchange
    t = x.timing
    ttft = "—" if t.ttft_ms is None else f"{t.ttft_ms:,.1f} ms"
    facts = [f"- Status: {_status(v)}", f"- Tokens: {tokens(x.usage)}",
             f"- Cost: {money(x.cost_usd) if x.is_llm and (x.cost_usd is not None or _used(x.usage)) else '—'}",
             f"- Time to first token: {ttft} · duration: {t.duration_ms:,.1f} ms",
             f"- Endpoint: {inline(x.method)} {code(x.host + x.path)} (HTTP/{x.http_version}"
             f"{', ' + inline(x.api) if x.api else ''})"]
    resp = x.response
    if resp is not None and resp.response_model and resp.response_model != x.model:
        facts.append(f"- Response model: {inline(resp.response_model)}")
    if x.request is not None and x.request.params:
        facts.append(f"- Parameters: {code(json.dumps(x.request.params, ensure_ascii=False))}")
    if x.problem:
        facts.append(f"- Note: {inline(x.problem)}")
    return facts


def call(v: ExchangeView, prev: Exchange | None = None, title: str | None = None) -> list[str]:
    """One call's section; with `prev`, only what it adds to the previous call of its conversation."""
    x = v.exchange
    head = title or f"Call {x.id}"
    out = [f"## {inline(head)} · {inline(x.model or x.provider or 'HTTP')} · {when(x.timing.ts_start)}\n",
           "\n".join(call_facts(v)) + "\n"]
    req = x.request
    if req is not None:
        out.append("### Prompt\n")
        before = prev.request if prev is not None else None
        if req.system and (before is None or before.system != req.system):
            out += ["**System**" + (" (changed)" if before is not None else "") + "\n", fence(req.system)]
        if req.tools and (before is None or before.tools != req.tools):
            out.append("**Tools offered:** " + ", ".join(code(t) for t in req.tools) + "\n")
        msgs, extends = new_messages(prev, req)
        if prev is not None and not extends and not req.previous_response_id and len(msgs) > 1:
            out.append("*These messages do not extend the previous call's history: all are shown.*\n")
        if prev is not None and extends and not msgs:
            out.append("*No new messages.*\n")
        for m in msgs:
            out += message(m)
    resp = x.response
    if resp is not None:
        out.append("### Reply" + (" (so far)" if v.in_flight else "") + "\n")
        if resp.reasoning:
            out += ["**Reasoning**\n", quote(resp.reasoning)]
        if resp.text:
            out += ["**Assistant**\n", fence(resp.text)]
        out += _tool_calls(resp.tool_calls)
        if resp.error:
            out += ["**Error**\n", fence(resp.error)]
        if not (resp.reasoning or resp.text or resp.tool_calls or resp.error):
            out.append("*(empty)*\n")
    return out


def _footer(show_secrets: bool) -> str:
    masked = "credentials shown (--show-secrets)" if show_secrets else "credentials masked"
    return f"---\n*Exported by llmspy-tui {__version__}; {masked}.*\n"


def conversation(conv: ConversationView, views: list[ExchangeView], process: str,
                 show_secrets: bool = False) -> str:
    out = [f"# Conversation {inline(conv.id)}: {inline(conv.title)}\n",
           "\n".join([f"- Process: {inline(process or '?')} (pid {conv.pid})",
                      f"- Models: {', '.join(inline(m) for m in conv.models) or '—'}",
                      *totals(conv.tally),
                      f"- Time: {when(conv.first_ts)} to {when(conv.last_ts)}"]) + "\n"]
    if conv.tally.calls > len(views):
        out.append(f"*Only the last {len(views)} of {conv.tally.calls} calls were still kept in "
                   "memory; the totals count all of them.*\n")
    prev: Exchange | None = None
    for v in views:
        out += call(v, prev)
        prev = v.exchange
    out.append(_footer(show_secrets))
    return "\n".join(out)


def single_call(v: ExchangeView, show_secrets: bool = False) -> str:
    x = v.exchange
    where = f" in conversation {inline(v.conversation_id)}" if v.conversation_id else ""
    lines = [f"# Call {inline(x.id)}{where}\n",
             f"- Process: {inline(v.comm or '?')} (pid {x.pid})\n"]
    return "\n".join(lines + call(v, None, title=f"Call {x.id}") + [_footer(show_secrets)])
