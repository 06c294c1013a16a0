"""Properties of the protocol layer over whole conversations: splits, truncation, fuzz."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import corpus, fuzz
from wire import normalize, of, run

from llmspy_tui.protocol import ProtocolTracker

CORPUS = corpus()
WHOLE = [normalize(run(conv)) for conv in CORPUS]


@st.composite
def split_conversation(draw):
    i = draw(st.integers(0, len(CORPUS) - 1))
    conv = CORPUS[i]
    cuts = [sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12))))
            for _, data in conv]
    return i, cuts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_conversation())
def test_any_split_gives_identical_events(case):
    i, cuts = case
    conv = CORPUS[i]
    by_index = {id(data): c for (_, data), c in zip(conv, cuts)}
    got = normalize(run(conv, splits=lambda d, data: by_index[id(data)]))
    assert got == WHOLE[i]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CORPUS) - 1), st.floats(0, 1), st.booleans())
def test_truncation_at_any_byte_ends_every_message(i, where, closed):
    """Cut the capture anywhere: nothing raises, and every message that began also ends."""
    conv = CORPUS[i]
    total = sum(len(d) for _, d in conv)
    keep = int(total * where)
    cut = []
    for d, data in conv:
        if keep <= 0:
            break
        cut.append((d, data[:keep]))
        keep -= len(data)
    t = ProtocolTracker()
    ev = run(cut, tracker=t, close=closed) if cut else []
    ev += t.finish(10**12)
    assert t.internal_errors == 0
    started = {(e.conn, e.stream, "request") for e in of(ev, "RequestHead")}
    started |= {(e.conn, e.stream, "response") for e in of(ev, "ResponseHead") if not e.interim}
    ended = {(e.conn, e.stream, e.side) for e in of(ev, "MessageEnd")}
    assert started <= ended
    assert t.open_connections == 0


def test_every_truncation_point_of_every_conversation():
    for conv in CORPUS:
        flat = [(d, data[k : k + 1]) for d, data in conv for k in range(len(data))]
        for n in range(0, len(flat), 7):
            t = ProtocolTracker()
            if n:
                run(flat[:n], tracker=t, close=False)
            t.finish(1)
            assert t.internal_errors == 0


def test_fuzz_garbage_and_mutations():
    """At least 100k cases in CI (LLMSPY_FUZZ_CASES overrides; bench/ runs longer)."""
    cases = int(os.environ.get("LLMSPY_FUZZ_CASES", "100000"))
    stats = fuzz(cases, seed=int(os.environ.get("LLMSPY_FUZZ_SEED", "20261122")))
    assert stats["cases"] == cases and stats["events"] > cases
    print(f"\nfuzz: {stats['cases']} cases, {stats['bytes']} bytes, {stats['events']} events, no escape")
