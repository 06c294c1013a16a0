"""Capture events in, finished exchanges out: protocol -> providers -> store, in one place.

Used by the headless printer and the UI alike, live or replayed, so the two cannot disagree.
"""

from __future__ import annotations

import dataclasses

from .capture.events import ChunkEvent, ConnClosed, Counters, ProcessExit, ProcessInfo, ProcessSeen
from .protocol import ProtocolTracker
from .providers import ExchangeTracker, Options
from .redact import mask_cmdline_arg
from .store import ExchangeView, Store


def wanted(pid: int, procs: dict, pids: set, comms: set) -> bool:
    """The -p/-c filters, applied again after capture for replays (live, the kernel applies them)."""
    if not pids and not comms:
        return True
    info = procs.get(pid)
    return pid in pids or (info is not None and info.comm in comms)


class Pipeline:
    def __init__(self, store: Store | None = None, live: bool = False, show_secrets: bool = False,
                 pids: tuple[int, ...] = (), comms: tuple[str, ...] = ()) -> None:
        self.protocol = ProtocolTracker()
        self.exchanges = ExchangeTracker(Options(live=live, show_secrets=show_secrets))
        self.store = store or Store()
        self.pids = set(pids)
        self.comms = set(comms)
        self._procs: dict[int, ProcessInfo] = {}
        self.last_ts = 0
        self.counters = Counters()  # the capture's latest loss and volume counters
        self.show_secrets = show_secrets

    def feed(self, batch) -> list[ExchangeView]:
        """One batch of capture events; the exchanges it finished, in order.

        The protocol layer gets the batch's capture events in one call (it parses the chunks of
        a connection together) and hands its body output on in bulk form, so the work per chunk
        and per streamed item stays small; the store gets one call per batch.
        """
        seen, protocol, exits = [], [], []
        last_ts = self.last_ts
        filtered = bool(self.pids or self.comms)
        for ev in batch:
            t = type(ev)
            if t is ChunkEvent:
                if ev.ts > last_ts:
                    last_ts = ev.ts
                if filtered and not wanted(ev.pid, self._procs, self.pids, self.comms):
                    continue
                protocol.append(ev)
                continue
            ts = getattr(ev, "ts", 0)
            if ts > last_ts:
                last_ts = ts
            if t is ProcessSeen:
                if exits and any(x.pid == ev.info.pid for x in exits):
                    # the pid of a process that exited earlier in this batch went to a new one:
                    # the batch so far goes first, so that exit ends the old process, not this one
                    self.last_ts = last_ts
                    rest = batch[next(i for i, e in enumerate(batch) if e is ev):]
                    return self._apply(seen, protocol, exits) + self.feed(rest)
                if not self.show_secrets:
                    ev = masked_process(ev)
                self._procs[ev.info.pid] = ev.info
                seen.append(ev)
                continue
            if t is Counters:
                self.counters = ev
                continue
            if t is ConnClosed and filtered and not wanted(ev.pid, self._procs, self.pids, self.comms):
                continue
            protocol.append(ev)
            if t is ProcessExit:
                exits.append(ev)
                self._procs.pop(ev.pid, None)
        self.last_ts = last_ts
        return self._apply(seen, protocol, exits)

    def _apply(self, seen: list, protocol: list, exits: list) -> list[ExchangeView]:
        events = self.exchanges.feed_many(self.protocol.feed_raw(protocol)) if protocol else []
        # names first, so exchanges find their process; exits last, after what they ended
        return self.store.apply(seen + events + exits)

    def finish(self) -> list[ExchangeView]:
        """End of capture: open connections and exchanges end, incomplete."""
        events = self.exchanges.feed_many(self.protocol.finish_raw(self.last_ts))
        return self.store.apply(events + self.exchanges.finish(self.last_ts))

    @property
    def lost(self) -> int:
        """Capture records lost so far, plus records the parsers could not handle."""
        return self.counters.lost + self.internal_errors

    @property
    def internal_errors(self) -> int:
        return self.protocol.internal_errors + self.exchanges.internal_errors


def masked_process(ev: ProcessSeen) -> ProcessSeen:
    """A process whose command line carries an API key (`--api-key sk-...`) is shown with it
    masked, as everything else is."""
    cmdline = tuple(mask_cmdline_arg(a) for a in ev.info.cmdline)
    if cmdline == ev.info.cmdline:
        return ev
    return ProcessSeen(ev.ts, dataclasses.replace(ev.info, cmdline=cmdline))
