"""The Textual app: one worker feeds capture batches into the store, one timer shows snapshots.

The capture side never calls into the UI per event: a thread worker runs the pipeline (which
updates the store under its lock), and a 10 Hz timer takes a snapshot when the store's version
moved and hands it to the screen on top. Pausing stops only that hand-over.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from typing import Iterable

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen

from ..errors import UserError
from ..pipeline import Pipeline
from ..store import Snapshot, Store
from . import fmt
from .base import MonitorScreen
from .lists import ConversationsScreen, ModelsScreen, ProcessesScreen
from .themes import DEFAULT_THEME, ROLE_VARIABLES, load_themes

TICK_S = 0.1
GC_FREEZE_S = 1.0
RATE_WINDOW_S = 60
# End the monitor as `q` does: the terminal is restored and the capture closed cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RateMeter:
    """Output tokens per second over the last minute of capture time, from the snapshot."""

    def __init__(self) -> None:
        self.buckets = [0.0] * RATE_WINDOW_S

    def update(self, snap: Snapshot, now_ns: int) -> None:
        start = now_ns - RATE_WINDOW_S * 1_000_000_000
        buckets = [0.0] * RATE_WINDOW_S
        for v in reversed(snap.exchanges.values()):
            t = v.exchange.timing
            end = t.ts_end if not v.in_flight else now_ns
            if end < start - 120_000_000_000:
                break  # finished exchanges are kept in finishing order: older ones follow
            out = v.exchange.usage.output_tokens or 0
            if not out or end < start:
                continue
            begin = t.ts_first_token or t.ts_start
            first = max(0, int((begin - start) // 1_000_000_000))
            last = min(RATE_WINDOW_S - 1, int((end - start) // 1_000_000_000))
            if last < first:
                continue
            share = out / (last - first + 1)
            for i in range(first, last + 1):
                buckets[i] += share
        self.buckets = buckets

    @property
    def current(self) -> float:
        return self.buckets[-2] if len(self.buckets) > 1 else 0.0  # the last whole second


class MonitorApp(App[int]):
    CSS_PATH = "monitor.tcss"
    TITLE = "llmspy-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("space", "pause", "Pause"),
        Binding("F", "follow", "Follow"),
        Binding("p", "pick_process", "Process"),
        Binding("m", "models", "Models"),
        Binding("t", "next_theme", "Theme"),
    ]

    def __init__(self, source, *, pipeline: Pipeline | None = None, theme: str | None = None,
                 show_secrets: bool = False, pids: tuple[int, ...] = (), comms: tuple[str, ...] = (),
                 tick: float = TICK_S, keep_bytes: int | None = None) -> None:
        super().__init__()
        self.source = source
        store = Store(max_body_bytes=keep_bytes) if keep_bytes else Store()
        self.pipeline = pipeline or Pipeline(store, live=True, show_secrets=show_secrets, pids=pids, comms=comms)
        self.store = self.pipeline.store
        self.show_secrets = show_secrets
        self.snapshot: Snapshot | None = None
        self.paused = False
        self.follow = False
        self.feeding = True  # the source still delivers
        self.internal_error = ""
        self.fed = threading.Event()  # set when the feed worker has returned
        self._feed_started = False
        self.stop_reason = ""  # set by SIGINT, SIGTERM or SIGHUP (see request_stop)
        self._stop = threading.Event()
        self._tick_s = tick
        self._shown_version = -1
        self._last_show = 0.0
        self._shown_state: tuple[int, bool] = (0, True)
        self._paused_calls = 0
        self._rate = RateMeter()
        self._rate_at = 0.0
        self._rate_version = -1
        self._themes = load_themes()
        self._theme_names = [t.name for t in self._themes]
        self._initial_theme = theme or DEFAULT_THEME
        if self._initial_theme not in self._theme_names:
            raise UserError(f"llmspy-tui: no theme {self._initial_theme!r}; "
                            f"choose one of: {', '.join(self._theme_names)}")
        self.palette: dict[str, str] = {}

    # -- set-up ---------------------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(ROLE_VARIABLES)

    def on_mount(self) -> None:
        try:
            import asyncio

            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
        except (RuntimeError, NotImplementedError, ValueError):
            pass
        if self.stop_reason:  # a signal came while the terminal was being set up: end at once
            self.exit()
            return
        for t in self._themes:
            self.register_theme(t)
        self.theme_changed_signal.subscribe(self, lambda _t: self._theme_changed())
        self.theme = self._initial_theme
        self._theme_changed()
        self.push_screen(ProcessesScreen())
        self.set_interval(self._tick_s, self._tick)
        self.set_interval(GC_FREEZE_S, self._freeze_old_objects)
        self._feed()

    def request_stop(self, signum: int) -> None:
        """Remember the first terminating signal; safe from a Python signal handler (it only
        sets a string). Before on_mount that is all it does: on_mount sees it and exits."""
        if not self.stop_reason:
            self.stop_reason = ("interrupted" if signum == signal.SIGINT
                                else f"{signal.Signals(signum).name} received")

    def _on_stop_signal(self, signum: int) -> None:
        self.request_stop(signum)
        self._exit_when_ready()

    def _exit_when_ready(self, tries: int = 100) -> None:
        """Exit as `q` does, but not while the first screen is still being mounted (its
        on_mount would run against widgets the shutdown already removed)."""
        screen = self.screen
        if isinstance(screen, MonitorScreen) and not screen.ready and tries > 0:
            self.set_timer(0.02, lambda: self._exit_when_ready(tries - 1))
            return
        self.exit()

    def _theme_changed(self) -> None:
        v = self.get_css_variables()
        keys = ("streaming", "error", "warning", "success", "accent", "primary", *ROLE_VARIABLES)
        self.palette = {k: v.get(k, "default") for k in keys}
        if self.snapshot is not None:
            self._show(self.snapshot, force=True)

    @work(thread=True, exclusive=True, name="capture feed", exit_on_error=False)
    def _feed(self) -> None:
        """Runs the source and the pipeline; never touches widgets (the timer does)."""
        self._feed_started = True  # (a worker cancelled before its thread ran never gets here)
        try:
            for batch in self.source.batches(self._stop):
                self.pipeline.feed(batch)
            if not self._stop.is_set():
                self.pipeline.finish()  # a replay's open calls end here, marked incomplete
                for problem in getattr(self.source, "problems", lambda: [])():
                    self.call_from_thread(self.notify, problem, severity="warning", timeout=15)
                if self._live():
                    self.call_from_thread(self.notify, "The capture stopped: quit to see why.",
                                          severity="error", timeout=60)
        except UserError as e:
            self.call_from_thread(self.notify, str(e), severity="error", timeout=60)
        except Exception as e:  # never lose the UI to a parser bug: say it, keep what was shown
            self.call_from_thread(self.notify, f"internal error while reading the capture: "
                                  f"{type(e).__name__}: {e}", severity="error", timeout=60)
        finally:
            self.feeding = False
            self.fed.set()

    def on_unmount(self) -> None:
        self._stop.set()  # the feed worker ends between batches; nothing waits on a running app

    def stop_feeding(self, wait: float = 10.0) -> None:
        self._stop.set()
        if self._feed_started:  # else there is nothing to wait for (the app never got that far)
            self.fed.wait(wait)

    def log_message(self, msg: str) -> None:
        """The capture's messages (e.g. a newly hooked binary), as notifications; any thread."""
        msg = msg.removeprefix("llmspy-tui: ")
        if threading.current_thread() is threading.main_thread():
            self.notify(msg, timeout=8)
        else:
            self.call_from_thread(self.notify, msg, timeout=8)

    # -- the timer ------------------------------------------------------------------------------
    def _tick(self, force: bool = False) -> None:
        now = time.monotonic()
        version = self.store.version
        if self.paused:
            if version != self._shown_version:
                self._paused_calls = self.store.total_calls - (self.snapshot.total.calls if self.snapshot else 0)
                self._show_header()
            return
        state = (self.pipeline.lost, self.feeding)  # the header shows these too
        if version == self._shown_version and state == self._shown_state and now - self._last_show < 1.0:
            return  # nothing new; relative times still refresh once a second
        self._shown_state = state
        snap = self.store.snapshot() if version != self._shown_version else self.snapshot
        if snap is None:
            snap = self.store.snapshot()
        if (snap.version != self._rate_version or self._live()) and (
                now - self._rate_at >= 1.0 or not self.feeding):
            self._rate.update(snap, self.now_ns())  # per-second buckets: once a second is enough
            self._rate_at, self._rate_version = now, snap.version
        self.snapshot = snap
        self._shown_version = snap.version
        self._last_show = now
        self._show(snap, force)

    @staticmethod
    def _freeze_old_objects() -> None:
        """Keep the cyclic GC off what the store has accumulated.

        Stored calls are acyclic and are freed by reference counting when evicted; but a full
        collection still walks all of them, pausing both threads for over 100 ms once
        thousands are kept, which is exactly when keys must stay quick. Young garbage is
        collected first, then everything alive is moved out of the collector's sight."""
        gc.collect(1)
        gc.freeze()

    def _show(self, snap: Snapshot, force: bool = False) -> None:
        """On the current screen; `force` for what the user just did (no deferring the body)."""
        self._on_screen(lambda screen: screen.show(snap, force))

    def _on_screen(self, update) -> None:
        screen = self.screen
        if isinstance(screen, MonitorScreen) and screen.ready and screen.is_attached:
            try:
                update(screen)
            except NoMatches:
                pass  # the screen is being built or torn down between two ticks: the next one shows it

    def _show_header(self) -> None:
        from .widgets import TotalsBar

        self._on_screen(lambda screen: screen.query_one(TotalsBar).show(*self.header()))

    def _live(self) -> bool:
        return self.source.label == "live"

    def now_ns(self) -> int:
        """The capture's 'now': the wall clock live, the last event's time in a replay."""
        if self._live():
            return time.time_ns()
        return self.pipeline.last_ts or time.time_ns()

    def header(self) -> tuple[Text, list[float], str]:
        pal = self.palette
        snap = self.snapshot
        t = snap.total if snap else None
        line = Text(no_wrap=True, overflow="ellipsis")
        label = self.source.label
        if label == "live":
            line.append("● LIVE", style=f"bold {pal['error']}")
        else:
            speed = getattr(self.source, "speed", 0)
            line.append(label.upper() + (f" ×{speed:g}" if speed else ""), style=f"bold {pal['accent']}")
            if not self.feeding:
                line.append(" (end)", style="dim")
        if t is not None:
            line.append(f"  calls {t.calls}")
            if t.in_flight:
                line.append(f"  ▶ {t.in_flight} live", style=f"bold {pal['streaming']}")
            line.append(f"  tokens {fmt.tokens(t.input_tokens)} in / {fmt.tokens(t.output_tokens)} out")
            line.append(f"  {fmt.cost(t.cost_usd, t.cost_unknown)}", style="bold")
            if t.errors:
                line.append(f"  {t.errors} errors", style=pal["error"])
        lost = self.pipeline.lost
        if lost:
            line.append(f"  ⚠ lost {lost:,} events", style=f"bold reverse {pal['error']}")
        if snap is not None and snap.evicted:
            line.append(f"  {snap.evicted:,} old calls dropped", style="dim")
        if self.paused:
            waiting = f" +{self._paused_calls} calls waiting" if self._paused_calls > 0 else ""
            line.append(f"  ⏸ PAUSED{waiting}", style=f"bold reverse {pal['warning']}")
        if self.follow:
            line.append("  ⇣ FOLLOW", style=f"bold {pal['accent']}")
        buckets = self._rate.buckets
        return line, buckets, f"{self._rate.current:,.0f} tok/s"

    def empty_hint(self) -> str:
        if not self._live():
            return ("Reading the recording…" if self.feeding
                    else "No LLM calls in this recording (try --headless --all to see its other HTTP traffic).")
        return ("Waiting for LLM calls…\n\nEvery process on this host that talks to an LLM API over TLS "
                "(OpenSSL, including Python and curl; Node's built-in TLS) appears here as soon as it sends "
                "a request. Press ? for help, q to quit.")

    # -- actions --------------------------------------------------------------------------------
    def action_pause(self) -> None:
        self.paused = not self.paused
        self._paused_calls = 0
        if self.paused:
            self._show_header()
            self.notify("Display paused; capture continues. Space resumes.", timeout=3)
        else:
            self._shown_version = -1
            self._show_header()  # the badge goes at once; the lists catch up just after that frame
            self.call_after_refresh(self._tick, True)

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.notify("Following the newest call" if self.follow else "Stopped following", timeout=2)
        if self.snapshot is not None:
            self._show(self.snapshot, force=True)

    def action_next_theme(self) -> None:
        names = self._theme_names
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        from .dialogs import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_models(self) -> None:
        if isinstance(self.screen, ModelsScreen):
            self.pop_screen()
        elif isinstance(self.screen, MonitorScreen):
            self.push_screen(ModelsScreen())

    def action_pick_process(self) -> None:
        from .dialogs import ProcessPicker

        if self.snapshot is None or not any(p.tally.calls for p in self.snapshot.processes):
            self.notify("No process has called an LLM API yet", timeout=3)
            return
        self.push_screen(ProcessPicker(self.snapshot), self.follow_process)

    def follow_process(self, pid: int | None) -> None:
        if pid is None:
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.push_screen(ConversationsScreen(pid))

    def open_export(self, conversation_id: str | None = None, exchange_id: str | None = None) -> None:
        from .dialogs import ExportScreen

        if self.snapshot is None or (conversation_id is None and exchange_id is None):
            self.notify("Nothing to export here: open a conversation or a call first", severity="warning")
            return

        def done(path: str | None) -> None:
            if path:
                self.notify(f"Exported to {path}", title="Export", timeout=8)

        self.push_screen(ExportScreen(self.snapshot, conversation_id, exchange_id, self.show_secrets), done)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause or resume the display", "Capture continues while paused", self.action_pause)
        yield SystemCommand("Follow newest call", "Toggle following the newest call", self.action_follow)
        yield SystemCommand("Pick a process", "Show one process's conversations", self.action_pick_process)
        yield SystemCommand("Models", "Totals per model", self.action_models)
        yield SystemCommand("Help", "Keys and views", self.action_help)
        if isinstance(screen, MonitorScreen) and hasattr(screen, "action_export"):
            yield SystemCommand("Export…", "Export this conversation or call", screen.action_export)
        for name in self._theme_names:
            yield SystemCommand(f"Theme: {name}", "Switch the colour theme", lambda n=name: setattr(self, "theme", n))

    # -- no traceback reaches the user ----------------------------------------------------------
    def _fatal_error(self) -> None:
        if os.environ.get("LLMSPY_DEBUG"):
            return super()._fatal_error()
        e = self._exception
        self.internal_error = f"{type(e).__name__}: {e}" if e else "unknown error"
        self._close_messages_no_wait()
