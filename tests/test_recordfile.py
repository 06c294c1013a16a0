"""Capture file format: round trip, crash recovery at any byte, corruption, versioning, privacy."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmspy_tui.capture.events import (
    ChunkEvent,
    ConnClosed,
    Counters,
    ProcessExec,
    ProcessExit,
    ProcessInfo,
    ProcessSeen,
)
from llmspy_tui.capture.recordfile import (
    FORMAT_VERSION,
    MAGIC,
    Recorder,
    RecordingReader,
    _frame,
    T_HEADER,
)
from llmspy_tui.errors import UserError

import orjson


def sample_events() -> list:
    info = ProcessInfo(4242, 123456, "python3", "/usr/bin/python3.11", ("python3", "agent.py", "--x=é"), 1)
    return [
        ProcessExec(1_700_000_000_000_000_000, 4242, "/usr/bin/python3.11"),
        ProcessSeen(1_700_000_000_000_000_001, info),
        ChunkEvent(1_700_000_000_000_000_002, 4242, 4243, 0x55AA_0000_1234, "send", 0, 0, 5,
                   b"POST ", 0, 0, False, "worker-1"),
        ChunkEvent(1_700_000_000_000_000_003, 4242, 4243, 0x55AA_0000_1234, "recv", 0, 0, 1 << 22,
                   bytes(range(256)) * 64, 3, 0, False, ""),
        ChunkEvent(1_700_000_000_000_000_004, 4242, 4243, 0x55AA_0000_1234, "recv", 0, 1 << 20, 1 << 22,
                   b"", 64, (1 << 22) - (1 << 20), True, ""),
        ChunkEvent(1_700_000_000_000_000_005, 4242, 4242, 0x55AA_0000_1234, "send", 1, 5, 100,
                   b"", 0, 100, False, "python3"),
        ConnClosed(1_700_000_000_000_000_006, 4242, 0x55AA_0000_1234),
        Counters(1_700_000_000_000_000_007, {"ringbuf_fail": 0, "bytes": 16389}),
        ProcessExit(1_700_000_000_000_000_008, 4242),
    ]


def write(path, events, close=True) -> None:
    rec = Recorder(str(path))
    rec.start({"argv": ["--record", str(path)]})
    rec.write_many(events)
    if close:
        rec.close({"reason": "test"})


def test_round_trip_preserves_every_event(tmp_path):
    path = tmp_path / "a.llmspy"
    events = sample_events()
    write(path, events)
    reader = RecordingReader(str(path))
    assert list(reader) == events
    assert reader.info.complete and not reader.info.problem
    assert reader.info.header["format"] == "llmspy-capture"
    assert reader.info.header["version"] == FORMAT_VERSION
    assert reader.info.header["kernel"] and reader.info.header["host"]
    assert reader.info.counters == {"ringbuf_fail": 0, "bytes": 16389}
    assert reader.info.footer == {"events": len(events), "reason": "test"}


def test_file_is_private_and_never_overwritten_or_followed(tmp_path):
    path = tmp_path / "a.llmspy"
    old = os.umask(0)
    try:
        write(path, [])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(UserError, match="already exists"):
        Recorder(str(path))
    target = tmp_path / "victim"
    target.write_text("keep me")
    link = tmp_path / "link.llmspy"
    link.symlink_to(target)
    with pytest.raises(UserError):
        Recorder(str(link))
    assert target.read_text() == "keep me"


def test_every_truncation_point_recovers_a_prefix(tmp_path):
    """A crash can cut the file anywhere: the reader returns the complete events, never raises."""
    full = tmp_path / "full.llmspy"
    events = sample_events()
    write(full, events, close=False)
    data = full.read_bytes()
    header_end = len(MAGIC) + len(_frame(T_HEADER, b"")) + len(orjson.dumps({}))  # lower bound
    seen_lengths = set()
    for cut in range(header_end, len(data) + 1):
        part = tmp_path / "cut.llmspy"
        part.write_bytes(data[:cut])
        try:
            reader = RecordingReader(str(part))
        except UserError:
            continue  # cut inside the header: a clear error, not a crash
        got = list(reader)
        assert got == events[: len(got)]
        if cut < len(data):
            assert len(got) < len(events)
            assert not reader.info.complete
        seen_lengths.add(len(got))
        part.unlink()
    assert seen_lengths == set(range(len(events) + 1))


def test_corruption_stops_with_a_note(tmp_path):
    path = tmp_path / "a.llmspy"
    write(path, sample_events())
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    reader = RecordingReader(str(path))
    got = list(reader)
    assert got == sample_events()[: len(got)]
    assert "checksum mismatch" in reader.info.problem


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_garbage_after_magic_never_raises_anything_but_usererror(tmp_path_factory, junk):
    path = tmp_path_factory.mktemp("g") / "g.llmspy"
    path.write_bytes(MAGIC + junk)
    try:
        reader = RecordingReader(str(path))
    except UserError:
        return
    list(reader)


def test_rejects_other_files_and_newer_versions(tmp_path):
    other = tmp_path / "x.txt"
    other.write_text("hello")
    with pytest.raises(UserError, match="not an llmspy-tui capture file"):
        RecordingReader(str(other))
    newer = tmp_path / "newer.llmspy"
    newer.write_bytes(MAGIC + _frame(T_HEADER, orjson.dumps({"format": "llmspy-capture", "version": 99})))
    with pytest.raises(UserError, match="format version 99"):
        RecordingReader(str(newer))
    with pytest.raises(UserError, match="cannot open"):
        RecordingReader(str(tmp_path / "missing.llmspy"))
