"""Headless output: JSON lines on stdout, diagnostics on stderr."""

from __future__ import annotations

import base64
import sys
from typing import BinaryIO

import orjson

from .capture.events import ChunkEvent, ConnClosed, ProcessExit, ProcessInfo, ProcessSeen
from .redact import mask_cmdline_arg, mask_http1_secrets


class RawPrinter:
    """`--headless --raw`: one JSON line per captured chunk (plus loss, truncation and close lines)."""

    def __init__(self, out: BinaryIO, show_secrets: bool = False,
                 pids: tuple[int, ...] = (), comms: tuple[str, ...] = ()) -> None:
        self.out = out
        self.show_secrets = show_secrets
        self.procs: dict[int, ProcessInfo] = {}
        self.pids = set(pids)
        self.comms = set(comms)
        self.lines = 0
        self._described: set[int] = set()

    def _wanted(self, pid: int) -> bool:
        if not self.pids and not self.comms:
            return True
        if pid in self.pids:
            return True
        info = self.procs.get(pid)
        return info is not None and info.comm in self.comms

    def handle(self, batch: list) -> None:
        lines = []
        for ev in batch:
            t = type(ev)
            if t is ProcessSeen:
                self.procs[ev.info.pid] = ev.info
                self._described.discard(ev.info.pid)  # exec: describe the new program again
            elif t is ChunkEvent:
                if self._wanted(ev.pid):
                    if ev.pid not in self._described:
                        lines.append(self._process_line(ev.ts, ev.pid))
                    lines.append(self._chunk_line(ev))
            elif t is ConnClosed:
                if self._wanted(ev.pid):
                    lines.append(self._line("close", ev.ts, ev.pid, ev.conn_id))
            elif t is ProcessExit:
                self.procs.pop(ev.pid, None)
                self._described.discard(ev.pid)
        if lines:
            self.out.write(b"".join(lines))
            self.out.flush()
            self.lines += len(lines)

    def _line(self, kind: str, ts: int, pid: int, conn: str, **extra) -> bytes:
        info = self.procs.get(pid)
        d = {"type": kind, "ts": ts / 1e9, "pid": pid, "comm": info.comm if info else "",
             "exe": info.exe if info else "", "conn": conn, **extra}
        return orjson.dumps(d) + b"\n"

    def _process_line(self, ts: int, pid: int) -> bytes:
        """Full identity of a process, once, before its first chunk line."""
        self._described.add(pid)
        info = self.procs.get(pid) or ProcessInfo(pid, 0, "", "", (), 0)
        d = {"type": "process", "ts": ts / 1e9, **info.to_json()}
        if not self.show_secrets:
            d["cmdline"] = [mask_cmdline_arg(a) for a in info.cmdline]
        return orjson.dumps(d) + b"\n"

    def _chunk_line(self, ev: ChunkEvent) -> bytes:
        common = dict(tid=ev.tid, dir=ev.dir, seq=ev.seq, offset=ev.offset, total_len=ev.total_len)
        if ev.truncated:
            return self._line("truncated", ev.ts, ev.pid, ev.conn_id, **common, len=ev.lost)
        if ev.lost:
            return self._line("lost", ev.ts, ev.pid, ev.conn_id, **common, len=ev.lost)
        data = ev.data if self.show_secrets else mask_http1_secrets(ev.data)
        return self._line("chunk", ev.ts, ev.pid, ev.conn_id, **common, len=len(ev.data),
                          data_b64=base64.b64encode(data).decode("ascii"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
