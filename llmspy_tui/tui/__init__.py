"""The full-screen monitor (the only package that imports textual)."""

from __future__ import annotations

from typing import Callable


def run_monitor(source, *, theme: str | None, show_secrets: bool, pids: tuple[int, ...],
                comms: tuple[str, ...], log: Callable[[str], None], keep_bytes: int | None = None) -> int:
    """Start the source (probes attach before the screen takes over, so their errors print
    plainly), run the app, then stop the capture and report what it counted."""
    from ..errors import UserError
    from .app import MonitorApp

    app = MonitorApp(source, theme=theme, show_secrets=show_secrets, pids=pids, comms=comms,
                     keep_bytes=keep_bytes)
    live = source.label == "live"
    summary = ""
    try:
        if live:
            source.start()
            source.log = app.log_message
        app.run()
    finally:
        app.stop_feeding()
        if live:
            source.log = log
            summary = source.close(deliver=app.pipeline.feed if app.fed.is_set() else None,
                                   reason="monitor closed")
    if app.internal_error:
        raise UserError(f"llmspy-tui: internal error: {app.internal_error} "
                        "(please report it; set LLMSPY_DEBUG=1 for a traceback)", 70)
    for problem in getattr(source, "problems", lambda: [])():
        log(f"llmspy-tui: {problem}")
    if summary:
        log(summary)
    return 0
