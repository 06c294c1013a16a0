"""Live capture: a background worker drains the BPF ring buffer into batches of CaptureEvents.

The drain thread owns the ring and the process table; a second thread owns the target index and
attaches probes to libraries found later (each piece of state has one writer, no locks).
Consumers get whole batches from `batches` (a queue), so nothing downstream ever runs per record
on the drain thread, and a slow consumer cannot make the kernel drop records.
"""

from __future__ import annotations

import heapq
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .events import (
    ChunkEvent,
    ConnClosed,
    Counters,
    ProcessExec,
    ProcessExit,
    ProcessSeen,
)
from .kernel_env import ensure_tracefs, import_bcc, require_kernel_headers, require_root
from .loader import DEFAULT_MAX_CAPTURE, DEFAULT_RING_MB, BpfProgram
from .procinfo import ProcessTable, list_pids
from .records import (
    DIR_NAMES,
    HDR,
    HDR_SIZE,
    KIND_DATA,
    KIND_EXEC,
    KIND_EXIT,
    KIND_LOST,
    KIND_SSL_FREE,
    KIND_TRUNCATED,
)
from .targets import Target, TargetIndex, default_bin_dirs

# After an exec, look at the process's maps again to catch libraries it dlopen()s later.
RESCAN_DELAYS = (0.2, 1.0, 3.0, 10.0)
HOST_RESCAN_EVERY = 10.0
COUNTERS_EVERY = 1.0
# The kernel side never wakes this worker (see RB_FLAGS in the BPF source): it drains this often.
DRAIN_EVERY = 0.005
# Captured data not yet taken by the consumer (the parser) is held in memory up to this much.
DEFAULT_BACKLOG_MB = 256


@dataclass
class CaptureOptions:
    max_capture: int = DEFAULT_MAX_CAPTURE
    pids: tuple[int, ...] = ()
    comms: tuple[str, ...] = ()
    ring_mb: int = DEFAULT_RING_MB
    inbound: bool = False  # copy connections where the traced process is the TLS server
    backlog_mb: int = DEFAULT_BACKLOG_MB
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr, flush=True))


class LiveCapture:
    def __init__(self, options: CaptureOptions) -> None:
        self.opts = options
        # (batch, data bytes in it); take() is the consumer's end
        self.batches: queue.SimpleQueue[tuple[list, int]] = queue.SimpleQueue()
        # Backlog = queued - taken, each counter written by one thread only (no lock needed).
        self._queued = 0  # data bytes handed on (drain thread)
        self._taken = 0  # data bytes the consumer took (consumer thread)
        self._pending_bytes = 0
        self._backlog_limit = max(1, options.backlog_mb) << 20
        self.backlog_drop = 0  # data records not kept because the consumer was that far behind
        self.backlog_drop_bytes = 0
        self.procs = ProcessTable()
        self.targets = TargetIndex()
        self.header_targets: list[dict] = []
        self._announced: set[int] = set()
        self._pending: list = []
        self._rescans: list[tuple[float, int]] = []  # (when, pid): owned by the scan thread
        # execs handed from the drain thread to the scan thread; None stops it
        self._execs: queue.SimpleQueue[tuple[int, int, str] | None] = queue.SimpleQueue()
        self._scanner: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock_offset = time.time_ns() - time.monotonic_ns()
        self.prog: BpfProgram | None = None
        self.final_counters: dict[str, int] = {}
        self.error: BaseException | None = None
        self.internal_errors = 0  # records whose handling raised (reported, never silent)

    # -- set-up (caller's thread) -------------------------------------------------------
    def start(self) -> None:
        require_root()
        bcc = import_bcc()
        require_kernel_headers()
        ensure_tracefs(self.opts.log)
        self.prog = BpfProgram(bcc, self.opts.max_capture, self.opts.ring_mb)
        self.prog.set_inbound(self.opts.inbound)
        if self.opts.pids or self.opts.comms:
            self.prog.set_filter(True)
            for pid in self.opts.pids:
                self.prog.allow(pid, inherit=False)
        pids = list_pids()
        for pid in pids:
            info = self.procs.get(pid)
            if self.opts.comms and info.comm in self.opts.comms:
                self.prog.allow(pid, inherit=True)
        new = self.targets.scan_host(pids=pids, bin_dirs=default_bin_dirs())
        if not new:
            raise_no_tls()
        for t in new:
            self._attach(t)
        if self.prog.open_probes() == 0:
            raise_no_tls(attach_failed=True)
        self.prog.open_ring(self._on_record)
        self._thread = threading.Thread(target=self._run, name="llmspy-drain", daemon=True)
        self._thread.start()
        self._scanner = threading.Thread(target=self._housekeep, name="llmspy-scan", daemon=True)
        self._scanner.start()

    def _attach(self, t: Target, since_ns: int | None = None, pid: int | None = None) -> None:
        assert self.prog is not None
        res = self.prog.attach(t)
        entry = {"path": t.path, "dev": t.dev, "ino": t.ino, "origin": t.origin,
                 "functions": sorted(res.attached)}
        if since_ns is not None:  # how long a newly exec'd binary ran unhooked
            entry["attach_ms_after_exec"] = ms = round((time.time_ns() - since_ns) / 1e6, 1)
            if res.attached:
                self.opts.log(f"llmspy-tui: hooked {t.path} (new, started as pid {pid}) {ms:.0f} ms "
                              "after its exec")
        if res.errors:
            entry["errors"] = res.errors
            self.opts.log(f"llmspy-tui: could not attach to {t.path}: {'; '.join(res.errors)}")
        self.header_targets.append(entry)

    # -- drain worker --------------------------------------------------------------------
    def _run(self) -> None:
        """Drain thread: ring -> batches, and nothing slow (see _housekeep for the rest)."""
        assert self.prog is not None
        next_counters = time.monotonic()
        try:
            while True:
                more = self.prog.consume()
                now = time.monotonic()
                if now >= next_counters:
                    self._pending.append(self._counters_event())
                    next_counters = now + COUNTERS_EVERY
                self._flush()
                if more:
                    continue  # a bounded drain stopped early: go on without sleeping
                if self._stop.wait(DRAIN_EVERY):
                    break
            # final drain: whatever the kernel queued before the probes went away
            while self.prog.consume():
                self._flush()
            self._pending.append(self._counters_event())
            self._flush()
        except BaseException as e:  # reported by stop(); never kill the process from here
            self.error = e
        finally:
            self.batches.put(([], 0))  # end-of-stream marker

    def _housekeep(self) -> None:
        """Second thread: finding and hooking TLS libraries (ELF parsing, /proc scans, attaches).

        These take from milliseconds to seconds; on the drain thread they let the ring fill up.
        """
        next_host_scan = time.monotonic() + HOST_RESCAN_EVERY
        while True:
            now = time.monotonic()
            wake = min(next_host_scan, self._rescans[0][0] if self._rescans else next_host_scan)
            try:
                item = self._execs.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                item = ()
            if item is None:
                return  # stop()
            try:
                if item:
                    self._follow_exec(*item)
                now = time.monotonic()
                self._service_rescans(now)
                if now >= next_host_scan:
                    for t in self.targets.scan_host(linker_cache=False):
                        self._attach(t)
                    next_host_scan = time.monotonic() + HOST_RESCAN_EVERY
            except Exception as e:  # one bad binary must not end the hooking of new ones
                self.internal_errors += 1
                self.opts.log(f"llmspy-tui: error while looking for TLS libraries: "
                              f"{type(e).__name__}: {e}")

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            size, self._pending_bytes = self._pending_bytes, 0
            self._queued += size
            self.batches.put((batch, size))

    def take(self, timeout: float) -> list:
        """The next batch (consumer's thread); raises queue.Empty after `timeout` seconds.
        An empty list means the capture ended."""
        batch, size = self.batches.get(timeout=timeout)
        self._taken += size
        return batch

    @property
    def backlog(self) -> int:
        """Bytes of captured data drained from the kernel but not yet taken by the consumer."""
        return self._queued + self._pending_bytes - self._taken

    def _counters_event(self) -> Counters:
        assert self.prog is not None
        self.final_counters = self.prog.counters()
        self.final_counters["internal_errors"] = self.internal_errors
        self.final_counters["backlog_drop"] = self.backlog_drop
        self.final_counters["backlog_drop_bytes"] = self.backlog_drop_bytes
        return Counters(time.time_ns(), dict(self.final_counters))

    def _announce(self, pid: int, ts: int, thread_comm: str) -> None:
        if pid not in self._announced:
            self._announced.add(pid)
            self._pending.append(ProcessSeen(ts, self.procs.get(pid, thread_comm)))

    def _on_record(self, buf, off: int, size: int) -> None:
        # Runs inside bcc's ctypes callback, where an exception would only be printed and the
        # record dropped: count it and say so once per kind of error instead.
        try:
            self._handle_record(buf, off, size)
        except Exception as e:
            self.internal_errors += 1
            if self.internal_errors == 1 or self.internal_errors % 1000 == 0:
                self.opts.log(f"llmspy-tui: internal error handling a record ({self.internal_errors} "
                              f"so far): {type(e).__name__}: {e}")

    def _handle_record(self, buf, off: int, size: int) -> None:
        ts, pid_tgid, conn, offset, total, seq, length, kind, d, chunk, lost, comm = HDR.unpack_from(buf, off)
        length = max(0, min(length, size - HDR_SIZE))
        body = off + HDR_SIZE
        pid, tid = pid_tgid >> 32, pid_tgid & 0xFFFFFFFF
        ts += self._clock_offset
        tcomm = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
        if kind in (KIND_DATA, KIND_TRUNCATED, KIND_LOST):
            self._announce(pid, ts, tcomm)
            if kind == KIND_DATA:
                if self.backlog + length > self._backlog_limit:
                    # The consumer is too far behind: keep memory bounded, and say exactly
                    # what was not kept (a loss marker at its stream offset, and a counter).
                    self.backlog_drop += 1
                    self.backlog_drop_bytes += length
                    data, lost = b"", length
                else:
                    data, lost = buf[body : body + length], 0
                    self._pending_bytes += length
            else:
                data = b""
            self._pending.append(
                ChunkEvent(ts, pid, tid, conn, DIR_NAMES[d & 1], seq, offset, total, data,
                           chunk, lost, kind == KIND_TRUNCATED, tcomm)
            )
        elif kind == KIND_SSL_FREE:
            self._pending.append(ConnClosed(ts, pid, conn))
        elif kind == KIND_EXEC:
            filename = buf[body : body + length].split(b"\0", 1)[0].decode("utf-8", "replace")
            self._on_exec(ts, pid, filename, tcomm)
        elif kind == KIND_EXIT:
            self._pending.append(ProcessExit(ts, pid))
            self.procs.forget(pid)
            self._announced.discard(pid)

    def _on_exec(self, ts: int, pid: int, filename: str, comm: str) -> None:
        assert self.prog is not None
        self.procs.forget(pid)
        info = self.procs.refresh(pid, comm, filename)
        self._pending.append(ProcessExec(ts, pid, filename))
        self._pending.append(ProcessSeen(ts, info))
        self._announced.add(pid)
        if self.opts.comms:
            if info.comm in self.opts.comms:
                self.prog.allow(pid, inherit=True)
            elif pid not in self.opts.pids:
                self.prog.disallow(pid)
        self._execs.put((ts, pid, filename))

    def _follow_exec(self, ts: int, pid: int, filename: str) -> None:
        # A new executable may export SSL_write itself (Node does): hook it right away.
        new = self.targets.scan_process(pid)
        if not os.path.exists(f"/proc/{pid}/exe") and filename.startswith("/"):
            # Already gone (a short-lived process, or this worker fell behind): its traffic was
            # missed, but the binary itself is still worth hooking for its next run.
            t = self.targets.examine(filename, f"exec:{pid}")
            if t:
                new.append(t)
        for t in new:
            self._attach(t, since_ns=ts, pid=pid)
        now = time.monotonic()
        for delay in RESCAN_DELAYS:
            heapq.heappush(self._rescans, (now + delay, pid))

    def _service_rescans(self, now: float) -> None:
        while self._rescans and self._rescans[0][0] <= now:
            _, pid = heapq.heappop(self._rescans)
            if os.path.exists(f"/proc/{pid}"):
                for t in self.targets.scan_process(pid):
                    self._attach(t)

    # -- shutdown ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._execs.put(None)
        if self._scanner is not None:
            self._scanner.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.prog is not None:
            self.prog.close()

    def remaining(self) -> Iterator[list]:
        """After stop(): the batches the worker drained but nobody consumed yet."""
        if self._thread is None:
            return
        while True:
            try:
                batch = self.take(timeout=5)
            except queue.Empty:
                return  # worker wedged: never hang the user's shutdown
            if not batch:
                return
            yield batch


def raise_no_tls(attach_failed: bool = False) -> None:
    from ..errors import UserError

    if attach_failed:
        raise UserError("llmspy-tui: found TLS libraries but could not attach any uprobe to them.")
    raise UserError(
        "llmspy-tui: no TLS library to hook: no libssl in the linker cache or in any running "
        "process, and no running executable exports SSL_write. Install OpenSSL "
        "(apt-get install libssl3) or start the program to watch first."
    )
