"""The monitor's main views, reached as a user would, for snapshot tests and screenshots/.

Each view replays a recording (the bundled demo by default) to its end, then presses keys to
get there. Shared by tests/test_tui_snapshots.py and screenshots/generate.py so the pictures
in the repository are the ones the tests check.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

os.environ.setdefault("TZ", "UTC")
time.tzset()

from llmspy_tui.cli import demo_path  # noqa: E402
from llmspy_tui.sources import ReplaySource  # noqa: E402
from llmspy_tui.tui.app import MonitorApp  # noqa: E402


async def wait_ready(pilot) -> None:
    app = pilot.app
    deadline = time.monotonic() + 30
    # a list's body may be drawn a little after the snapshot (MonitorScreen.BODY_DUTY)
    while time.monotonic() < deadline and not (app.fed.is_set() and app.snapshot is not None
                                               and app.snapshot.version == app.store.version
                                               and getattr(app.screen, "_body_timer", None) is None):
        await pilot.pause(0.05)
    await pilot.pause(0.3)


def _busiest_process(app) -> int:
    snap = app.snapshot
    return max((p for p in snap.processes if p.tally.calls),
               key=lambda p: (len(p.conversation_ids), p.tally.calls, -p.pid)).pid


def _longest_conversation(app, pid: int) -> str:
    snap = app.snapshot
    proc = next(p for p in snap.processes if p.pid == pid)
    return max(proc.conversation_ids, key=lambda c: (len(snap.conversations[c].exchange_ids), c))


def _interesting_call(app, conv: str) -> str:
    """A call with tool calls or reasoning if the conversation has one, else its last."""
    snap = app.snapshot
    ids = snap.conversations[conv].exchange_ids
    for xid in reversed(ids):
        r = snap.exchanges[xid].exchange.response
        if r is not None and (r.tool_calls or r.reasoning):
            return xid
    return ids[-1]


async def _select(pilot, key: str) -> None:
    screen = pilot.app.screen
    for _ in range(60):  # a list's body follows the store at most twice a second
        if key in screen._keys:
            break
        await pilot.pause(0.05)
    screen.table.move_cursor(row=screen._keys.index(key))
    await pilot.press("enter")
    await pilot.pause(0.3)


async def to_conversations(pilot) -> None:
    await _select(pilot, str(_busiest_process(pilot.app)))


async def to_calls(pilot) -> None:
    pid = _busiest_process(pilot.app)
    await _select(pilot, str(pid))
    await _select(pilot, _longest_conversation(pilot.app, pid))


async def to_call(pilot, tab: str = "response") -> None:
    pid = _busiest_process(pilot.app)
    conv = _longest_conversation(pilot.app, pid)
    await _select(pilot, str(pid))
    await _select(pilot, conv)
    await _select(pilot, _interesting_call(pilot.app, conv))
    await pilot.press(str(["prompt", "response", "tools", "raw", "timing"].index(tab) + 1))
    await pilot.pause(0.3)


def _keys(*keys: str) -> Callable[..., Awaitable[None]]:
    async def press(pilot) -> None:
        await pilot.press(*keys)
        await pilot.pause(0.3)
    return press


async def to_export(pilot) -> None:
    await to_calls(pilot)
    await pilot.press("e")
    await pilot.pause(0.3)
    # the suggested name carries the wall-clock time: pin it so the picture is reproducible
    import re

    path = pilot.app.screen.query_one("#path")
    path.value = re.sub(r"\d{8}-\d{6}", "20261122-120000", path.value)
    pilot.app.screen._suggested = path.value
    await pilot.pause(0.2)


async def nothing(pilot) -> None:
    return None


@dataclass(frozen=True)
class View:
    name: str
    steps: Callable[..., Awaitable[None]]
    size: tuple[int, int] = (160, 45)
    theme: str = "llmspy-dark"

    def app(self, recording: str | None = None) -> MonitorApp:
        return MonitorApp(ReplaySource(recording or demo_path(), 0.0, label="demo"), theme=self.theme)

    async def run_before(self, pilot) -> None:
        await wait_ready(pilot)
        await self.steps(pilot)


VIEWS = [
    View("processes", nothing),
    View("conversations", to_conversations),
    View("calls", to_calls),
    View("call-response", lambda p: to_call(p, "response")),
    View("call-prompt", lambda p: to_call(p, "prompt")),
    View("call-tools", lambda p: to_call(p, "tools")),
    View("call-raw", lambda p: to_call(p, "raw")),
    View("call-timing", lambda p: to_call(p, "timing")),
    View("models", _keys("m")),
    View("filter", _keys("slash", *"anthropic")),
    View("export", to_export),
    View("help", _keys("question_mark")),
    View("processes-light", nothing, theme="llmspy-light"),
    View("call-prompt-light", lambda p: to_call(p, "prompt"), theme="llmspy-light"),
    View("processes-high-contrast", nothing, theme="llmspy-high-contrast"),
    View("call-response-high-contrast", lambda p: to_call(p, "response"), theme="llmspy-high-contrast"),
    View("processes-100x30", nothing, size=(100, 30)),
    View("calls-100x30", to_calls, size=(100, 30)),
    View("call-prompt-100x30", lambda p: to_call(p, "prompt"), size=(100, 30)),
]

# the ones the snapshot tests check (all of them would mostly re-test Textual)
SNAPSHOT_VIEWS = ["processes", "conversations", "calls", "call-response", "call-prompt", "call-tools",
                  "call-raw", "call-timing", "models", "export", "processes-light",
                  "processes-high-contrast", "calls-100x30"]
