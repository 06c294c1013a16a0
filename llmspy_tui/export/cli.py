"""`llmspy-tui export`: a conversation or a call of a recording, written to a file, from the shell.

It replays the recording through the same pipeline as the monitor, so the export holds exactly
what the UI would show. It parses its own arguments and turns every failure into one line on
stderr and an exit code, so the main entry point only has to hand it its argv.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from ..errors import UserError, run_guarded
from ..store import Snapshot, Store
from .documents import EXTENSIONS, FORMATS, default_filename, export_bytes, process_name, select
from .files import write_private
from .markdown import money

BATCH = 512  # capture events per pipeline call, as in a replay of the monitor


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmspy-tui export",
        description="Export a conversation or a call of a recording as JSON, JSONL or a Markdown "
        "transcript. Files are created new, mode 0600; credentials are masked unless --show-secrets.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--replay", metavar="FILE", help="the recording to read (made with --record)")
    src.add_argument("--demo", action="store_true", help="the bundled demo recording")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--conversation", metavar="ID", help="export this conversation (c1, c2, ...)")
    what.add_argument("--call", metavar="ID", help="export this one call (x1, x2, ...)")
    what.add_argument("--list", action="store_true", help="list the conversations of the recording")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="json, md (Markdown transcript) or jsonl (one call per line); default: from "
                   "the --output extension, else md")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="where to write ('-' for stdout); default: llmspy-<process>-<id>-<time>.<ext> "
                   "in the current directory. An existing file is never overwritten.")
    p.add_argument("--show-secrets", action="store_true",
                   help="do not mask Authorization, API keys, cookies and key= parameters")
    return p


def load(path: str, show_secrets: bool = False) -> Snapshot:
    """Replay a recording into a fresh store; a damaged end is reported and the rest kept."""
    from ..capture.recordfile import RecordingReader
    from ..pipeline import Pipeline

    reader = RecordingReader(path)
    pipeline = Pipeline(Store(), show_secrets=show_secrets)
    batch: list = []
    for ev in reader:
        batch.append(ev)
        if len(batch) >= BATCH:
            pipeline.feed(batch)
            batch = []
    pipeline.feed(batch)
    pipeline.finish()
    if reader.info.problem:
        _log(f"llmspy-tui: warning: {path}: {reader.info.problem}")
    return pipeline.store.snapshot()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cost(t) -> str:
    if t.cost_unknown and not t.cost_usd:
        return "—"
    s = money(t.cost_usd)
    return ("≥" + s) if t.cost_unknown else s


def list_table(snap: Snapshot) -> str:
    """The conversations as an aligned text table, oldest first."""
    head = ("ID", "PID", "PROCESS", "MODEL", "CALLS", "TOKENS IN/OUT", "COST", "TITLE")
    rows = [head]
    for c in snap.conversations.values():
        t = c.tally
        rows.append((c.id, str(c.pid), process_name(snap, c.pid) or "?", ",".join(c.models) or "?",
                     str(t.calls), f"{t.input_tokens}/{t.output_tokens}", _cost(t), c.title))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    return "\n".join(lines) + "\n"


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    ext = os.path.splitext(args.output or "")[1].lstrip(".").lower()
    return next((f for f, e in EXTENSIONS.items() if e == ext), "md")


def run(args: argparse.Namespace) -> int:
    if args.list and (args.output or args.format):
        raise UserError("llmspy-tui: --list prints a table on stdout; --output and --format apply to exports")
    if args.demo:
        from ..cli import demo_path

        args.replay = demo_path()
    snap = load(args.replay, args.show_secrets)
    if args.list:
        if not snap.conversations:
            _log(f"llmspy-tui: {args.replay}: no LLM conversations in this recording")
            return 1
        sys.stdout.write(list_table(snap))
        sys.stdout.flush()
        return 0
    fmt = _format(args)
    ids = dict(conversation_id=args.conversation, exchange_id=args.call)
    data = export_bytes(snap, fmt=fmt, show_secrets=args.show_secrets, **ids)
    if args.output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    path = args.output or default_filename(snap, fmt=fmt, now=datetime.now(), **ids)
    written = write_private(path, data)
    calls = len(select(snap, **ids)[1])
    _log(f"wrote {written} ({calls} call{'s' if calls != 1 else ''})")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `llmspy-tui export ...`: returns the exit code, never raises."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse already printed
        return e.code if isinstance(e.code, int) else 2
    return run_guarded(run, args)
