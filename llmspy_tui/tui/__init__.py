"""The full-screen monitor (the only package that imports textual)."""

from __future__ import annotations

from typing import Callable


def run_monitor(source, *, theme: str | None, show_secrets: bool, pids: tuple[int, ...],
                comms: tuple[str, ...], log: Callable[[str], None], keep_bytes: int | None = None) -> int:
    """Start the source (probes attach before the screen takes over, so their errors print
    plainly), run the app, then stop the capture and report what it counted."""
    import signal

    from ..errors import UserError
    from .app import STOP_SIGNALS, MonitorApp

    app = MonitorApp(source, theme=theme, show_secrets=show_secrets, pids=pids, comms=comms,
                     keep_bytes=keep_bytes)
    live = source.label == "live"
    summary = ""

    # SIGINT, SIGTERM and SIGHUP only record why the monitor should end, from now on: while
    # the probes attach, while Textual sets up the terminal (the app's event loop takes the
    # signals over in on_mount, which then exits if one came already) and after the app, while
    # the capture closes. Their default action would kill the process with the terminal in
    # raw mode on the alternate screen, or leave the recording without its end.
    def on_signal(signum, _frame) -> None:
        app.request_stop(signum)

    def take_signals() -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, on_signal)

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    take_signals()
    try:
        try:
            if live:
                source.start()
                source.log = app.log_message
            if not app.stop_reason:
                app.run()
        finally:
            take_signals()  # closing its event loop reset them to their defaults
            app.stop_feeding()
            if live:
                source.log = log
                summary = source.close(deliver=app.pipeline.feed if app.fed.is_set() else None,
                                       reason=app.stop_reason or "monitor closed")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if app.internal_error:
        raise UserError(f"llmspy-tui: internal error: {app.internal_error} "
                        "(please report it; set LLMSPY_DEBUG=1 for a traceback)", 70)
    for problem in getattr(source, "problems", lambda: [])():
        log(f"llmspy-tui: {problem}")
    if summary:
        log(summary)
    return 0
