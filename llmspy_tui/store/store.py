"""The in-memory store: processes -> conversations -> exchanges, with live tallies.

One writer (the capture worker, through apply()) and any number of readers (snapshot()), under
one lock: a snapshot is a consistent set of frozen objects, taken in a time proportional to the
number of records, never to their size. Bounded: past `max_exchanges` calls or `max_body_bytes`
of kept bodies, the oldest finished exchanges are evicted; tallies are kept apart and survive.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from ..capture.events import ProcessExit, ProcessInfo, ProcessSeen
from ..providers.events import Exchange, ExchangeFinished, ExchangeProgress, ExchangeStarted
from ..providers.model import NO_USAGE, LlmResponse, ToolCall
from .tally import ZERO, Contribution, Tally
from .threads import Threader
from .trim import release_free_memory


@dataclass(frozen=True, slots=True)
class ExchangeView:
    exchange: Exchange  # for a call in flight: the response so far
    conversation_id: str | None  # None for non-LLM exchanges
    in_flight: bool
    comm: str
    exe: str


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: str
    pid: int
    title: str  # the first user message, shortened
    exchange_ids: tuple[str, ...]  # those still kept, oldest first
    first_ts: int
    last_ts: int
    models: tuple[str, ...]
    tally: Tally


@dataclass(frozen=True, slots=True)
class ProcessView:
    pid: int
    comm: str
    exe: str
    cmdline: tuple[str, ...]
    exited: bool
    conversation_ids: tuple[str, ...]
    other_http: int  # exchanges that were not LLM calls
    tally: Tally
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    last_ts: int = 0  # last exchange activity
    server: bool = False  # it answered LLM calls (a traced local server), not made them
    # with pid, what tells processes apart: a pid is reused, and both may be listed (the one
    # gone keeps its calls); clock ticks since boot, 0 when unknown
    start_time: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int  # changes whenever anything does: readers skip redrawing an unchanged store
    processes: tuple[ProcessView, ...]
    conversations: dict  # id -> ConversationView
    exchanges: dict  # id -> ExchangeView, oldest first
    total: Tally
    by_model: dict  # model -> Tally
    evicted: int  # exchanges dropped to stay within bounds


class _Record:
    __slots__ = ("exchange", "conv", "proc", "in_flight", "text", "reasoning", "tool_calls", "usage", "cost",
                 "status", "first_token_ts", "last_ts", "contrib", "model", "size", "cached", "server")

    def __init__(self, x: Exchange, conv: str | None, proc: "_Process") -> None:
        self.exchange = x
        self.conv = conv
        self.proc = proc  # the process that made the call (its pid may since belong to another)
        self.in_flight = True
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: tuple[ToolCall, ...] = ()
        self.usage = NO_USAGE
        self.cost: float | None = None
        self.status: int | None = None
        self.first_token_ts: int | None = None
        self.last_ts = x.timing.ts_start
        self.contrib = ZERO
        self.model = x.model or "?"
        # the tallies it counts in are those of its start: its end must take it out of the same
        self.server = x.role == "server"
        self.size = len(x.request_body)
        self.cached: ExchangeView | None = None  # the last view handed out, until this record changes

    def view(self) -> Exchange:
        if not self.in_flight:
            return self.exchange
        x = self.exchange
        resp = LlmResponse(text="".join(self.text), reasoning="".join(self.reasoning), tool_calls=self.tool_calls)
        return replace(x, status=self.status, response=resp, usage=self.usage, cost_usd=self.cost,
                       timing=replace(x.timing, ts_end=self.last_ts, ts_first_token=self.first_token_ts))


class _Conversation:
    __slots__ = ("id", "pid", "proc", "title", "exchanges", "first_ts", "last_ts", "models", "tally")

    def __init__(self, cid: str, proc: "_Process", title: str, ts: int) -> None:
        self.id, self.pid, self.proc, self.title = cid, proc.info.pid, proc, title
        self.exchanges: list[str] = []
        self.first_ts = self.last_ts = ts
        self.models: list[str] = []
        self.tally = Tally()


class _Process:
    __slots__ = ("info", "serial", "exited", "conversations", "other_http", "tally", "providers", "models",
                 "last_ts", "server")

    def __init__(self, info: ProcessInfo, serial: int) -> None:
        self.info = info
        self.serial = serial  # unique in the store: a pid is not (pids are reused)
        self.exited = False
        self.conversations: list[str] = []
        self.other_http = 0
        self.tally = Tally()
        self.providers: list[str] = []
        self.models: list[str] = []
        self.last_ts = 0
        self.server = False


def _title(x: Exchange) -> str:
    req = x.request
    if req is not None:
        for m in req.messages:
            if m.role == "user" and m.text.strip():
                # Only the head: a 1 MiB prompt must not cost a split of the whole text.
                head = m.text.lstrip()[:400]
                t = " ".join(head.split())
                more = len(t) > 80 or len(m.text.lstrip()) > 400
                return t[:80] + ("…" if more else "")
    return f"{x.method} {x.path}"[:80]


# Default bounds: the bodies dominate the monitor's memory (their parsed messages come second),
# so the body budget is what keeps a long session within a couple of hundred MB.
DEFAULT_MAX_EXCHANGES = 10_000
DEFAULT_MAX_BODY_BYTES = 64 << 20


class Store:
    def __init__(self, max_exchanges: int = DEFAULT_MAX_EXCHANGES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_exchanges = max_exchanges
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._exchanges: OrderedDict[str, _Record] = OrderedDict()
        self._conversations: dict[str, _Conversation] = {}
        self._processes: dict[int, _Process] = {}  # by pid: the process that has it now
        # processes whose pid went to a newer one while their calls were still listed, by serial
        self._retired: dict[int, _Process] = {}
        self._serial = 0
        self._by_model: dict[str, Tally] = {}
        self._total = Tally()
        self._threads = Threader()
        self._body_bytes = 0
        # body bytes evicted since the last snapshot, and before it: see snapshot()
        self._freed = 0
        self._freed_seen = 0
        self._version = 0
        self.evicted = 0
        # views handed out by snapshot(), rebuilt only for what changed since the last one
        self._xviews: dict[str, ExchangeView] = {}
        self._cviews: dict[str, ConversationView] = {}
        self._dirty_x: dict[str, None] = {}  # dicts, not sets: views keep the order of change
        self._dirty_c: dict[str, None] = {}

    # -- writing (the capture worker) -----------------------------------------------------------
    def apply(self, events) -> list[ExchangeView]:
        """Take a batch of capture and exchange events; return views of the exchanges finished."""
        finished: list[ExchangeView] = []
        with self._lock:
            for ev in events:
                t = type(ev)
                if t is ExchangeProgress:
                    self._progress(ev)
                elif t is ExchangeStarted:
                    self._started(ev.exchange)
                elif t is ExchangeFinished:
                    v = self._finished(ev.exchange)
                    if v is not None:
                        finished.append(v)
                elif t is ProcessSeen:
                    self._seen(ev.info)
                elif t is ProcessExit:
                    p = self._processes.get(ev.pid)
                    if p is not None:
                        p.exited = True
                        if not p.conversations and not p.other_http:
                            del self._processes[ev.pid]
                else:
                    continue
                self._version += 1
            self._evict()
        return finished

    def _new_process(self, info: ProcessInfo) -> _Process:
        self._serial += 1
        p = self._processes[info.pid] = _Process(info, self._serial)
        return p

    def _seen(self, info: ProcessInfo) -> None:
        """A process's identity: a new process, the same one after exec, or a new one that was
        given the pid of one gone (pid reuse): that one keeps its calls, apart."""
        p = self._processes.get(info.pid)
        if p is None:
            self._new_process(info)
            return
        started = p.info.start_time
        if not p.exited and not (started and info.start_time and started != info.start_time):
            p.info = info  # exec, or the placeholder of a process seen first through its calls
            return
        p.exited = True
        if p.conversations or p.other_http:
            self._retired[p.serial] = p
            if len(self._retired) > self.max_exchanges:  # bounded: the oldest without calls listed go
                idle = [k for k, q in self._retired.items() if not q.conversations]
                for k in idle[: len(self._retired) // 2]:
                    del self._retired[k]
        self._new_process(info)

    def _process(self, pid: int) -> _Process:
        p = self._processes.get(pid)
        if p is None:
            p = self._new_process(ProcessInfo(pid, 0, "", "", (), 0))
        return p

    def _tallies(self, r: _Record) -> list[Tally]:
        if r.server:
            # a traced local server's view of a call: its process and conversation show it, but
            # the totals count what clients asked for, once even when both ends are traced
            out = [r.proc.tally]
        else:
            out = [self._total, r.proc.tally, self._model_tally(r.model)]
        c = self._conversations.get(r.conv) if r.conv else None
        if c is not None:
            out.append(c.tally)
        return out

    def _model_tally(self, model: str) -> Tally:
        t = self._by_model.get(model)
        if t is None:
            t = self._by_model[model] = Tally()
        return t

    def _started(self, x: Exchange) -> None:
        if x.id in self._exchanges:
            return
        self._dirty_x.setdefault(x.id)
        p = self._process(x.pid)
        p.last_ts = max(p.last_ts, x.timing.ts_start)
        if not x.is_llm:
            r = _Record(x, None, p)
            self._exchanges[x.id] = r
            self._body_bytes += r.size
            return
        conv_id = self._threads.assign(p.serial, x.request)
        r = _Record(x, conv_id, p)
        self._exchanges[x.id] = r
        self._body_bytes += r.size
        c = self._conversations.get(conv_id)
        if c is None:
            c = self._conversations[conv_id] = _Conversation(conv_id, p, _title(x), x.timing.ts_start)
            p.conversations.append(conv_id)
        c.exchanges.append(x.id)
        self._dirty_c.setdefault(conv_id)
        c.last_ts = max(c.last_ts, x.timing.ts_start)
        if x.model and x.model not in c.models:
            c.models.append(x.model)
        if x.provider not in p.providers:
            p.providers.append(x.provider)
        if x.model and x.model not in p.models:
            p.models.append(x.model)
        p.server = p.server or x.role == "server"
        for t in self._tallies(r):
            t.calls += 1
            t.in_flight += 1

    def _progress(self, ev: ExchangeProgress) -> None:
        r = self._exchanges.get(ev.id)
        if r is None or not r.in_flight:
            return
        if ev.text:
            r.text.append(ev.text)
        if ev.reasoning:
            r.reasoning.append(ev.reasoning)
        if ev.tool_calls is not None:
            r.tool_calls = ev.tool_calls
        r.status = ev.status
        r.first_token_ts = ev.first_token_ts
        r.last_ts = max(r.last_ts, ev.ts)
        r.usage, r.cost = ev.usage, ev.cost_usd
        r.cached = None
        self._dirty_x.setdefault(ev.id)
        if r.conv is not None:
            self._contribute(r, Contribution.of(ev.usage, ev.cost_usd))

    def _contribute(self, r: _Record, new: Contribution) -> None:
        if r.conv is not None:
            self._dirty_c.setdefault(r.conv)
        for t in self._tallies(r):
            t.swap(r.contrib, new)
        r.contrib = new

    def _finished(self, x: Exchange) -> ExchangeView | None:
        r = self._exchanges.get(x.id)
        if r is None:  # finished without a start (should not happen): count it anyway
            self._started(x)
            r = self._exchanges[x.id]
        if not r.in_flight:
            return None
        r.in_flight = False
        r.exchange = x
        r.cached = None
        self._dirty_x.setdefault(x.id)
        self._xviews.pop(x.id, None)  # re-added last: views keep the store's finishing order
        r.text = r.reasoning = ()  # only a call in flight grows: nothing kept for a finished one
        self._body_bytes += len(x.response_body) + len(x.request_body) - r.size
        r.size = len(x.response_body) + len(x.request_body)
        self._exchanges.move_to_end(x.id)  # eviction order: oldest finished first
        p = r.proc
        p.last_ts = max(p.last_ts, x.timing.ts_end)
        if r.conv is None:
            p.other_http += 1
            return ExchangeView(x, None, False, p.info.comm, p.info.exe)
        self._contribute(r, Contribution.of(x.usage, x.cost_usd))
        r.contrib = ZERO  # final: never swapped again, so not kept
        failed = bool(x.error) or (x.status is not None and x.status >= 400)
        for t in self._tallies(r):
            t.in_flight -= 1
            t.errors += failed
        c = self._conversations.get(r.conv)
        if c is not None:
            c.last_ts = max(c.last_ts, x.timing.ts_end)
        self._threads.finished(p.serial, r.conv, x.request, x.response)
        return ExchangeView(x, r.conv, False, p.info.comm, p.info.exe)

    def _evict(self) -> None:
        over_n = len(self._exchanges) - self.max_exchanges
        over_b = self._body_bytes - self.max_body_bytes
        if over_n <= 0 and over_b <= 0:
            return
        victims = []  # oldest finished first; calls still in flight are never dropped
        for xid, r in self._exchanges.items():
            if over_n <= 0 and over_b <= 0:
                break
            if not r.in_flight:
                victims.append(xid)
                over_n -= 1
                over_b -= r.size
        for xid in victims:
            r = self._exchanges.pop(xid)
            self._xviews.pop(xid, None)
            self._dirty_x.pop(xid, None)
            self._body_bytes -= r.size
            self._freed += r.size
            self.evicted += 1
            c = self._conversations.get(r.conv) if r.conv else None
            if c is None:
                continue
            c.exchanges.remove(xid)
            if c.exchanges:
                self._dirty_c.setdefault(c.id)
                continue
            del self._conversations[c.id]
            self._cviews.pop(c.id, None)
            self._dirty_c.pop(c.id, None)
            p = c.proc
            p.conversations.remove(c.id)
            if not p.conversations and not p.other_http:
                self._retired.pop(p.serial, None)

    # -- reading (any thread) -------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    @property
    def total_calls(self) -> int:
        """Calls seen so far, without a snapshot (a paused display counts what waits)."""
        return self._total.calls

    def snapshot(self) -> Snapshot:
        # Evicted calls stay alive while the reader holds the snapshot before this one; by now
        # those evicted before it was taken are free. Give that memory back to the system.
        if self._freed_seen >= max(self.max_body_bytes // 16, 1 << 20):
            self._freed_seen = 0
            release_free_memory()
        with self._lock:
            self._freed_seen += self._freed
            self._freed = 0
            procs = tuple(
                ProcessView(p.info.pid, p.info.comm, p.info.exe, p.info.cmdline, p.exited, tuple(p.conversations),
                            p.other_http, p.tally.copy(), tuple(p.providers), tuple(p.models), p.last_ts,
                            p.server, p.info.start_time)
                for p in (*self._processes.values(), *self._retired.values()) if p.conversations or p.other_http
            )
            for cid in self._dirty_c:
                c = self._conversations.get(cid)
                if c is not None:
                    self._cviews[cid] = ConversationView(cid, c.pid, c.title, tuple(c.exchanges), c.first_ts,
                                                         c.last_ts, tuple(c.models), c.tally.copy())
            self._dirty_c.clear()
            for xid in self._dirty_x:
                r = self._exchanges.get(xid)
                if r is None:
                    continue
                v = r.cached
                if v is None:
                    info = r.proc.info
                    v = r.cached = ExchangeView(r.view(), r.conv, r.in_flight, info.comm, info.exe)
                self._xviews[xid] = v
            self._dirty_x.clear()
            convs = dict(self._cviews)
            xs = dict(self._xviews)
            return Snapshot(self._version, procs, convs, xs, self._total.copy(),
                            {m: t.copy() for m, t in self._by_model.items()}, self.evicted)
