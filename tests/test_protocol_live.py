"""As root: real clients, the real monitor, and the protocol layer on what it captured.

Each client's exchanges, as reconstructed from the capture, must match the loopback server's
own account: method, path, request body, status, decoded response body, number of SSE events,
content coding, and every message complete.
"""

from __future__ import annotations

import pytest

from conftest import require_bpf
from scenarios import NAMES, compare, exchanges_seen, run_all

from llmspy_tui.capture.recordfile import RecordingReader
from llmspy_tui.protocol import ProtocolTracker


@pytest.fixture(scope="module")
def live(tls_cert, tmp_path_factory):
    require_bpf()
    cert, key = tls_cert
    results, mon = run_all(cert, key, tmp_path_factory.mktemp("proto"))
    tracker = ProtocolTracker()
    events = []
    for ev in RecordingReader(str(mon.record)):
        events += tracker.feed(ev)
    events += tracker.finish(0)
    assert tracker.internal_errors == 0
    return results, events


@pytest.mark.bpf
@pytest.mark.parametrize("name", NAMES)
def test_live_exchanges_match_the_server(live, name):
    results, events = live
    r = results[name]
    seen = exchanges_seen(events, r["pid"])
    problems = compare(r["exchanges"], seen)
    assert not problems, problems
    versions = {x["http_version"] for x in seen}
    assert versions == ({"2"} if name in ("httpx-h2", "curl-h2") else {"1.1"}), versions
    print(f"\n{name}: {len(seen)} exchanges reconstructed exactly "
          f"({sum(x['sse_events'] for x in seen)} SSE events, "
          f"{sum(len(x['response_body']) for x in seen)} response bytes)")


@pytest.mark.bpf
def test_httpx_streams_shared_one_connection(live):
    results, events = live
    seen = exchanges_seen(events, results["httpx-h2"]["pid"])
    assert len({x["conn"] for x in seen}) == 1
    assert sorted(x["stream"] for x in seen) == [1, 3, 5, 7, 9]
