"""The drill-down lists: Processes -> Conversations -> Calls, and the per-model totals."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from ..store import ExchangeView, Snapshot
from . import fmt
from .base import Column, ListScreen, Row


def _num(text: str) -> Text:
    return Text(text, justify="right")


def _status(v: ExchangeView, pal: dict[str, str]) -> Text:
    """The live status cell: grows while a response streams, then the HTTP status and a verdict."""
    x = v.exchange
    if v.in_flight:
        out = x.usage.output_tokens or 0
        if x.timing.ts_first_token is None:
            return Text("… waiting", style=f"italic {pal['streaming']}")
        return Text(f"▶ {out:,} tok", style=f"bold {pal['streaming']}")
    failed = bool(x.error) or (x.status or 0) >= 400
    label = str(x.status) if x.status is not None else "—"
    if failed:
        return Text(f"✗ {label}", style=f"bold {pal['error']}")
    if not x.complete:
        return Text(f"⚠ {label}", style=pal["warning"])
    return Text(f"✓ {label}", style=pal["success"])


def _preview(v: ExchangeView) -> str:
    x = v.exchange
    r = x.response
    if x.error:
        return f"error: {x.error}"
    if r is not None:
        if r.tool_calls:
            c = r.tool_calls[-1]
            more = f" (+{len(r.tool_calls) - 1})" if len(r.tool_calls) > 1 else ""
            return f"→ {c.name}({c.arguments}){more}" + (f" {r.text}" if r.text else "")
        if r.text:
            return r.text
        if r.reasoning:
            return f"(thinking) {r.reasoning}"
    return ""


def _last_user(v: ExchangeView) -> str:
    req = v.exchange.request
    if req is None:
        return ""
    for m in reversed(req.messages):
        if m.role in ("user", "tool") and (m.text or m.tool_call_id):
            return m.text
    return ""


def _with_filter(text: str, screen: ListScreen) -> str:
    text += f'   filter: "{screen.filter_text}"' if screen.filter_text else ""
    if screen.total_rows > screen.shown_rows:
        text += f"   (the {screen.shown_rows:,} most recent of {screen.total_rows:,}; / narrows)"
    return text


class ProcessesScreen(ListScreen):
    COLUMNS = (
        Column("pid", "PID", 7, numeric=True),
        Column("comm", "Process", 16),
        Column("providers", "Providers", flex=True),
        Column("calls", "Calls", 5, numeric=True),
        Column("live", "Live", 4, numeric=True),
        Column("in", "Tok in", 7, numeric=True),
        Column("out", "Tok out", 7, numeric=True),
        Column("cost", "Cost", 9, numeric=True),
        Column("err", "Err", 3, numeric=True, hide_below=110),
        Column("seen", "Seen", 8, numeric=True),
    )
    DEFAULT_SORT = (9, True)
    KEY_IS_PID = True

    def crumb(self) -> str:
        return _with_filter("Processes — enter: its conversations", self)

    _identity: dict[str, tuple[int, int]] = {}  # row key -> (pid, start time), set by rows()

    def rows(self, snap: Snapshot) -> list[Row]:
        now = self.app.now_ns()
        pal = self.app.palette
        out = []
        seen: set[int] = set()
        self._identity = {}
        for p in snap.processes:
            t = p.tally
            if not t.calls:  # only other HTTP: not an LLM client
                continue
            name = Text(fmt.one_line(p.comm or "?", 16))
            if p.exited:
                name.stylize("dim")
            if p.server:
                name.append(" srv", style="dim")
            providers = ", ".join(x for x in p.providers if x) or ("other HTTP" if p.other_http else "")
            live = _num(f"▶{t.in_flight}" if t.in_flight else "")
            if t.in_flight:
                live.stylize(f"bold {pal['streaming']}")
            cells = (
                _num(str(p.pid)), name, Text(fmt.one_line(providers, self._flex_width)),
                _num(str(t.calls)), live, _num(fmt.tokens(t.input_tokens)), _num(fmt.tokens(t.output_tokens)),
                _num(fmt.cost(t.cost_usd, t.cost_unknown)),
                _num(str(t.errors) if t.errors else ""), _num(fmt.age(p.last_ts, now)),
            )
            # recency to the second: busy processes do not swap places on every update
            sort = (p.pid, p.comm.lower(), providers, t.calls, t.in_flight, t.input_tokens, t.output_tokens,
                    t.cost_usd, t.errors, (p.last_ts // 1_000_000_000, -p.pid))
            search = f"{p.pid} {p.comm} {p.exe} {' '.join(p.cmdline)} {providers} {' '.join(p.models)}".lower()
            # a reused pid lists two processes: the first listed keeps the plain pid as its key
            key = str(p.pid) if p.pid not in seen else f"{p.pid}:{p.start_time}"
            seen.add(p.pid)
            self._identity[key] = (p.pid, p.start_time)
            out.append(Row(key, cells, sort, search, p.last_ts))
        return out

    def compose_body(self):
        yield from super().compose_body()
        yield Static(id="empty")

    def on_list_shown(self, rows: list[Row]) -> None:
        hint = self.query_one("#empty", Static)
        hint.display = not rows
        self.table.styles.height = "1fr" if rows else "auto"  # the hint right under the headings
        if not rows:
            hint.update(Text(self.app.empty_hint() if not self.filter_text
                             else f'No process matches the filter "{self.filter_text}" (escape clears it).'))

    def open(self, key: str) -> None:
        pid, start_time = self._identity.get(key, (int(key.partition(":")[0]), None))
        self.app.push_screen(ConversationsScreen(pid, start_time))


class ConversationsScreen(ListScreen):
    COLUMNS = (
        Column("id", "Conv", 5),
        Column("title", "First message", flex=True),
        Column("model", "Model", 16),
        Column("calls", "Calls", 6, numeric=True),
        Column("in", "Tok in", 7, numeric=True),
        Column("out", "Tok out", 7, numeric=True),
        Column("cost", "Cost", 9, numeric=True),
        Column("first", "Started", 8, hide_below=120),
        Column("last", "Last", 8),
    )
    DEFAULT_SORT = (7, False)
    BINDINGS = [*ListScreen.BINDINGS, Binding("e", "export", "Export")]

    def __init__(self, pid: int, start_time: int | None = None) -> None:
        super().__init__()
        self.pid = pid
        self.start_time = start_time  # which of the processes that had this pid (None: the first listed)

    def _process(self, snap: Snapshot | None):
        if snap is None:
            return None
        return next((p for p in snap.processes if p.pid == self.pid
                     and (self.start_time is None or p.start_time == self.start_time)), None)

    def crumb(self) -> str:
        snap = self.app.snapshot
        p = self._process(snap)
        who = f"{p.comm} (pid {self.pid}{', exited' if p and p.exited else ''})" if p else f"pid {self.pid}"
        return _with_filter(f"Processes › {who} — conversations", self)

    def rows(self, snap: Snapshot) -> list[Row]:
        pal = self.app.palette
        proc = self._process(snap)
        out = []
        theme = self.app.theme
        for cid in proc.conversation_ids if proc else ():
            c = snap.conversations.get(cid)
            if c is None:
                continue
            out.append(self.cached_row(cid, c, (self._flex_width, theme), lambda c=c: self._row(c, pal)))
        return out

    def _row(self, c, pal: dict[str, str]) -> Row:
        t = c.tally
        calls = _num(f"{t.calls}" + (f" ▶{t.in_flight}" if t.in_flight else ""))
        if t.in_flight:
            calls.stylize(f"bold {pal['streaming']}")
        models = ", ".join(c.models)
        cells = (Text(c.id), Text(fmt.one_line(c.title, self._flex_width)), Text(fmt.one_line(models, 16)), calls,
                 _num(fmt.tokens(t.input_tokens)), _num(fmt.tokens(t.output_tokens)),
                 _num(fmt.cost(t.cost_usd, t.cost_unknown)), Text(fmt.clock(c.first_ts)), Text(fmt.clock(c.last_ts)))
        sort = ((len(c.id), c.id), c.title.lower(), models,
                t.calls, t.input_tokens, t.output_tokens, t.cost_usd, c.first_ts, c.last_ts)
        return Row(c.id, cells, sort, f"{c.id} {c.title} {models} {self.pid}".lower(), c.last_ts)

    def open(self, key: str) -> None:
        self.app.push_screen(CallsScreen(key))

    def action_export(self) -> None:
        key = self.cursor_key()
        if key is None:
            self.notify("No conversation to export", severity="warning")
        else:
            self.app.open_export(conversation_id=key)


class CallsScreen(ListScreen):
    COLUMNS = (
        Column("id", "Call", 5),
        Column("time", "Time", 8, hide_below=120),
        Column("model", "Model", 16),
        Column("status", "Status", 11),
        Column("in", "Tok in", 7, numeric=True),
        Column("out", "Tok out", 7, numeric=True),
        Column("cost", "Cost", 9, numeric=True),
        Column("ttft", "TTFT", 6, numeric=True, hide_below=110),
        Column("dur", "Duration", 8, numeric=True),
        Column("preview", "Response", flex=True),
    )
    DEFAULT_SORT = (1, False)
    BINDINGS = [*ListScreen.BINDINGS, Binding("e", "export", "Export")]

    def __init__(self, conversation_id: str) -> None:
        super().__init__()
        self.conversation_id = conversation_id

    def crumb(self) -> str:
        snap = self.app.snapshot
        c = snap.conversations.get(self.conversation_id) if snap else None
        if c is None:
            return f"Processes › conversation {self.conversation_id} (no longer kept)"
        p = next((p for p in snap.processes if p.pid == c.pid), None)
        who = f"{p.comm} ({c.pid})" if p else f"pid {c.pid}"
        return _with_filter(f"Processes › {who} › {c.id} “{fmt.one_line(c.title, 50)}” — calls", self)

    def rows(self, snap: Snapshot) -> list[Row]:
        c = snap.conversations.get(self.conversation_id)
        pal = self.app.palette
        out = []
        extras = (self._flex_width, self.app.theme)
        for xid in c.exchange_ids if c else ():
            v = snap.exchanges.get(xid)
            if v is not None:
                out.append(self.cached_row(xid, v, extras, lambda v=v: self._row(v, pal)))
        return out

    def _row(self, v: ExchangeView, pal: dict[str, str]) -> Row:
        x = v.exchange
        u = x.usage
        model = (x.response.response_model if x.response and x.response.response_model else "") or x.model
        preview = _preview(v)
        ts = x.timing
        cells = (
            Text(x.id), Text(fmt.clock(ts.ts_start)), Text(fmt.one_line(model, 16)), _status(v, pal),
            _num(fmt.tokens(u.input_tokens)), _num(fmt.tokens(u.output_tokens)),
            _num(fmt.cost(x.cost_usd) if not v.in_flight or x.cost_usd else ""),
            _num(fmt.ms(ts.ttft_ms)), _num(fmt.ms(ts.duration_ms) if not v.in_flight else ""),
            Text(fmt.one_line(preview, self._flex_width)),
        )
        num_id = int(x.id[1:]) if x.id[1:].isdigit() else 0
        sort = (num_id, ts.ts_start, model, (x.status or 0, v.in_flight), u.input_tokens or 0,
                u.output_tokens or 0, x.cost_usd or 0.0, ts.ttft_ms or 0.0, ts.duration_ms, preview)
        search = f"{x.id} {model} {x.provider} {x.status} {_last_user(v)[:2000]} {preview[:2000]}".lower()
        return Row(x.id, cells, sort, search, ts.ts_start)

    def open(self, key: str) -> None:
        from .detail import CallScreen

        self.app.push_screen(CallScreen(key))

    def action_export(self) -> None:
        self.app.open_export(conversation_id=self.conversation_id, exchange_id=self.cursor_key())


class ModelsScreen(ListScreen):
    COLUMNS = (
        Column("model", "Model", flex=True),
        Column("calls", "Calls", 6, numeric=True),
        Column("live", "Live", 5, numeric=True),
        Column("in", "Tok in", 9, numeric=True),
        Column("cached", "Cached", 9, numeric=True, hide_below=110),
        Column("out", "Tok out", 9, numeric=True),
        Column("reasoning", "Reasoning", 9, numeric=True, hide_below=110),
        Column("cost", "Cost", 10, numeric=True),
        Column("err", "Err", 4, numeric=True),
    )
    DEFAULT_SORT = (7, True)

    def crumb(self) -> str:
        return _with_filter("Models — totals per requested model (m or escape: back)", self)

    def rows(self, snap: Snapshot) -> list[Row]:
        out = []
        for model, t in snap.by_model.items():
            if not t.calls:
                continue
            cells = (Text(fmt.one_line(model, self._flex_width)), _num(str(t.calls)),
                     _num(f"▶{t.in_flight}" if t.in_flight else ""), _num(fmt.tokens(t.input_tokens)),
                     _num(fmt.tokens(t.cache_read_tokens)), _num(fmt.tokens(t.output_tokens)),
                     _num(fmt.tokens(t.reasoning_tokens)), _num(fmt.cost(t.cost_usd, t.cost_unknown)),
                     _num(str(t.errors) if t.errors else ""))
            sort = (model.lower(), t.calls, t.in_flight, t.input_tokens, t.cache_read_tokens, t.output_tokens,
                    t.reasoning_tokens, t.cost_usd, t.errors)
            out.append(Row(model, cells, sort, model.lower(), t.calls))
        return out
