"""Modal screens: export, help, and the process picker."""

from __future__ import annotations

import os
from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from ..errors import UserError
from ..export import EXTENSIONS, default_filename, export_bytes, write_private
from ..store import Snapshot
from . import fmt
from .widgets import matches

FORMAT_LABELS = {"json": "JSON document", "md": "Markdown transcript", "jsonl": "JSONL, one line per call"}


class ExportScreen(ModalScreen[str | None]):
    """Choose what (conversation or call), the format and the path; never overwrites a file."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, snap: Snapshot, conversation_id: str | None, exchange_id: str | None,
                 show_secrets: bool) -> None:
        super().__init__()
        self.snap = snap
        self.conversation_id = conversation_id
        self.exchange_id = exchange_id
        self.show_secrets = show_secrets
        self.fmt = "md"
        self.scope = "conversation" if conversation_id else "call"
        self._suggested = ""
        self._now = datetime.now()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Export  (tab moves, space picks, enter in the path exports)", id="dialog-title")
            if self.conversation_id and self.exchange_id:
                yield Label("What:")
                with RadioSet(id="scope"):
                    yield RadioButton(f"Conversation {self.conversation_id} (all its calls)", value=True,
                                      name="conversation")
                    yield RadioButton(f"Call {self.exchange_id} only", name="call")
            else:
                what = f"conversation {self.conversation_id}" if self.conversation_id else f"call {self.exchange_id}"
                yield Label(f"What: {what}")
            yield Label("Format:")
            with RadioSet(id="format"):
                for key, label in FORMAT_LABELS.items():
                    yield RadioButton(label, value=key == self.fmt, name=key)
            yield Label("Path (new file, mode 0600; never overwrites):")
            yield Input(id="path")
            yield Static(id="export-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Export", variant="primary", id="do-export")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._suggest()
        self.query_one("#format", RadioSet).focus()

    def _ids(self) -> dict:
        if self.scope == "call":
            return {"exchange_id": self.exchange_id}
        return {"conversation_id": self.conversation_id}

    def _suggest(self) -> None:
        """Fill in the default name, unless the user has typed their own."""
        path = self.query_one("#path", Input)
        if path.value and path.value != self._suggested:
            base, ext = os.path.splitext(path.value)
            if ext.lstrip(".") in EXTENSIONS.values():
                path.value = f"{base}.{EXTENSIONS[self.fmt]}"
            return
        try:
            name = default_filename(self.snap, fmt=self.fmt, now=self._now, **self._ids())
        except UserError as e:
            self._error(str(e))
            return
        self._suggested = os.path.join(".", name)
        path.value = self._suggested

    @on(RadioSet.Changed)
    def _changed(self, event: RadioSet.Changed) -> None:
        name = event.pressed.name or ""
        if event.radio_set.id == "format":
            self.fmt = name
        else:
            self.scope = name
        self._suggest()

    def _error(self, msg: str) -> None:
        self.query_one("#export-error", Static).update(Text(msg.removeprefix("llmspy-tui: ")))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#do-export")
    def _export(self) -> None:
        path = os.path.expanduser(self.query_one("#path", Input).value.strip())
        if not path:
            self._error("Give a path to write to.")
            return
        try:
            data = export_bytes(self.snap, fmt=self.fmt, show_secrets=self.show_secrets, **self._ids())
            written = write_private(path, data)
        except UserError as e:
            self._error(str(e))
            return
        self.dismiss(written)


HELP = """\
[b]llmspy-tui[/b] shows what processes send to and receive from LLM APIs, captured from the TLS
library with eBPF: no proxy, no certificates. Drill down with [b]enter[/b], go back with [b]escape[/b].

[b]Views[/b]
  Processes      every process that called an LLM API: calls, live calls, tokens, cost
  Conversations  one process's conversations (calls that continue each other's history)
  Calls          one conversation's calls; the status cell grows while a response streams
  Call detail    tabs Prompt, Response (live), Tools, Raw (headers masked), Timing
  Models         totals per model (m)

[b]Keys[/b]
  enter          open the highlighted row
  escape         back (or clear the filter first)
  /              filter the list as you type: process name, pid, model, text; a leading ! inverts
  s              sort by the next column (again: reverse); clicking a header also sorts
  p              pick a process to follow
  F              follow newest: the cursor (or the detail view) jumps to the newest call
  space          pause the display; capture goes on, and the header counts what is waiting
  e              export the conversation or call: JSON, Markdown transcript or JSONL
  [ and ]        previous / next call of the conversation (call detail)
  1 … 5          switch tabs in call detail
  m              models view
  t              next theme
  ctrl+p         command palette (themes, export, pause, views)
  ?              this help
  q              quit (capture stops; a --record file is closed and complete)

Header: calls, live calls, tokens in/out, cost ('+' when some calls had no known price), events
lost by the capture (only when there are any), and output tokens per second over the last minute.
Secrets (Authorization, API keys, cookies, key= parameters) are masked unless --show-secrets.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


class ProcessPicker(ModalScreen[int | None]):
    """Type to narrow the list of processes; enter follows the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, snap: Snapshot) -> None:
        super().__init__()
        self.snap = snap

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Follow which process? (type to narrow, enter to choose)")
            yield Input(placeholder="name, pid or model", id="picker-filter")
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, query: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        procs = sorted(self.snap.processes, key=lambda p: p.last_ts, reverse=True)
        for p in procs:
            if not p.tally.calls:
                continue
            hay = f"{p.pid} {p.comm} {' '.join(p.models)} {' '.join(p.providers)}".lower()
            if not matches(query, hay):
                continue
            t = p.tally
            label = Text(f"{p.pid:>7}  {fmt.one_line(p.comm, 16):<16}  {t.calls:>4} calls  "
                         f"{fmt.cost(t.cost_usd, t.cost_unknown):>9}  {fmt.one_line(', '.join(p.models), 30)}")
            if p.exited:
                label.stylize("dim")
            ol.add_option(Option(label, id=str(p.pid)))
        if ol.option_count:
            ol.highlighted = 0

    @on(Input.Changed, "#picker-filter")
    def _narrow(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _take_first(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None:
            self.dismiss(int(ol.get_option_at_index(ol.highlighted).id))

    def key_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
