"""Exchanges as data for other programs and people: JSON records (headless lines), and exports of
a conversation or a call as JSON, JSONL or Markdown, written to private files."""

from .documents import EXTENSIONS, FORMATS, default_filename, export_bytes, select
from .files import create_private, write_private
from .record import exchange_record

__all__ = ["EXTENSIONS", "FORMATS", "create_private", "default_filename", "exchange_record", "export_bytes",
           "select", "write_private"]
