"""Headless output: JSON lines on stdout, diagnostics on stderr."""

from __future__ import annotations

import base64
import sys
from typing import BinaryIO

import orjson

from .capture.events import ChunkEvent, ConnClosed, ProcessExit, ProcessInfo, ProcessSeen
from .pipeline import wanted
from .protocol import ProtocolTracker
from .protocol import events as pe
from .redact import RawMasker, mask_cmdline_arg, mask_keys, mask_keys_bytes, redact_headers, redact_target


class _Printer:
    """What both printers share: the output, masking choice, process names and filters."""

    def __init__(self, out: BinaryIO, show_secrets: bool = False,
                 pids: tuple[int, ...] = (), comms: tuple[str, ...] = ()) -> None:
        self.out = out
        self.show_secrets = show_secrets
        self.procs: dict[int, ProcessInfo] = {}
        self.pids = set(pids)
        self.comms = set(comms)
        self.lines = 0

    def _wanted(self, pid: int) -> bool:
        return wanted(pid, self.procs, self.pids, self.comms)

    @property
    def internal_errors(self) -> int:
        """Input our parsers failed on (a bug of ours, never the traffic's): reported on stderr."""
        return 0

    def _write(self, lines: list[bytes]) -> None:
        if lines:
            data = memoryview(b"".join(lines))
            while data:
                # A signal (Ctrl-C, SIGTERM) that interrupts a write blocked on a full pipe makes
                # BufferedWriter.write return the part written so far: write the rest, or the
                # output would end (or go on) with a cut line.
                data = data[self.out.write(data):]
            self.out.flush()
            self.lines += len(lines)


class RawPrinter(_Printer):
    """`--headless --raw`: one JSON line per captured chunk (plus loss, truncation and close lines)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._described: set[int] = set()
        self._masker = RawMasker()

    def close(self) -> None:
        """Nothing is held back in raw mode."""

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
                self._masker.forget(ev.pid, ev.conn)
                if self._wanted(ev.pid):
                    lines.append(self._line("close", ev.ts, ev.pid, ev.conn_id))
            elif t is ProcessExit:
                self.procs.pop(ev.pid, None)
                self._described.discard(ev.pid)
                self._masker.forget_process(ev.pid)
        self._write(lines)

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
        data = ev.data if self.show_secrets else self._masker.mask(ev.pid, ev.conn, ev.dir, ev.offset, ev.data)
        return self._line("chunk", ev.ts, ev.pid, ev.conn_id, **common, len=len(ev.data),
                          data_b64=base64.b64encode(data).decode("ascii"))


class HttpPrinter(_Printer):
    """`--headless --http`: one JSON line per HTTP event the protocol layer reconstructs.

    Lines: connection, request, response, body, sse, json_item, end, gap, notice, close. Header
    values and key= parameters that carry credentials are masked unless --show-secrets.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tracker = ProtocolTracker()
        self.last_ts = 0

    def handle(self, batch: list) -> None:
        lines = []
        for ev in batch:
            t = type(ev)
            if t is ProcessSeen:
                self.procs[ev.info.pid] = ev.info
                continue
            ts = getattr(ev, "ts", 0)
            if ts:
                self.last_ts = max(self.last_ts, ts)
            if t in (ChunkEvent, ConnClosed) and not self._wanted(ev.pid):
                continue
            for pev in self.tracker.feed(ev):
                lines.append(self._line(pev))
            if t is ProcessExit:
                self.procs.pop(ev.pid, None)
        self._write(lines)

    def close(self) -> None:
        """End of capture: messages still open end here, marked incomplete."""
        self._write([self._line(e) for e in self.tracker.finish(self.last_ts)])

    @property
    def internal_errors(self) -> int:
        return self.tracker.internal_errors

    def _line(self, ev) -> bytes:
        info = self.procs.get(ev.pid)
        d = {"type": "", "ts": ev.ts / 1e9, "pid": ev.pid, "comm": info.comm if info else "",
             "conn": ev.conn}
        t = type(ev)
        if t is pe.ConnectionDetected:
            d.update(type="connection", protocol=ev.protocol, role=ev.role, mid_stream=ev.mid_stream,
                     exe=info.exe if info else "")
        elif t is pe.RequestHead:
            d.update(type="request", stream=ev.stream, http_version=ev.http_version, method=ev.method,
                     target=redact_target(ev.target, self.show_secrets), authority=ev.authority,
                     headers=redact_headers(ev.headers, self.show_secrets), headers_known=ev.headers_known)
        elif t is pe.ResponseHead:
            d.update(type="response", stream=ev.stream, http_version=ev.http_version, status=ev.status,
                     reason=ev.reason, interim=ev.interim,
                     headers=redact_headers(ev.headers, self.show_secrets), headers_known=ev.headers_known)
        elif t is pe.BodyData:
            data = ev.data if self.show_secrets else mask_keys_bytes(ev.data)
            d.update(type="body", stream=ev.stream, side=ev.side, len=len(data))
            try:
                d["text"] = data.decode("utf-8")
            except UnicodeDecodeError:
                d["data_b64"] = base64.b64encode(data).decode("ascii")
        elif t is pe.SseEvent:
            d.update(type="sse", stream=ev.stream, side=ev.side, event=ev.event,
                     data=ev.data if self.show_secrets else mask_keys(ev.data), id=ev.id,
                     terminated=ev.terminated)
        elif t is pe.JsonItem:
            text = ev.text if self.show_secrets else mask_keys_bytes(ev.text)
            d.update(type="json_item", stream=ev.stream, side=ev.side, framing=ev.framing,
                     text=text.decode("utf-8", "replace"))
        elif t is pe.MessageEnd:
            d.update(type="end", stream=ev.stream, side=ev.side, complete=ev.complete, problem=ev.problem,
                     wire_bytes=ev.wire_bytes, body_bytes=ev.body_bytes,
                     first_byte_ts=ev.first_byte_ts / 1e9, last_byte_ts=ev.last_byte_ts / 1e9,
                     trailers=redact_headers(ev.trailers, self.show_secrets))
        elif t is pe.StreamGap:
            d.update(type="gap", dir=ev.direction, offset=ev.offset, len=ev.length)
        elif t is pe.ProtocolNotice:
            d.update(type="notice", text=ev.text)
        else:
            d.update(type="close", reason=ev.reason)
        return orjson.dumps(d) + b"\n"


class ExchangePrinter(_Printer):
    """`--headless`: one JSON line per finished LLM exchange (with --all, every HTTP exchange)."""

    def __init__(self, *args, all_http: bool = False, headers: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from .pipeline import Pipeline

        self.pipeline = Pipeline(show_secrets=self.show_secrets, pids=tuple(self.pids), comms=tuple(self.comms))
        self.all_http = all_http
        self.headers = headers

    def handle(self, batch: list) -> None:
        self._print(self.pipeline.feed(batch))

    def close(self) -> None:
        """End of capture: exchanges still open are printed, marked incomplete."""
        self._print(self.pipeline.finish())

    @property
    def internal_errors(self) -> int:
        return self.pipeline.internal_errors

    def _print(self, views) -> None:
        from .export import exchange_record

        self._write([orjson.dumps(exchange_record(v, self.headers, self.show_secrets)) + b"\n"
                     for v in views if self.all_http or v.exchange.is_llm])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
