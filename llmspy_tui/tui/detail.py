"""Call detail: Prompt, Response (grows while the call streams), Tools, Raw, Timing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane, TextArea

from ..providers.model import Message
from ..store import ExchangeView, Snapshot
from . import fmt
from .base import MonitorScreen
from .render import (cut, raw_text, summary_text, timing_text, tool_call_text, tool_definition_text,
                     tool_definitions)

TABS = ("prompt", "response", "tools", "raw", "timing")


def _block(text: str | Text, role: str, title: str) -> Static:
    """A bordered message block; the border carries the role's colour and the title."""
    w = Static(text if isinstance(text, Text) else Text(text), classes=f"msg role-{role}")
    w.border_title = title
    return w


def _message_blocks(m: Message) -> list[Static]:
    role = m.role if m.role in ("system", "user", "assistant", "tool") else "user"
    title = m.role + (f" · result of {m.tool_call_id}" if m.tool_call_id else "")
    out = []
    if m.thinking:
        out.append(_block(cut(m.thinking), "thinking", f"{m.role} · thinking"))
    if m.text or not m.tool_calls:
        out.append(_block(cut(m.text) if m.text else "(empty)", role, title))
    for c in m.tool_calls:
        out.append(_block(cut(tool_call_text(c)), "tool", f"{m.role} · tool call"))
    return out


class CallScreen(MonitorScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("e", "export", "Export"),
        Binding("left_square_bracket", "step(-1)", "Prev call"),
        Binding("right_square_bracket", "step(1)", "Next call"),
        *[Binding(str(i + 1), f"tab('{name}')", name.title(), show=False) for i, name in enumerate(TABS)],
    ]

    def __init__(self, exchange_id: str) -> None:
        super().__init__()
        self.xid = exchange_id
        self._shown: dict[str, object] = {}  # per part: what it was last rendered from

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary")
        with TabbedContent(initial="response", id="tabs"):
            with TabPane("Prompt", id="prompt"):
                yield VerticalScroll(id="prompt-body")
            with TabPane("Response", id="response"):
                with VerticalScroll(id="response-body"):
                    yield Static(id="resp-reasoning", classes="msg role-thinking")
                    yield Static(id="resp-text", classes="msg role-assistant")
                    yield Static(id="resp-tools", classes="msg role-tool")
            with TabPane("Tools", id="tools"):
                yield VerticalScroll(id="tools-body")
            with TabPane("Raw", id="raw"):
                yield TextArea(id="raw-text", read_only=True, soft_wrap=True, show_line_numbers=False)
            with TabPane("Timing", id="timing"):
                yield VerticalScroll(Static(id="timing-text"))

    def on_mount(self) -> None:
        self.query_one("#resp-reasoning", Static).border_title = "thinking"
        self.query_one("#resp-tools", Static).border_title = "tool calls"
        super().on_mount()

    def view(self) -> ExchangeView | None:
        snap = self.app.snapshot
        return snap.exchanges.get(self.xid) if snap else None

    def crumb(self) -> str:
        v = self.view()
        if v is None:
            return f"Processes › call {self.xid} (no longer kept: the store evicted it)"
        conv = v.conversation_id or "—"
        return f"Processes › {v.comm or '?'} ({v.exchange.pid}) › {conv} › {self.xid} — 1-5 switch tabs"

    def show_body(self, snap: Snapshot) -> None:
        v = snap.exchanges.get(self.xid)
        if self.app.follow:
            newest = self._neighbour(snap, None)
            if newest is not None and newest != self.xid:
                self.switch_to(newest)
                return
        if v is None:
            self.query_one("#summary", Static).update(Text("This call is no longer kept (evicted by the store's bounds)."))
            return
        if self._changed("summary", v):
            self.query_one("#summary", Static).update(summary_text(v, self.app.palette))
        if self._changed("prompt", v.exchange.request):
            self._show_prompt(v)
        resp = v.exchange.response
        if self._changed("response", (resp, v.in_flight, self.app.palette)):
            self._show_response(v)
        if self._changed("tools", (v.exchange.request, resp.tool_calls if resp else ())):
            self._show_tools(v)
        if self._changed("raw", (v.in_flight, v.exchange.status, len(v.exchange.response_body))):
            area = self.query_one("#raw-text", TextArea)
            area.load_text(raw_text(v.exchange, v.in_flight, self.app.show_secrets))
        if self._changed("timing", v.exchange.timing):
            self.query_one("#timing-text", Static).update(timing_text(v.exchange, v.in_flight))

    def _changed(self, part: str, value: object) -> bool:
        old = self._shown.get(part, self._shown)
        if old is not self._shown and (old is value or old == value):
            return False
        self._shown[part] = value
        return True

    def _show_prompt(self, v: ExchangeView) -> None:
        body = self.query_one("#prompt-body", VerticalScroll)
        body.remove_children()
        req = v.exchange.request
        blocks: list[Static] = []
        if req is None:
            blocks.append(Static(Text("No request seen (the monitor joined after it was sent)."), classes="note"))
        else:
            if req.system:
                blocks.append(_block(cut(req.system), "system", "system"))
            for m in req.messages:
                blocks.extend(_message_blocks(m))
            if req.params:
                params = "  ".join(f"{k}={v}" for k, v in req.params.items())
                blocks.append(Static(Text(f"parameters: {params}", style="dim"), classes="note"))
            if req.tools:
                blocks.append(Static(Text(f"{len(req.tools)} tool definitions: see the Tools tab", style="dim"),
                                     classes="note"))
        body.mount_all(blocks)

    def _show_response(self, v: ExchangeView) -> None:
        x = v.exchange
        r = x.response
        scroll = self.query_one("#response-body", VerticalScroll)
        at_end = scroll.scroll_y >= scroll.max_scroll_y - 1
        reasoning = self.query_one("#resp-reasoning", Static)
        text = self.query_one("#resp-text", Static)
        tools = self.query_one("#resp-tools", Static)
        reasoning.display = bool(r and r.reasoning)
        if r and r.reasoning:
            reasoning.update(Text(cut(r.reasoning, 200_000)))
        body = Text(cut(r.text, 500_000) if r and r.text else "")
        if v.in_flight:
            body.append("▌", style=f"blink {self.app.palette['streaming']}")
            text.border_title = f"assistant · streaming ({fmt.tokens(x.usage.output_tokens)} tokens so far)"
            text.add_class("streaming")
        else:
            text.remove_class("streaming")
            text.border_title = "assistant" + (f" · {r.finish_reason}" if r and r.finish_reason else "")
            if x.error:
                body = Text(f"error: {x.error}", style=f"bold {self.app.palette['error']}")
            elif not body.plain and not (r and r.tool_calls):
                body = Text("(no text)" if r is not None else "(no response)", style="dim")
        text.display = bool(body.plain) or not (r and r.tool_calls)
        text.update(body)
        tools.display = bool(r and r.tool_calls)
        if r and r.tool_calls:
            tools.update(Text("\n\n".join(tool_call_text(c) for c in r.tool_calls)))
        if at_end and v.in_flight:
            scroll.call_after_refresh(scroll.scroll_end, animate=False)

    def _show_tools(self, v: ExchangeView) -> None:
        body = self.query_one("#tools-body", VerticalScroll)
        body.remove_children()
        req, resp = v.exchange.request, v.exchange.response
        blocks: list[Static] = []
        if req is not None and req.tools:
            for t in tool_definitions(v.exchange):
                blocks.append(_block(cut(tool_definition_text(t)), "system", "tool definition"))
        results = {m.tool_call_id: m for m in (req.messages if req else ()) if m.tool_call_id}
        for m in req.messages if req else ():
            for c in m.tool_calls:
                blocks.append(_block(cut(tool_call_text(c)), "tool", "earlier call"))
                res = results.get(c.id)
                if res is not None:
                    blocks.append(_block(cut(res.text), "user", f"result of {c.id}"))
        for c in resp.tool_calls if resp else ():
            blocks.append(_block(cut(tool_call_text(c)), "assistant", "called in this response"))
        if not blocks:
            blocks.append(Static(Text("No tools in this call.", style="dim"), classes="note"))
        body.mount_all(blocks)

    # -- actions --------------------------------------------------------------------------------
    def _neighbour(self, snap: Snapshot, step: int | None) -> str | None:
        """The call `step` places away in the same conversation; None = the newest one."""
        v = snap.exchanges.get(self.xid)
        conv = snap.conversations.get(v.conversation_id) if v and v.conversation_id else None
        if conv is None:
            return None
        ids = conv.exchange_ids
        if step is None:
            return ids[-1] if ids else None
        i = ids.index(self.xid) + step if self.xid in ids else -1
        return ids[i] if 0 <= i < len(ids) else None

    def switch_to(self, xid: str) -> None:
        self.xid = xid
        self._shown.clear()
        self.refresh_from_app()

    def action_step(self, step: int) -> None:
        snap = self.app.snapshot
        target = self._neighbour(snap, step) if snap else None
        if target is None:
            self.notify("No earlier call in this conversation" if step < 0 else "No later call yet", timeout=2)
        else:
            self.switch_to(target)

    def action_tab(self, name: str) -> None:
        self.query_one("#tabs", TabbedContent).active = name

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_export(self) -> None:
        v = self.view()
        self.app.open_export(conversation_id=v.conversation_id if v else None, exchange_id=self.xid)
