"""Where capture events come from: the live eBPF capture or a recording, paced or not.

Shared by headless mode and the full-screen UI: both call `batches()` on some thread and hand
each batch on; the UI does so from a worker thread, so nothing here knows about the screen.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Callable, Iterator

from .errors import UserError

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class ReplaySource:
    """A recording, as fast as possible (speed 0) or paced by its timestamps (1.0 = as recorded)."""

    BATCH = 512

    def __init__(self, path: str, speed: float = 0.0, label: str = "replay") -> None:
        from .capture.recordfile import RecordingReader

        self.path = path
        self.speed = speed
        self.label = label
        self.reader = RecordingReader(path)  # opens and checks the header now: errors before the UI starts
        self.finished = False

    def batches(self, stop: threading.Event | None = None) -> Iterator[list]:
        stop = stop or threading.Event()
        batch: list = []
        t0_rec = t0_wall = None
        for ev in self.reader:
            if stop.is_set():
                return
            if self.speed > 0:
                ts = getattr(ev, "ts", 0)
                if ts:
                    if t0_rec is None:
                        t0_rec, t0_wall = ts, time.monotonic()
                    due = t0_wall + (ts - t0_rec) / 1e9 / self.speed
                    wait = due - time.monotonic()
                    if wait > 0.02:  # deliver what is due, then sleep until the next event is
                        if batch:
                            yield batch
                            batch = []
                        if stop.wait(min(wait, 5.0)):
                            return
            batch.append(ev)
            if len(batch) >= self.BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        self.finished = True

    def problems(self) -> list[str]:
        """What the user should hear about the recording once it has been read."""
        info, out = self.reader.info, []
        if info.problem:
            out.append(f"{self.path}: {info.problem}")
        elif self.finished and not info.complete:
            out.append(f"{self.path}: no end marker (the recording was not closed cleanly)")
        if info.counters:
            from .capture.events import Counters

            c = Counters(0, info.counters)
            if c.lost:
                out.append(f"recorded counters: {c.summary()}")
        return out


class LiveSource:
    """The eBPF capture, with an optional recording of everything it delivers."""

    label = "live"

    def __init__(self, *, max_capture: int, ring_mb: int, backlog: int | None = None, pids: tuple[int, ...] = (),
                 comms: tuple[str, ...] = (), record: str | None = None, argv: list[str] | None = None,
                 inbound: bool = False, log: Log = _stderr) -> None:
        from .capture.live import DEFAULT_BACKLOG_MB, CaptureOptions, LiveCapture

        self.log = log
        for pid in pids:
            if not os.path.exists(f"/proc/{pid}"):
                log(f"llmspy-tui: warning: no process {pid} is running now (watching for it anyway)")
        self.cap = LiveCapture(CaptureOptions(max_capture=max_capture, pids=pids, comms=comms,
                                              ring_mb=ring_mb, inbound=inbound, log=lambda m: self.log(m),
                                              backlog_mb=(backlog >> 20) if backlog else DEFAULT_BACKLOG_MB))
        self.filtered = bool(pids or comms)
        self.max_capture = max_capture
        self.argv = argv if argv is not None else sys.argv[1:]
        self.recorder = None
        if record:
            from .capture.recordfile import Recorder

            # created first: a bad path should fail before any probe is attached
            self.recorder = Recorder(record)
        self.reason = ""
        self.closed = False

    def start(self) -> None:
        """Compile and attach the probes (seconds); raises UserError when that cannot be done."""
        self.cap.start()
        if self.recorder is not None:
            self.recorder.start({"argv": self.argv, "max_capture": self.max_capture,
                                 "targets": self.cap.header_targets})
        files = len(self.cap.header_targets)
        self.log(f"Tracing SSL_write/SSL_read in {files} file{'s' if files != 1 else ''} "
                 f"({self.cap.prog.open_probes()} uprobes) for all processes"
                 f"{' (filtered)' if self.filtered else ''}")

    def _record(self, batch: list) -> list:
        if self.recorder is not None:
            self.recorder.write_many(batch)
        return batch

    def batches(self, stop: threading.Event | Callable[[], bool]) -> Iterator[list]:
        stopped = stop.is_set if isinstance(stop, threading.Event) else stop
        while not stopped():
            try:
                batch = self.cap.take(timeout=0.2)
            except queue.Empty:
                continue
            if not batch:  # the capture worker ended (an error, reported by close())
                return
            yield self._record(batch)

    def close(self, deliver: Callable[[list], None] | None = None, reason: str = "") -> str:
        """Stop the capture, hand on what it still held, close the recording; the final summary."""
        if self.closed:
            return ""
        self.closed = True
        from .capture.events import Counters

        reason = reason or self.reason or "end of capture"
        self.cap.stop()
        try:
            for batch in self.cap.remaining():
                batch = self._record(batch)
                if deliver is not None:
                    deliver(batch)
        finally:
            counters = Counters(0, dict(self.cap.final_counters))
            if self.recorder is not None and self.cap.prog is None:
                self.recorder.discard()
            elif self.recorder is not None:
                self.recorder.close({"counters": counters.values, "targets": self.cap.header_targets,
                                     "reason": reason})
        if self.cap.error is not None:
            raise UserError(f"llmspy-tui: capture stopped: {type(self.cap.error).__name__}: {self.cap.error}", 1)
        return f"llmspy-tui: {reason}: {counters.summary()}" if self.cap.prog is not None else ""
