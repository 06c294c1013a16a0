"""Export one conversation, or one call, from a store snapshot as JSON, JSONL or Markdown.

Textual-free and IO-free (bytes in memory; files.py writes them), so the UI, the `export`
command and the tests all produce the same documents. JSON and JSONL reuse the headless line
format (`exchange_record`), with headers, masked unless show_secrets: a program reading one
reads the other.
"""

from __future__ import annotations

import re
from datetime import datetime

import orjson

from ..errors import UserError
from ..store import ConversationView, ExchangeView, Snapshot
from . import markdown
from .record import exchange_record

FORMATS = ("json", "md", "jsonl")
EXTENSIONS = {"json": "json", "md": "md", "jsonl": "jsonl"}

FIND_IDS = ("list them with `llmspy-tui export --replay FILE --list`, or read conversation_id and id "
            "on each line of `llmspy-tui --headless --replay FILE`")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def select(snapshot: Snapshot, *, conversation_id: str | None = None,
           exchange_id: str | None = None) -> tuple[ConversationView | None, list[ExchangeView]]:
    """The conversation (None for a lone call) and the exchanges to export, oldest first."""
    if (conversation_id is None) == (exchange_id is None):
        raise ValueError("give exactly one of conversation_id and exchange_id")
    if exchange_id is not None:
        v = snapshot.exchanges.get(exchange_id)
        if v is None:
            raise UserError(f"llmspy-tui: no call {exchange_id!r} in this capture (it may have been "
                            f"evicted); {FIND_IDS}")
        return snapshot.conversations.get(v.conversation_id) if v.conversation_id else None, [v]
    conv = snapshot.conversations.get(conversation_id)
    if conv is None:
        raise UserError(f"llmspy-tui: no conversation {conversation_id!r} in this capture; {FIND_IDS}")
    return conv, [snapshot.exchanges[x] for x in conv.exchange_ids if x in snapshot.exchanges]


def process_name(snapshot: Snapshot, pid: int, views: list[ExchangeView] = ()) -> str:
    """The comm of a process: from the process list, else from one of its exchanges."""
    for p in snapshot.processes:
        if p.pid == pid and p.comm:
            return p.comm
    return next((v.comm for v in views if v.comm), "")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UserError(f"llmspy-tui: unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def export_bytes(snapshot: Snapshot, *, conversation_id: str | None = None, exchange_id: str | None = None,
                 fmt: str, show_secrets: bool = False) -> bytes:
    """The export document of one conversation (all its kept calls, in order) or of one call."""
    _check_format(fmt)
    conv, views = select(snapshot, conversation_id=conversation_id, exchange_id=exchange_id)
    if fmt == "jsonl":
        return b"".join(orjson.dumps(exchange_record(v, True, show_secrets)) + b"\n" for v in views)
    if exchange_id is not None:
        if fmt == "json":
            return orjson.dumps(exchange_record(views[0], True, show_secrets), option=orjson.OPT_INDENT_2) + b"\n"
        return markdown.single_call(views[0], show_secrets).encode()
    process = process_name(snapshot, conv.pid, views)
    if fmt == "md":
        return markdown.conversation(conv, views, process, show_secrets).encode()
    doc = {"type": "conversation", "id": conv.id, "pid": conv.pid, "process": process, "title": conv.title,
           "models": list(conv.models), "first_ts": conv.first_ts / 1e9, "last_ts": conv.last_ts / 1e9,
           "totals": conv.tally.to_json(), "exchanges": [exchange_record(v, True, show_secrets) for v in views]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def safe_part(text: str, fallback: str = "unknown") -> str:
    """A piece of a file name: only [A-Za-z0-9._-], never empty, never a dot-only name."""
    s = _UNSAFE.sub("_", text).strip("._") or fallback
    return s[:40]


def default_filename(snapshot: Snapshot, *, conversation_id: str | None = None, exchange_id: str | None = None,
                     fmt: str, now: datetime) -> str:
    """`llmspy-<process>-<conversation>[-<call>]-<YYYYmmdd-HHMMSS>.<ext>`: sortable and unique enough."""
    _check_format(fmt)
    conv, views = select(snapshot, conversation_id=conversation_id, exchange_id=exchange_id)
    pid = conv.pid if conv is not None else views[0].exchange.pid
    ids = [conv.id] if conv is not None else []
    if exchange_id is not None:
        ids.append(exchange_id)
    parts = ["llmspy", safe_part(process_name(snapshot, pid, views)), *(safe_part(i) for i in ids),
             now.strftime("%Y%m%d-%H%M%S")]
    return "-".join(parts) + "." + EXTENSIONS[fmt]
