"""Capture loss under load: 1 MiB chat requests and 1 MiB replies over keep-alive HTTPS, as fast
as possible, while the live monitor captures; captured bytes / bytes the client moved.

    .venv/bin/python bench/loss.py [--seconds 10] [--clients 2] [--rate 0] [--search]   (as root)

Client processes (bench/livebench.py bulk) each POST a 1 MiB chat completion request (head and
body in one write, as http.client and the SDKs do) and read a 1 MiB chat.completion reply on one
keep-alive TLS connection to a server on this host, for --seconds; each counts the plaintext it
wrote and read itself (heads and bodies). The monitor runs in this process with the command
line's defaults (max capture per SSL call = capture.loader.DEFAULT_MAX_CAPTURE, default ring
buffer, all processes traced), fed from a worker thread into Pipeline(Store(), live=True) as the
full-screen app does.

Measured, for the client processes only (whether or not the server is traced):
- bytes captured: ChunkEvent data per connection and direction that reached the pipeline, each
  byte counted once at its stream offset; where the stream is not contiguous from offset 0 the
  holes (never delivered), truncation and loss markers are listed;
- captured / sent (3 decimals), per direction and overall;
- every exchange the store finished for a client: complete, request body = 1 MiB, response
  body = 1 MiB (checked as each one finishes: the store's bounds evict old ones);
- protocol gaps / notices the pipeline produced on the client's connections;
- the loss counters (monitor-wide): ringbuf_fail, read_fail, stash_fail, backlog_drop, truncated calls and
  bytes, internal errors;
- the sustained rate: MB/s of plaintext through the clients, exchanges/s;
- how far the pipeline was behind when the clients stopped (queued batches, seconds to drain).
Where the time goes, to explain a loss: the largest batch and the pipeline's lag behind the
capture; CPU of the monitor's drain and feed threads; how often the ring buffer was drained
and the longest stretch without a drain (set against how many ms of this traffic the ring
holds); the capture worker's longest housekeeping calls and garbage collections; host CPU
used by other work (the VM may be shared) and traffic captured from other processes.

--rate caps exchanges/s per client (0 = as fast as possible). --search, after an unthrottled
run that lost bytes, halves then bisects the rate to find the highest one captured whole
(each step is a full --seconds run), and reports that as the sustained rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import livebench as lb

from llmspy_tui.capture.events import ChunkEvent
from llmspy_tui.protocol.events import ProtocolNotice, StreamGap

MIB = 1 << 20


class _Stream:
    """One direction of one connection as the pipeline received it."""

    __slots__ = ("captured", "chunks", "disorder", "expected", "holes", "markers")

    def __init__(self) -> None:
        self.expected = 0  # next offset if nothing is missing
        self.captured = 0  # data bytes delivered, each at the stream position it belongs to
        self.chunks = 0
        self.holes: list[tuple[int, int]] = []  # (offset, length) never delivered
        self.markers: list[tuple[str, int, int]] = []  # ("truncated"/"lost", offset, length)
        self.disorder = 0  # chunks behind the expected offset (overlap or reordering)


class Accounting:
    """What the pipeline got, per process; updated on the monitor's feed thread after each feed."""

    def __init__(self, req_body: int, reply_body: int) -> None:
        self.req_body, self.reply_body = req_body, reply_body
        self.streams: dict[tuple, _Stream] = defaultdict(_Stream)
        self.exchanges: dict[int, int] = defaultdict(int)
        self.exchange_problems: dict[int, list[str]] = defaultdict(list)
        self.protocol: dict[int, list[str]] = defaultdict(list)
        self.protocol_events = 0
        self.batches = 0
        self.max_batch = (0, 0)  # (events, data bytes) of the largest batch
        self.max_lag = 0.0  # seconds from a chunk's capture to the end of the feed that took it
        self.to_monotonic = lambda ts: ts

    def on_batch(self, batch: list, views: list, _start_ns: int, done_ns: int) -> None:
        size, oldest = 0, None
        for ev in batch:
            if type(ev) is not ChunkEvent:
                continue
            size += len(ev.data)
            if oldest is None or ev.ts < oldest:
                oldest = ev.ts
            s = self.streams[(ev.pid, ev.conn, ev.dir)]
            s.chunks += 1
            if ev.offset > s.expected:
                s.holes.append((s.expected, ev.offset - s.expected))
            elif ev.offset < s.expected:
                s.disorder += 1
                continue
            if ev.truncated or ev.lost:  # bytes the capture knows it did not deliver
                s.markers.append(("truncated" if ev.truncated else "lost", ev.offset, ev.lost))
                s.expected = ev.offset + ev.lost
                continue
            s.captured += len(ev.data)
            s.expected = ev.offset + len(ev.data)
        self.batches += 1
        if size > self.max_batch[1]:
            self.max_batch = (len(batch), size)
        if oldest is not None:  # how far behind the capture this feed was
            self.max_lag = max(self.max_lag, (done_ns - self.to_monotonic(oldest)) / 1e9)
        for v in views:
            x = v.exchange
            self.exchanges[x.pid] += 1
            bad = []
            if not x.complete:
                bad.append(f"incomplete ({x.problem})")
            if len(x.request_body) != self.req_body:
                bad.append(f"request body {len(x.request_body)} B")
            if len(x.response_body) != self.reply_body:
                bad.append(f"response body {len(x.response_body)} B")
            if x.body_truncated:
                bad.append("body truncated")
            if bad:
                self.exchange_problems[x.pid].append(f"{x.id}: {', '.join(bad)}")

    def spy_protocol(self, pipeline) -> None:
        """Count StreamGap / ProtocolNotice on their way into the provider layer (its single
        entry point), without changing what the pipeline does."""
        inner = pipeline.exchanges.feed_many

        def feed_many(events):
            for e in events:
                self.protocol_events += 1
                t = type(e)
                if t is StreamGap:
                    self.protocol[e.pid].append(f"gap {e.conn} {e.direction} {e.length} B at {e.offset}")
                elif t is ProtocolNotice:
                    self.protocol[e.pid].append(f"notice {e.conn}: {e.text}")
            return inner(events)

        pipeline.exchanges.feed_many = feed_many


def run(seconds: float, clients: int, rate: float, verbose: bool = True) -> dict:
    """One monitored run; everything measured, as a dict."""
    work = Path(tempfile.mkdtemp(prefix="llmspy-loss-"))
    server = lb.Server(work)
    acct = Accounting(MIB, MIB)
    mon = lb.InProcessMonitor(acct.on_batch)
    acct.to_monotonic = mon.wall_to_monotonic_ns
    profile = lb.DrainProfile()
    acct.spy_protocol(mon.pipeline)
    procs = []
    try:
        mon.start()
        profile.install(mon.source.cap)
        profile.install_gc()
        host = lb.HostLoad()
        cpu0, t0 = lb.cpu_seconds(), time.monotonic()
        procs = [lb.start_client(server, "bulk", seconds, MIB, MIB, rate) for _ in range(clients)]
        results = [lb.finish_client(p, seconds + 120) for p in procs]
        t_clients = time.monotonic()
        threads = mon.thread_cpu()
        backlog = mon.source.cap.batches.qsize()
        mon.stop()
        drain = time.monotonic() - t_clients
        cpu = (lb.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        server.stop()
        if not mon.source.closed:
            mon.source.close()

    host.stop()
    pids = {r["pid"] for r in results}
    n_other, b_other = mon.other_traffic(pids | {server.proc.pid})
    sent = sum(r["sent"] for r in results)
    received = sum(r["received"] for r in results)
    cap_send = sum(s.captured for (pid, _, d), s in acct.streams.items() if pid in pids and d == "send")
    cap_recv = sum(s.captured for (pid, _, d), s in acct.streams.items() if pid in pids and d == "recv")
    issues = []
    for (pid, conn, d), s in sorted(acct.streams.items()):
        if pid not in pids:
            continue
        for kind, off, n in s.markers[:3]:
            issues.append(f"pid {pid} conn {conn:x} {d}: {kind} {n} B at offset {off}")
        if len(s.markers) > 3:
            issues.append(f"pid {pid} conn {conn:x} {d}: ... {len(s.markers)} truncated/lost markers in all")
        for off, n in s.holes[:3]:
            issues.append(f"pid {pid} conn {conn:x} {d}: {n} B never delivered at offset {off}")
        if s.disorder:
            issues.append(f"pid {pid} conn {conn:x} {d}: {s.disorder} chunks behind the stream position")
    exchanges_client = sum(r["exchanges"] for r in results)
    exchanges_store = sum(acct.exchanges[p] for p in pids)
    bad_exchanges = [msg for p in pids for msg in acct.exchange_problems[p]]
    proto = [msg for p in pids for msg in acct.protocol[p]]
    counters = mon.final_counters
    elapsed = max(r["seconds"] for r in results)
    out = {
        "seconds": elapsed, "clients": clients, "rate_cap": rate,
        "sent": sent, "received": received, "captured_send": cap_send, "captured_recv": cap_recv,
        "ratio": (cap_send + cap_recv) / (sent + received) if sent + received else 0.0,
        "ratio_send": cap_send / sent if sent else 0.0, "ratio_recv": cap_recv / received if received else 0.0,
        "mb_s": (sent + received) / elapsed / 1e6, "exchanges_s": exchanges_client / elapsed,
        "exchanges_client": exchanges_client, "exchanges_store": exchanges_store,
        "bad_exchanges": bad_exchanges, "protocol": proto, "protocol_events": acct.protocol_events,
        "issues": issues, "counters": counters, "internal_errors": mon.pipeline.internal_errors,
        "backlog": backlog, "drain": drain, "monitor_cpu": cpu, "hwm_mb": lb.status_kb("VmHWM") / 1024,
        "max_capture": mon.max_capture, "ring_mb": mon.ring_mb, "feed_seconds": mon.feed_seconds,
        "host": host.describe(), "other_procs": n_other, "other_bytes": b_other,
        "drain_gaps": profile.drain_gaps(), "threads": threads,
        "pauses": [(n, ms) for n, _, ms in profile.worst(4)],
        "batches": acct.batches, "max_batch": acct.max_batch, "max_lag": acct.max_lag,
    }
    out["loss_total"] = sum(int(counters.get(k, 0)) for k in lb.LOSS_COUNTERS if not k.endswith("_bytes"))
    out["whole"] = (cap_send == sent and cap_recv == received and out["loss_total"] == 0 and not bad_exchanges
                    and not proto and exchanges_store == exchanges_client and out["internal_errors"] == 0)
    if verbose:
        report(out)
    return out


def report(r: dict) -> None:
    c = r["counters"]
    cap = "unthrottled" if not r["rate_cap"] else f"capped at {r['rate_cap']:g} exchanges/s per client"
    print(f"{r['clients']} client processes x 1 keep-alive connection, 1 MiB requests / 1 MiB replies, "
          f"{r['seconds']:.1f} s, {cap}; monitor in-process, max capture {r['max_capture']} B per SSL call")
    print(f"  client moved:      {r['sent']:>13,} B sent  {r['received']:>13,} B received   "
          f"({r['mb_s']:.1f} MB/s plaintext, {r['exchanges_s']:.1f} exchanges/s)")
    print(f"  pipeline received: {r['captured_send']:>13,} B sent  {r['captured_recv']:>13,} B received   "
          f"(data at its stream offset)")
    print(f"  captured / sent:   {r['ratio']:.3f}  (send {r['ratio_send']:.3f}, recv {r['ratio_recv']:.3f}; "
          f"{r['sent'] + r['received'] - r['captured_send'] - r['captured_recv']:,} B missing)")
    print("  loss counters:     " + ", ".join(f"{k} {c.get(k, 0)}" for k in lb.LOSS_COUNTERS)
          + f"; pipeline internal errors {r['internal_errors']}")
    print(f"  volume counters:   {c.get('calls', 0):,} SSL calls, {c.get('bytes', 0):,} B captured "
          f"(all traced processes, the server included if traced)")
    print(f"  store:             {r['exchanges_store']} of the client's {r['exchanges_client']} exchanges finished; "
          f"{len(r['bad_exchanges'])} not whole")
    for msg in r["bad_exchanges"][:5]:
        print(f"      {msg}")
    print(f"  protocol:          {len(r['protocol'])} gaps/notices on client connections "
          f"({r['protocol_events']:,} protocol events seen)")
    for msg in r["protocol"][:5]:
        print(f"      {msg}")
    for msg in r["issues"][:12]:
        print(f"  capture: {msg}")
    print(f"  batches: {r['batches']} fed, the largest {r['max_batch'][0]:,} events / {r['max_batch'][1] / 1e6:.0f} MB; "
          f"the pipeline was up to {r['max_lag']:.1f} s behind the capture")
    g = r["drain_gaps"]
    if g:
        print(f"  ring buffer drains: {g['drains']}; time between drains p99 {g['gap_p99_ms']:.1f} ms, "
              f"max {g['gap_max_ms']:.0f} ms; one drain p99 {g['drain_p99_ms']:.1f} ms, max {g['drain_max_ms']:.0f} ms "
              f"(the {r['ring_mb']} MiB ring holds {r['ring_mb'] * 1.048576 / max(r['mb_s'], 1e-9) * 1000:.0f} ms "
              f"of this traffic)")
    if r["pauses"]:
        print("  longest capture-worker housekeeping calls and garbage collections: "
              + ", ".join(f"{n} {ms:.0f} ms" for n, ms in r["pauses"]))
    if r["threads"]:
        print("  monitor threads while the clients ran: " + ", ".join(
            f"{k} {v:.1f} s CPU ({v / r['seconds'] * 100:.0f}% of a core)" for k, v in r["threads"].items()))
    print(f"  monitor: {r['monitor_cpu'] * 100:.0f}% of a core, pipeline feed {r['feed_seconds']:.1f} s; "
          f"{r['backlog']} batches queued when the clients stopped, drained in {r['drain']:.1f} s; "
          f"peak RSS of this process so far {r['hwm_mb']:.0f} MB")
    print(f"  {r['host']}" + (f"; also captured {r['other_bytes']:,} B from {r['other_procs']} other processes"
                              if r["other_bytes"] else ""))


def search(seconds: float, clients: int, first: dict, steps: int) -> dict | None:
    """The highest per-client rate (exchanges/s) captured whole, found by halving then bisecting
    between the unthrottled run's rate and 0; None if none of the tried rates was whole."""
    hi = first["exchanges_s"] / clients  # lost at this rate
    lo, best = 0.0, None
    rate = hi / 2
    for _ in range(steps):
        print(f"\n-- search: {rate:.1f} exchanges/s per client")
        r = run(seconds, clients, rate)
        if r["whole"]:
            lo, best = rate, r
        else:
            hi = rate
        rate = (lo + hi) / 2 if best else rate / 2
        if best and hi - lo < max(0.5, 0.1 * lo):
            break
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each run (default 10)")
    ap.add_argument("--clients", type=int, default=2, help="client processes, one connection each (default 2)")
    ap.add_argument("--rate", type=float, default=0.0, help="exchanges/s per client, 0 = as fast as possible")
    ap.add_argument("--search", action="store_true",
                    help="if the run loses bytes, search the highest rate that is captured whole")
    ap.add_argument("--search-steps", type=int, default=5)
    args = ap.parse_args()
    lb.require_root("bench/loss.py")

    r = run(args.seconds, args.clients, args.rate)
    best = r if r["whole"] else None
    if args.search and not r["whole"]:
        best = search(args.seconds, args.clients, r, args.search_steps)
    print()
    if best is not None:
        print(f"highest sustained rate captured whole: {best['mb_s']:.1f} MB/s plaintext, "
              f"{best['exchanges_s']:.1f} exchanges/s ({'unthrottled' if best is r else 'rate-capped'})")
    elif args.search:
        print("no rate tried was captured whole")
    c = r["counters"]
    summary = (f"captured/sent {r['ratio']:.3f} at {r['mb_s']:.0f} MB/s ({r['exchanges_s']:.1f} exchanges/s, "
               f"{r['clients']} clients); ringbuf_fail {c.get('ringbuf_fail', 0)}, read_fail {c.get('read_fail', 0)}, "
               f"stash_fail {c.get('stash_fail', 0)}, truncated_calls {c.get('truncated_calls', 0)}, "
               f"backlog_drop {c.get('backlog_drop', 0)} ({c.get('backlog_drop_bytes', 0)} B), "
               f"internal_errors {c.get('internal_errors', 0) + r['internal_errors']}; "
               f"{r['exchanges_store']}/{r['exchanges_client']} exchanges in store, {len(r['bad_exchanges'])} not whole")
    if best is not None and best is not r:
        summary += f"; highest whole rate {best['mb_s']:.0f} MB/s ({best['exchanges_s']:.1f} exchanges/s)"
    lb.bench_result("loss", "bytes captured / bytes sent", round(r["ratio"], 3), "= 1.000, every loss counter 0",
                    r["whole"], summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
