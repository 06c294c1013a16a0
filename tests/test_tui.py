"""The full-screen monitor, driven as a user would through Textual's Pilot (no root needed).

Recordings replay through the real pipeline; a queue-fed source lets a test deliver a stream
piece by piece to watch a response grow, pause the display, or report lost events.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import stat
import threading
import time

import pytest

from llmspy_tui.capture.events import Counters, ProcessInfo, ProcessSeen
from llmspy_tui.cli import demo_path
from llmspy_tui.export import export_bytes
from llmspy_tui.sources import ReplaySource
from llmspy_tui.tui.app import MonitorApp
from llmspy_tui.tui.base import ListScreen
from llmspy_tui.tui.detail import CallScreen
from llmspy_tui.tui.dialogs import ExportScreen, HelpScreen, ProcessPicker
from llmspy_tui.tui.lists import CallsScreen, ConversationsScreen, ProcessesScreen
from support import wire
from support.llm_wire import h1_call, sse_parts

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "llm-clients.llmspy")
SECRET = "sk-test-openai-0123456789"


class QueueSource:
    """Batches handed in by the test, as a live capture would deliver them."""

    label = "replay"
    speed = 0

    def __init__(self) -> None:
        self.q: queue.SimpleQueue = queue.SimpleQueue()

    def batches(self, stop: threading.Event):
        while not stop.is_set():
            try:
                batch = self.q.get(timeout=0.05)
            except queue.Empty:
                continue
            if batch is None:
                return
            yield batch


async def settle(pilot, app: MonitorApp, timeout: float = 10.0) -> None:
    """Until the feed is idle and the timer has shown what the store holds (lists included:
    their bodies may follow a little later, see MonitorScreen.BODY_DUTY)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(app.source, ReplaySource) and not app.fed.is_set():
            await pilot.pause(0.05)
            continue
        if app.snapshot is not None and app.snapshot.version == app.store.version:
            await pilot.pause(0.05)
            if app.snapshot.version == app.store.version and body_current(app):
                return
        await pilot.pause(0.05)
    raise AssertionError("the UI did not catch up with the store")


def body_current(app: MonitorApp) -> bool:
    """No deferred list update is pending on the current screen."""
    return getattr(app.screen, "_body_timer", None) is None


def table_keys(app: MonitorApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, ListScreen), screen
    return list(screen._keys)


def golden_app(**kw) -> MonitorApp:
    return MonitorApp(ReplaySource(GOLDEN), **kw)


def _procs_with(app: MonitorApp, provider: str) -> set[str]:
    return {str(p.pid) for p in app.snapshot.processes if provider in p.providers and p.tally.calls}


def test_drill_down_and_back():
    async def run():
        app = golden_app()
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            assert isinstance(app.screen, ProcessesScreen)
            snap = app.snapshot
            # every process with LLM calls is listed, most recently active first (to the second,
            # so busy processes do not swap places on every update; then by pid)
            want = [str(p.pid) for p in sorted(snap.processes, key=lambda p: (p.last_ts // 10**9, -p.pid),
                                               reverse=True) if p.tally.calls]
            assert table_keys(app) == want
            # the 3-turn Anthropic conversation: find its process and open it
            conv = next(c for c in snap.conversations.values() if c.tally.calls == 3 and "claude" in c.models[0])
            screen = app.screen
            screen.table.move_cursor(row=table_keys(app).index(str(conv.pid)))
            await pilot.press("enter")
            await settle(pilot, app)
            assert isinstance(app.screen, ConversationsScreen) and app.screen.pid == conv.pid
            assert conv.id in table_keys(app)
            app.screen.table.move_cursor(row=table_keys(app).index(conv.id))
            await pilot.press("enter")
            await settle(pilot, app)
            assert isinstance(app.screen, CallsScreen)
            assert table_keys(app) == list(conv.exchange_ids)
            await pilot.press("end", "enter")
            await settle(pilot, app)
            assert isinstance(app.screen, CallScreen)
            last = snap.exchanges[conv.exchange_ids[-1]].exchange
            assert app.screen.xid == last.id
            # Response tab: the reply text; Prompt tab: every message of the history
            resp = app.screen.query_one("#resp-text").render()
            assert last.response.text[:60] in str(resp)
            await pilot.press("1")
            await pilot.pause(0.2)
            prompt = " ".join(str(w.render()) for w in app.screen.query(".msg"))
            for m in last.request.messages:
                if m.text:
                    assert " ".join(m.text.split())[:40] in " ".join(prompt.split())
            # Raw tab: headers masked, JSON pretty-printed
            await pilot.press("4")
            await pilot.pause(0.2)
            raw = app.screen.query_one("#raw-text").text
            auth = next(line for line in raw.splitlines() if line.lower().startswith(("authorization:", "x-api-key:")))
            assert "*" in auth and "sk-ant-test" not in raw
            assert '\n  "model": ' in raw
            # previous call with [
            await pilot.press("left_square_bracket")
            await pilot.pause(0.2)
            assert app.screen.xid == conv.exchange_ids[-2]
            for expected in (CallsScreen, ConversationsScreen, ProcessesScreen):
                await pilot.press("escape")
                await pilot.pause(0.1)
                assert isinstance(app.screen, expected)
            await pilot.press("escape")  # the first screen stays
            assert isinstance(app.screen, ProcessesScreen)

    asyncio.run(run())


def test_filter_as_you_type_and_invert():
    async def run():
        app = golden_app()
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot, app)
            everyone = set(table_keys(app))
            anthropic = _procs_with(app, "anthropic")
            assert anthropic and anthropic < everyone
            await pilot.press("slash", *"anthro")
            await pilot.pause(0.3)
            assert set(table_keys(app)) == anthropic
            await pilot.press("enter")  # keeps the filter, back to the list
            assert app.screen.table.has_focus and app.screen.filter_text == "anthro"
            await pilot.press("slash", "home", "!")
            await pilot.pause(0.3)
            assert app.screen.filter_text == "!anthro"
            assert set(table_keys(app)) == everyone - anthropic
            # pid and model match too
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert set(table_keys(app)) == everyone and app.screen.filter_text == ""
            pid = sorted(anthropic)[0]
            await pilot.press("slash", *pid)
            await pilot.pause(0.3)
            assert table_keys(app) == [pid]
            await pilot.press("escape")
            await pilot.press("slash", *"gemini-2.5")
            await pilot.pause(0.3)
            gem = {str(p.pid) for p in app.snapshot.processes if any("gemini" in m for m in p.models)}
            assert gem and set(table_keys(app)) == gem

    asyncio.run(run())


def _stream_events(pid: int, n_parts: int, ts0: int) -> list[list]:
    """An OpenAI streamed chat call over HTTP/1.1 as capture batches: request, head, one per part."""
    words = [f"word{i} " for i in range(n_parts)]
    parts = sse_parts([(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
                       for w in words])
    parts += sse_parts([(None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": 11, "completion_tokens": n_parts, "total_tokens": 11 + n_parts}}),
                        (None, "[DONE]")])
    conv = h1_call("/v1/chat/completions", {"model": "gpt-4o-mini", "stream": True,
                                            "messages": [{"role": "user", "content": "count for me"}]},
                   parts, ctype="text/event-stream")
    chunks = wire.to_chunks(conv, pid=pid, ts0=ts0)
    seen = ProcessSeen(ts0 - 1, ProcessInfo(pid, 0, "agent-x", "/usr/bin/agent-x", ("agent-x",), 1))
    # request + response head first, then each SSE chunk in its own batch
    return [[seen, *chunks[:2]]] + [[c] for c in chunks[2:]]


def test_streaming_response_grows_in_list_and_detail():
    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        batches = _stream_events(777, 6, time.time_ns())
        async with app.run_test(size=(140, 40)) as pilot:
            src.q.put(batches[0])
            await settle(pilot, app)
            await pilot.press("enter", "enter")
            await settle(pilot, app)
            assert isinstance(app.screen, CallsScreen)
            statuses, texts = [], []
            await pilot.press("enter")
            for b in batches[1:4]:
                src.q.put(b)
                await settle(pilot, app)
                texts.append(str(app.screen.query_one("#resp-text").render()))
            await pilot.press("escape")
            await settle(pilot, app)
            statuses.append(str(app.screen.table.get_row_at(0)[3]))
            for b in batches[4:8]:
                src.q.put(b)
                await settle(pilot, app)
                statuses.append(str(app.screen.table.get_row_at(0)[3]))
            # the detail view grew word by word, with a streaming cursor
            assert texts[0].startswith("word0") and "word1" in texts[1] and "word2" in texts[2]
            assert all(t.rstrip().endswith("▌") for t in texts)
            assert statuses[0].startswith("▶") and statuses[0] != statuses[1]
            for b in batches[8:]:
                src.q.put(b)
            await settle(pilot, app)
            await pilot.pause(0.2)
            assert str(app.screen.table.get_row_at(0)[3]) == "✓ 200"
            assert app.snapshot.total.output_tokens == 6

    asyncio.run(run())


def test_pause_holds_the_display_while_capture_goes_on():
    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        first = _stream_events(100, 2, time.time_ns())
        second = _stream_events(200, 2, time.time_ns() + 10**9)
        async with app.run_test(size=(140, 40)) as pilot:
            for b in first:
                src.q.put(b)
            await settle(pilot, app)
            assert table_keys(app) == ["100"]
            await pilot.press("space")
            for b in second:
                src.q.put(b)
            deadline = time.monotonic() + 5
            while app.store.total_calls < 2 and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.3)
            assert app.store.total_calls == 2  # captured ...
            assert table_keys(app) == ["100"]  # ... but not shown
            header = str(app.screen.query_one("#totals").render())
            assert "PAUSED" in header and "+1 calls waiting" in header
            await pilot.press("space")
            await settle(pilot, app)
            assert set(table_keys(app)) == {"100", "200"}
            assert "PAUSED" not in str(app.screen.query_one("#totals").render())

    asyncio.run(run())


def test_lost_events_show_in_the_header():
    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        async with app.run_test(size=(140, 40)) as pilot:
            src.q.put(_stream_events(5, 1, time.time_ns())[0])
            await settle(pilot, app)
            assert "lost" not in str(app.screen.query_one("#totals").render())
            src.q.put([Counters(time.time_ns(), {"calls": 10, "ringbuf_fail": 3, "read_fail": 1})])
            await pilot.pause(0.3)
            await settle(pilot, app)
            assert "lost 4 events" in str(app.screen.query_one("#totals").render())

    asyncio.run(run())


def test_theme_cycles_and_can_be_chosen():
    async def run():
        app = golden_app(theme="llmspy-light")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, app)
            assert app.theme == "llmspy-light"
            light_user = app.get_css_variables()["role-user"]
            seen = [app.theme]
            for _ in range(3):
                await pilot.press("t")
                await pilot.pause(0.1)
                seen.append(app.theme)
            assert seen[-1] == seen[0] and len(set(seen)) == 3
            assert {"llmspy-dark", "llmspy-light", "llmspy-high-contrast"} == set(seen)
            await pilot.press("t")
            assert app.get_css_variables()["role-user"] != light_user
            # the palette used for cells follows the theme
            assert app.palette["streaming"] == app.get_css_variables()["streaming"]

    asyncio.run(run())
    from llmspy_tui.errors import UserError

    with pytest.raises(UserError, match="llmspy-dark"):
        golden_app(theme="no-such-theme")


async def _export_to(pilot, dialog, path) -> None:
    """Type a path into the export dialog and press Enter there."""
    field = dialog.query_one("#path")
    field.value = str(path)
    field.focus()
    await pilot.press("enter")
    await pilot.pause(0.3)


def _open_conversation(app, conv_id):
    snap = app.snapshot
    c = snap.conversations[conv_id]
    app.follow_process(c.pid)
    return c


def test_export_dialog_writes_private_file_and_never_overwrites(tmp_path):
    async def run():
        app = golden_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, app)
            conv = next(c for c in app.snapshot.conversations.values() if c.tally.calls >= 3)
            _open_conversation(app, conv.id)
            await settle(pilot, app)
            app.screen.table.move_cursor(row=table_keys(app).index(conv.id))
            await pilot.press("e")
            await pilot.pause(0.2)
            dialog = app.screen
            assert isinstance(dialog, ExportScreen)
            path_input = dialog.query_one("#path")
            assert re.fullmatch(rf"\./llmspy-python-{conv.id}-\d{{8}}-\d{{6}}\.md", path_input.value)
            # choose JSONL: the suggested name follows the format
            dialog.query_one("#format").focus()
            await pilot.press("down", "down", "enter")
            await pilot.pause(0.1)
            assert dialog.fmt == "jsonl" and path_input.value.endswith(".jsonl")
            target = tmp_path / "conv.jsonl"
            await _export_to(pilot, dialog, target)
            assert not isinstance(app.screen, ExportScreen)
            data = target.read_bytes()
            assert stat.S_IMODE(target.stat().st_mode) == 0o600
            assert data == export_bytes(app.snapshot, conversation_id=conv.id, fmt="jsonl")
            lines = [json.loads(x) for x in data.splitlines()]
            assert [x["id"] for x in lines] == list(conv.exchange_ids)
            assert SECRET.encode() not in data
            # the same path again: refused in the dialog, file untouched
            await pilot.press("e")
            await pilot.pause(0.2)
            dialog = app.screen
            await _export_to(pilot, dialog, target)
            assert isinstance(app.screen, ExportScreen)
            assert "exists" in str(dialog.query_one("#export-error").render())
            assert target.read_bytes() == data
            await pilot.press("escape")
            assert not isinstance(app.screen, ExportScreen)

    asyncio.run(run())


def test_export_of_one_call_from_detail(tmp_path):
    async def run():
        app = golden_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, app)
            conv = next(c for c in app.snapshot.conversations.values() if c.tally.calls >= 2)
            xid = conv.exchange_ids[-1]
            app.push_screen(CallScreen(xid))
            await settle(pilot, app)
            await pilot.press("e")
            await pilot.pause(0.2)
            dialog = app.screen
            dialog.query_one("#scope").focus()
            await pilot.press("down", "enter")  # "call only"
            await pilot.pause(0.1)
            assert dialog.scope == "call"
            target = tmp_path / "call.md"
            await _export_to(pilot, dialog, target)
            text = target.read_text()
            assert stat.S_IMODE(target.stat().st_mode) == 0o600
            x = app.snapshot.exchanges[xid].exchange
            assert xid in text and (x.response.text[:30] in text)

    asyncio.run(run())


def test_follow_newest_and_process_picker():
    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        t0 = time.time_ns()
        async with app.run_test(size=(140, 40)) as pilot:
            for b in _stream_events(300, 1, t0) + _stream_events(301, 1, t0 + 10**9):
                src.q.put(b)
            await settle(pilot, app)
            # sorted by pid (descending): the newest is not at the top; follow puts the cursor on it
            app.screen.set_sort(0)
            await settle(pilot, app)
            assert table_keys(app) == ["301", "300"]
            app.screen.table.move_cursor(row=1)
            await pilot.press("F")
            await pilot.pause(0.3)
            assert app.follow and app.screen.cursor_key() == "301"
            for b in _stream_events(299, 1, t0 + 2 * 10**9):
                src.q.put(b)
            await settle(pilot, app)
            await pilot.pause(0.2)
            assert table_keys(app) == ["301", "300", "299"] and app.screen.cursor_key() == "299"
            await pilot.press("F")
            assert not app.follow
            # p: pick a process by typing part of its pid
            await pilot.press("p")
            await pilot.pause(0.2)
            assert isinstance(app.screen, ProcessPicker)
            await pilot.press(*"300", "enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, ConversationsScreen) and app.screen.pid == 300
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, ConversationsScreen)
            await pilot.press("q")
            await pilot.pause(0.2)
        assert app.return_code in (0, None)

    asyncio.run(run())


def test_hostile_text_is_shown_literally():
    """Prompt text is data, never markup: brackets that look like Rich markup do not break a cell."""
    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        evil = "[bold red]not markup[/] [/closing] [link=http://x]y[/link] \x1b[31m"
        conv = h1_call("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": evil}]},
                       [json.dumps({"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": evil},
                                                 "finish_reason": "stop"}]}).encode()])
        async with app.run_test(size=(140, 40)) as pilot:
            src.q.put(wire.to_chunks(conv, pid=9, ts0=time.time_ns()))
            await settle(pilot, app)
            await pilot.press("enter", "enter")
            await settle(pilot, app)
            assert "[bold red]not markup[/]" in str(app.screen.table.get_row_at(0)[-1])
            await pilot.press("enter")
            await settle(pilot, app)
            assert "[bold red]not markup[/]" in str(app.screen.query_one("#resp-text").render())
        assert not app.internal_error

    asyncio.run(run())


def test_demo_replays_paced_and_ends():
    """--demo at a high speed: the same UI fills in, and the header says the replay ended."""
    async def run():
        app = MonitorApp(ReplaySource(demo_path(), speed=50.0, label="demo"))
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 30
            while not app.fed.is_set() and time.monotonic() < deadline:
                await pilot.pause(0.1)
            await settle(pilot, app)
            header = str(app.screen.query_one("#totals").render())
            assert header.startswith("DEMO ×50 (end)")
            assert app.snapshot.total.calls > 0 and len(table_keys(app)) >= 1

    asyncio.run(run())


def test_long_lists_show_the_most_recent_rows_and_the_filter_finds_the_rest():
    """A process with more conversations than a list shows: the newest are listed, the crumb
    says how many there are, and the filter reaches an old one."""
    from llmspy_tui.tui.base import MAX_ROWS

    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        n = MAX_ROWS + 40
        t0 = time.time_ns()
        batch = [ProcessSeen(t0 - 1, ProcessInfo(77, 0, "busy-agent", "/usr/bin/busy", ("busy",), 1))]
        for i in range(n):
            conv = h1_call("/v1/chat/completions",
                           {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question q{i:04d}x"}]},
                           [json.dumps({"id": f"c{i}", "object": "chat.completion", "model": "gpt-4o-mini",
                                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                     "finish_reason": "stop"}]}).encode()])
            batch += wire.to_chunks(conv, pid=77, ssl=0x9000 + i, ts0=t0 + i * 10**6)
        async with app.run_test(size=(140, 40)) as pilot:
            src.q.put(batch)
            await settle(pilot, app)
            app.follow_process(77)
            await settle(pilot, app)
            await pilot.pause(0.3)
            keys = table_keys(app)
            assert len(keys) == MAX_ROWS
            titles = {app.snapshot.conversations[k].title for k in keys}
            assert f"question q{n - 1:04d}x" in titles and "question q0000x" not in titles
            assert f"{MAX_ROWS} most recent of {n}" in str(app.screen.query_one("#crumb").render())
            await pilot.press("slash", *"q0000x")
            await pilot.pause(0.4)
            assert [app.snapshot.conversations[k].title for k in table_keys(app)] == ["question q0000x"]

    asyncio.run(run())


def test_reused_pid_lists_two_processes_each_with_its_own_calls():
    """A pid the kernel gave to a new program after the first exited: two rows, and each opens
    its own conversations (the exited one keeps its calls)."""
    from llmspy_tui.capture.events import ConnClosed, ProcessExit

    def call(text: str, ssl: int, ts: int, pid: int = 777):
        conv = h1_call("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
                       [json.dumps({"id": "r", "object": "chat.completion", "model": "gpt-4o",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                 "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()])
        events = wire.to_chunks(conv, pid=pid, ssl=ssl, ts0=ts)
        return events + [ConnClosed(events[-1].ts + 1, pid, ssl)]

    first = ProcessInfo(777, 100, "agent-one", "/usr/bin/python3", ("python3", "one.py"), 1)
    second = ProcessInfo(777, 900, "agent-two", "/usr/bin/node", ("node", "two.js"), 1)
    batch = [ProcessSeen(1_000, first), *call("from the first", 0x10, 2_000), ProcessExit(50_000, 777),
             ProcessSeen(60_000, second), *call("from the second", 0x20, 70_000)]

    async def run():
        src = QueueSource()
        app = MonitorApp(src)
        async with app.run_test(size=(160, 45)) as pilot:
            src.q.put(batch)
            await settle(pilot, app)
            keys = table_keys(app)
            assert len(keys) == 2 and "777" in keys, keys
            titles = {}
            for key in keys:
                screen = app.screen
                screen.table.move_cursor(row=screen._keys.index(key))
                await pilot.press("enter")
                await settle(pilot, app)
                assert isinstance(app.screen, ConversationsScreen)
                convs = table_keys(app)
                assert len(convs) == 1, convs
                titles[key] = app.snapshot.conversations[convs[0]].title
                await pilot.press("escape")
                await settle(pilot, app)
            assert sorted(titles.values()) == ["from the first", "from the second"], titles
            src.q.put(None)

    asyncio.run(run())
