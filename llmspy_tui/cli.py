"""Command line entry point: argument parsing, signal handling, and the one place errors become
one-line messages with an exit code (no traceback ever reaches the user)."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time

from . import __version__
from .capture.loader import DEFAULT_MAX_CAPTURE
from .errors import UserError, run_guarded

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.I)


def parse_size(text: str) -> int:
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 1048576, 512K, 4M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmspy-tui",
        description="Watch, live, what processes send to and receive from LLM APIs. "
        "Hooks the TLS library with eBPF uprobes: no proxy, no certificates, no code changes.",
    )
    p.add_argument("--version", action="version", version=f"llmspy-tui {__version__}")
    p.add_argument("--headless", action="store_true",
                   help="print one JSON line per finished LLM call instead of the full-screen UI")
    p.add_argument("--all", action="store_true",
                   help="with --headless: also print HTTP exchanges that are not LLM calls (provider null)")
    p.add_argument("--headers", action="store_true",
                   help="with --headless: include request and response headers (credentials masked)")
    p.add_argument("--raw", action="store_true",
                   help="with --headless: one JSON line per captured TLS chunk (ts, pid, tid, comm, exe, "
                   "conn, dir, offset, len, data_b64)")
    p.add_argument("--http", action="store_true",
                   help="with --headless: one JSON line per reconstructed HTTP event (connection, "
                   "request, response, body, sse, json_item, end, gap, notice, close)")
    p.add_argument("-p", "--pid", type=int, action="append", default=[], metavar="PID",
                   help="only this process (repeatable)")
    p.add_argument("-c", "--comm", action="append", default=[], metavar="NAME",
                   help="only processes with this name, and their forked children (repeatable)")
    p.add_argument("--max-capture", type=parse_size, default=DEFAULT_MAX_CAPTURE, metavar="SIZE",
                   help="bytes captured per SSL call, the rest is reported as truncated (default 16M)")
    p.add_argument("--inbound", action="store_true",
                   help="also capture connections on which a traced process is the TLS server (a local "
                   "LLM server or proxy); by default only what processes send out is copied")
    p.add_argument("--ring-mb", type=int, default=64, metavar="MB",
                   help="BPF ring buffer size in MiB, at least 1, rounded down to a power of two (default 64)")
    p.add_argument("--backlog", type=parse_size, default=None, metavar="SIZE",
                   help="captured data held in memory while the parser catches up (default 256M); past it "
                   "new data is dropped, counted and marked as lost in its stream, so memory stays bounded")
    p.add_argument("--keep", type=parse_size, default=None, metavar="SIZE",
                   help="request and response bodies the full-screen monitor keeps in memory; past it "
                   "the oldest calls are dropped from the lists (totals keep counting them; default 64M)")
    p.add_argument("--record", metavar="FILE", help="also write everything captured to FILE (mode 0600)")
    p.add_argument("--replay", metavar="FILE", help="read a recording instead of capturing (no root needed)")
    p.add_argument("--demo", action="store_true",
                   help="replay the bundled demo capture (real clients on loopback; no root needed)")
    p.add_argument("--speed", type=float, metavar="X",
                   help="replay at X times the recorded pace (default: as fast as possible for --replay, "
                   "1 for --demo so responses are seen streaming; 0 = as fast as possible)")
    p.add_argument("--theme", metavar="NAME",
                   help="colour theme of the full-screen monitor (llmspy-dark, llmspy-light, "
                   "llmspy-high-contrast, or a file added to themes/); t cycles them")
    p.add_argument("--show-secrets", action="store_true",
                   help="do not mask Authorization, API keys, cookies and key= parameters")
    return p


class _StopRequest:
    """Set by SIGINT/SIGTERM/SIGHUP. The handler only records the request: raising from it could
    abandon a batch half-written; the main loop stops between batches, then drains the rest.

    `is_set` and `wait` let a replay's pacing use it like a threading.Event (whose set() must not
    be called from a signal handler: it takes a lock the interrupted code may hold)."""

    def __init__(self) -> None:
        self.reason = ""

    def __call__(self, signum, _frame) -> None:
        if not self.reason:
            self.reason = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)

    def is_set(self) -> bool:
        return bool(self.reason)

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self.reason and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        return bool(self.reason)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        from .export.cli import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_guarded(run, args)


def run(args: argparse.Namespace) -> int:
    if args.raw and args.http:
        raise UserError("llmspy-tui: choose one of --raw and --http")
    if (args.raw or args.http or args.all or args.headers) and not args.headless:
        raise UserError("llmspy-tui: --raw, --http, --all and --headers go with --headless")
    if (args.raw or args.http) and (args.all or args.headers):
        raise UserError("llmspy-tui: --all and --headers apply to exchange lines, not to --raw or --http")
    if args.demo:
        if args.replay:
            raise UserError("llmspy-tui: --demo and --replay cannot be combined")
        args.replay = demo_path()
    if args.replay and args.record:
        raise UserError("llmspy-tui: --record and --replay cannot be combined")
    if args.speed is not None and not args.replay:
        raise UserError("llmspy-tui: --speed applies to --replay and --demo")
    if args.speed is not None and args.speed < 0:
        raise UserError("llmspy-tui: --speed must be 0 (as fast as possible) or more")
    if args.ring_mb < 1:  # (0 or less would silently give a one-page ring that loses every chunk)
        raise UserError("llmspy-tui: --ring-mb must be at least 1")
    if args.backlog is not None and (args.backlog < 1 << 20 or args.replay):
        raise UserError("llmspy-tui: --backlog applies to live capture and is at least 1M")
    if not args.headless:
        return _full_screen(args)
    if args.theme:
        raise UserError("llmspy-tui: --theme applies to the full-screen monitor, not --headless")

    from .headless import ExchangePrinter, HttpPrinter, RawPrinter

    common = dict(show_secrets=args.show_secrets, pids=tuple(args.pid), comms=tuple(args.comm))
    if args.raw or args.http:
        printer = (HttpPrinter if args.http else RawPrinter)(sys.stdout.buffer, **common)
    else:
        printer = ExchangePrinter(sys.stdout.buffer, all_http=args.all, headers=args.headers, **common)
    stop = _StopRequest()
    stop.install()
    if args.replay:
        return _replay(args, printer, stop)
    return _live(args, printer, stop)


def demo_path() -> str:
    from importlib import resources

    return str(resources.files("llmspy_tui").joinpath("data", "demo.llmspy"))


def _live_source(args):
    from .sources import LiveSource

    return LiveSource(max_capture=args.max_capture, ring_mb=args.ring_mb, backlog=args.backlog, pids=tuple(args.pid),
                      comms=tuple(args.comm), record=args.record, inbound=args.inbound, log=_log)


def _full_screen(args) -> int:
    from .sources import ReplaySource
    from .tui import run_monitor

    if not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        raise UserError("llmspy-tui: the full-screen monitor needs a terminal on stdin, stdout and stderr "
                        "(it draws on stderr, so do not redirect that); use --headless for JSON lines")
    if args.replay:
        speed = args.speed if args.speed is not None else (1.0 if args.demo else 0.0)
        source = ReplaySource(args.replay, speed, label="demo" if args.demo else "replay")
    else:
        source = _live_source(args)
    return run_monitor(source, theme=args.theme, show_secrets=args.show_secrets,
                       pids=tuple(args.pid), comms=tuple(args.comm), log=_log, keep_bytes=args.keep)


def _replay(args, printer, stop: _StopRequest) -> int:
    from .sources import ReplaySource

    source = ReplaySource(args.replay, args.speed or 0.0)
    for batch in source.batches(stop):  # a signal ends it between batches: only whole lines
        printer.handle(batch)
    printer.close()
    for problem in source.problems():
        _log(f"llmspy-tui: {problem}")
    _report_internal_errors(printer)
    if stop.reason and not source.finished:
        _log(f"llmspy-tui: {stop.reason}: the replay of {args.replay} stopped before its end")
    return 0


def _live(args, printer, stop: _StopRequest) -> int:
    from .capture.events import Counters

    source = _live_source(args)
    summary = ""
    try:
        source.start()
        _log("Hit Ctrl-C to end.")
        lost_reported = errors_reported = 0
        for batch in source.batches(lambda: bool(stop.reason)):
            printer.handle(batch)
            for ev in batch:
                if type(ev) is Counters and ev.lost > lost_reported:
                    _log(f"llmspy-tui: warning: events lost so far: {ev.summary()}")
                    lost_reported = ev.lost
            if printer.internal_errors > errors_reported:
                errors_reported = _report_internal_errors(printer, "so far")
    finally:
        def deliver(batch: list) -> None:
            try:
                printer.handle(batch)
            except BrokenPipeError:
                pass

        try:
            summary = source.close(deliver, stop.reason)
            printer.close()
        except BrokenPipeError:
            pass
        if summary:
            _log(summary)
        _report_internal_errors(printer)
    return 0


def _report_internal_errors(printer, when: str = "in all") -> int:
    """Parser failures are ours, not the traffic's; the connections they hit are marked in the
    output, and the count goes to stderr so that they are never silent."""
    n = printer.internal_errors
    if n:
        _log(f"llmspy-tui: warning: {n} internal parsing error{'s' if n != 1 else ''} {when} (a bug in "
             "llmspy-tui; the connections affected carry a notice; please report it with the recording)")
    return n


if __name__ == "__main__":
    sys.exit(main())
