"""Command line entry point: argument parsing, signal handling, and the one place errors become
one-line messages with an exit code (no traceback ever reaches the user)."""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import sys
from typing import Iterator

from . import __version__
from .errors import UserError

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
    p.add_argument("--max-capture", type=parse_size, default=1 << 20, metavar="SIZE",
                   help="bytes captured per SSL call, the rest is reported as truncated (default 1M)")
    p.add_argument("--ring-mb", type=int, default=64, metavar="MB",
                   help="BPF ring buffer size in MiB (default 64)")
    p.add_argument("--record", metavar="FILE", help="also write everything captured to FILE (mode 0600)")
    p.add_argument("--replay", metavar="FILE", help="read a recording instead of capturing (no root needed)")
    p.add_argument("--demo", action="store_true",
                   help="replay the bundled demo capture (real clients on loopback; no root needed)")
    p.add_argument("--show-secrets", action="store_true",
                   help="do not mask Authorization, API keys, cookies and key= parameters")
    return p


class _StopRequest:
    """Set by SIGINT/SIGTERM/SIGHUP. The handler only records the request: raising from it could
    abandon a batch half-written; the main loop stops between batches, then drains the rest."""

    def __init__(self) -> None:
        self.reason = ""

    def __call__(self, signum, _frame) -> None:
        if not self.reason:
            self.reason = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        _log(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout consumer went away (e.g. `| head`): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as e:  # last line of defence: one line, and where to find details
        _log(f"llmspy-tui: internal error: {type(e).__name__}: {e} "
             "(please report it; set LLMSPY_DEBUG=1 for a traceback)")
        if os.environ.get("LLMSPY_DEBUG"):
            raise
        return 70


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        raise UserError(
            "llmspy-tui: the full-screen monitor is not available in this version; "
            "use --headless for one JSON line per LLM call."
        )
    if args.raw and args.http:
        raise UserError("llmspy-tui: choose one of --raw and --http")
    if (args.raw or args.http) and (args.all or args.headers):
        raise UserError("llmspy-tui: --all and --headers apply to exchange lines, not to --raw or --http")
    if args.demo:
        if args.replay:
            raise UserError("llmspy-tui: --demo and --replay cannot be combined")
        args.replay = demo_path()
    if args.replay and args.record:
        raise UserError("llmspy-tui: --record and --replay cannot be combined")

    from .headless import ExchangePrinter, HttpPrinter, RawPrinter

    common = dict(show_secrets=args.show_secrets, pids=tuple(args.pid), comms=tuple(args.comm))
    if args.raw or args.http:
        printer = (HttpPrinter if args.http else RawPrinter)(sys.stdout.buffer, **common)
    else:
        printer = ExchangePrinter(sys.stdout.buffer, all_http=args.all, headers=args.headers, **common)
    if args.replay:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.default_int_handler)
        return _replay(args, printer)
    return _live(args, printer)


def demo_path() -> str:
    from importlib import resources

    return str(resources.files("llmspy_tui").joinpath("data", "demo.llmspy"))


def _replay(args, printer) -> int:
    from .capture.recordfile import RecordingReader

    reader = RecordingReader(args.replay)
    batch: list = []
    for ev in reader:
        batch.append(ev)
        if len(batch) >= 512:
            printer.handle(batch)
            batch = []
    printer.handle(batch)
    printer.close()
    info = reader.info
    if info.problem:
        _log(f"llmspy-tui: {args.replay}: {info.problem}")
    elif not info.complete:
        _log(f"llmspy-tui: {args.replay}: no end marker (the recording was not closed cleanly)")
    if info.counters:
        from .capture.events import Counters

        _log(f"llmspy-tui: recorded counters: {Counters(0, info.counters).summary()}")
    return 0


def _live(args, printer) -> int:
    from .capture.events import Counters
    from .capture.live import CaptureOptions, LiveCapture
    from .capture.recordfile import Recorder

    for pid in args.pid:
        if not os.path.exists(f"/proc/{pid}"):
            _log(f"llmspy-tui: warning: no process {pid} is running now (watching for it anyway)")
    cap = LiveCapture(CaptureOptions(max_capture=args.max_capture, pids=tuple(args.pid),
                                     comms=tuple(args.comm), ring_mb=args.ring_mb, log=_log))
    recorder = None
    if args.record:
        # Create the file first: a bad path should fail before any probe is attached.
        recorder = Recorder(args.record)
    stop = _StopRequest()
    stop.install()

    def deliver(batch: list) -> None:
        if recorder is not None:
            recorder.write_many(batch)
        printer.handle(batch)

    try:
        cap.start()
        if recorder is not None:
            recorder.start({"argv": sys.argv[1:], "max_capture": args.max_capture,
                            "targets": cap.header_targets})
        files = len(cap.header_targets)
        _log(f"Tracing SSL_write/SSL_read in {files} file{'s' if files != 1 else ''} "
             f"({cap.prog.open_probes()} uprobes) for all processes"
             f"{' (filtered)' if args.pid or args.comm else ''}... Hit Ctrl-C to end.")
        lost_reported = 0
        for batch in _batches(cap, stop):
            deliver(batch)
            for ev in batch:
                if type(ev) is Counters and ev.lost > lost_reported:
                    _log(f"llmspy-tui: warning: events lost so far: {ev.summary()}")
                    lost_reported = ev.lost
    finally:
        reason = stop.reason or "end of capture"
        cap.stop()
        # whatever the worker had drained before it stopped
        try:
            for batch in cap.remaining():
                deliver(batch)
            printer.close()
        except BrokenPipeError:
            pass
        counters = Counters(0, dict(cap.final_counters))
        if recorder is not None and cap.prog is None:
            recorder.discard()
        elif recorder is not None:
            recorder.close({"counters": counters.values, "targets": cap.header_targets,
                            "reason": reason})
        if cap.prog is not None:
            _log(f"llmspy-tui: {reason}: {counters.summary()}")
    if cap.error is not None:
        raise UserError(f"llmspy-tui: capture stopped: {type(cap.error).__name__}: {cap.error}", 1)
    return 0


def _batches(cap, stop: _StopRequest) -> Iterator[list]:
    while not stop.reason:
        try:
            batch = cap.batches.get(timeout=0.5)
        except queue.Empty:
            continue
        if not batch:
            return
        yield batch


if __name__ == "__main__":
    sys.exit(main())
