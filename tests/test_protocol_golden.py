"""Golden streams: captures of real clients (tests/golden, from record_golden.py), replayed.

No root needed. The reconstruction must match the server's account exactly, whatever the
chunking, and a monitor that joins late must still get the later exchanges right.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios import NAMES, compare, exchanges_seen
from wire import normalize

from llmspy_tui.capture.events import ChunkEvent
from llmspy_tui.capture.recordfile import RecordingReader
from llmspy_tui.protocol import ProtocolTracker

GOLDEN = Path(__file__).resolve().parent / "golden"


def load(name: str):
    truth = json.loads((GOLDEN / f"{name}.truth.json").read_text())
    events = list(RecordingReader(str(GOLDEN / f"{name}.llmspy")))
    return truth, events


def replay(events) -> list:
    t = ProtocolTracker()
    out = t.feed_many(events) + t.finish(0)
    assert t.internal_errors == 0
    return out


def rechunk(events, cuts_for) -> list:
    """The same capture with each chunk's data cut again where cuts_for(i, data) says."""
    out = []
    for i, e in enumerate(events):
        if type(e) is not ChunkEvent or not e.data:
            out.append(e)
            continue
        start = 0
        for cut in sorted(set(c for c in cuts_for(i, e.data) if 0 < c < len(e.data))) + [len(e.data)]:
            out.append(ChunkEvent(e.ts, e.pid, e.tid, e.conn, e.dir, e.seq, e.offset + start,
                                  e.total_len, e.data[start:cut]))
            start = cut
    return out


@pytest.mark.parametrize("name", NAMES)
def test_golden_replay_matches_the_server(name):
    truth, events = load(name)
    seen = exchanges_seen(replay(events), truth["pid"])
    assert not compare(truth["exchanges"], seen), compare(truth["exchanges"], seen)


@pytest.mark.parametrize("name", NAMES)
def test_golden_bytewise_feed_is_identical(name):
    _, events = load(name)
    whole = normalize(replay(events))
    assert normalize(replay(rechunk(events, lambda i, d: range(1, len(d))))) == whole


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NAMES), st.randoms(use_true_random=False))
def test_golden_any_rechunking_is_identical(name, rnd):
    _, events = load(name)
    whole = normalize(replay(events))
    got = normalize(replay(rechunk(events, lambda i, d: [rnd.randrange(1, len(d) + 1)
                                                         for _ in range(rnd.randrange(4))])))
    assert got == whole


@pytest.mark.parametrize("name", NAMES)
def test_golden_late_join_gets_later_exchanges(name):
    """Drop every chunk before the Nth: nothing raises, and what follows is still parsed."""
    truth, events = load(name)
    checked = 0
    chunks = [i for i, e in enumerate(events) if type(e) is ChunkEvent]
    for start in chunks[1 : len(chunks) : max(1, len(chunks) // 25)]:
        late = [e for i, e in enumerate(events) if type(e) is not ChunkEvent or i >= start]
        # the capture layer counts offsets from the first chunk it sees
        first = {}
        shifted = []
        for e in late:
            if type(e) is ChunkEvent:
                base = first.setdefault((e.conn, e.dir), e.offset)
                e = ChunkEvent(e.ts, e.pid, e.tid, e.conn, e.dir, e.seq, e.offset - base, e.total_len, e.data)
            shifted.append(e)
        out = replay(shifted)
        # whatever is reported whole must be right: never a wrong body or a mispaired response
        for x in exchanges_seen(out, truth["pid"]):
            ends = x["ends"]
            if x["method"] in (None, "?") or x["path"] == "?" or len(ends) < 2:
                continue
            if not all(e.complete for e in ends.values()):
                continue
            same = [t for t in truth["exchanges"] if t["path"] == x["path"] and t["method"] == x["method"]
                    and base64.b64decode(t["request_body"]) == x["request_body"]]
            assert len(same) == 1, (start, x["method"], x["path"], x["request_body"][:80])
            assert not compare(same, [x]), (start, compare(same, [x]))
            checked += 1
    assert checked > 0


def test_golden_truth_covers_the_issue():
    """The golden set holds what it should: h2 multiplexing, chunked SSE, compressed bodies."""
    all_ex = {n: json.loads((GOLDEN / f"{n}.truth.json").read_text())["exchanges"] for n in NAMES}
    assert len(all_ex["httpx-h2"]) >= 4
    assert any(x["sse_events"] for xs in all_ex.values() for x in xs)
    encodings = {x["content_encoding"] for xs in all_ex.values() for x in xs}
    assert "gzip" in encodings
