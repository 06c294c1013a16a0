"""Content-Encoding decoders (gzip, deflate, br, zstd) that stream and stop at an output cap.

A decompression bomb (a few KB that inflate to gigabytes) must cost at most `cap` bytes of
memory: every decoder here produces output in bounded steps and stops for good once the cap is
reached; the body is then marked capped. Corrupt input stops decoding with a reason, never an
exception.
"""

from __future__ import annotations

import zlib

import brotli
import zstandard

STEP = 64 * 1024  # the most output produced by one inner decoding step


class _Capped(Exception):
    """Raised inside zstd's output callback to stop it; carries nothing."""


class Decoder:
    """Undo a chain of content codings. feed() returns decoded bytes; `problem` says why it stopped."""

    def __init__(self, codings: list[str], cap: int) -> None:
        self.cap = cap
        self.produced = 0
        self.problem = ""
        self.capped = False
        self._stages = []
        unknown = [c for c in codings if c not in _FACTORIES]
        if unknown:
            self.problem = f"content-encoding {', '.join(unknown)} not decoded"
            self._stages = None  # pass the bytes through as they are
            return
        # Codings are listed in the order they were applied: undo them last first.
        self._stages = [_FACTORIES[c]() for c in reversed(codings)]

    @property
    def active(self) -> bool:
        return not self.problem and not self.capped

    def feed(self, data: bytes) -> bytes:
        if self._stages is None:
            return self._limit(data)
        if not self.active or not data:
            return b""
        try:
            for stage in self._stages:
                data = stage.feed(data, self.cap - self.produced + 1)
                if not data:
                    break
        except (zlib.error, brotli.error, zstandard.ZstdError, ValueError) as e:
            self.problem = f"undecodable body ({type(e).__name__}: {e})"
            return b""
        return self._limit(data)

    def finish(self) -> bytes:
        """End of body: flush, and note a stream that ended early."""
        if self._stages is None or not self.active:
            return b""
        out = b""
        try:
            for stage in self._stages:
                if out:
                    out = stage.feed(out, self.cap - self.produced + 1)
                out += stage.finish()
        except (zlib.error, brotli.error, zstandard.ZstdError, ValueError) as e:
            self.problem = f"undecodable body ({type(e).__name__}: {e})"
            return b""
        if not self.problem and any(not s.done for s in self._stages):
            self.problem = "compressed body ended before its end marker"
        return self._limit(out)

    def _limit(self, data: bytes) -> bytes:
        """Count output against the cap. Stages stop a step after passing it; the cut is here."""
        room = self.cap - self.produced
        if len(data) > room:
            data = data[: max(room, 0)]
            self.capped = True
        self.produced += len(data)
        return data


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._d = None if wbits == 0 else zlib.decompressobj(wbits)
        self._head = b""

    @property
    def done(self) -> bool:
        return self._d is not None and self._d.eof

    def feed(self, data: bytes, room: int) -> bytes:
        if self._d is None:  # "deflate": zlib-wrapped per the RFC, raw deflate in practice too
            self._head += data
            if len(self._head) < 2:
                return b""
            b0, b1 = self._head[0], self._head[1]
            zlib_wrapped = (b0 & 0x0F) == 8 and ((b0 << 8) | b1) % 31 == 0
            self._d = zlib.decompressobj(15 if zlib_wrapped else -15)
            data, self._head = self._head, b""
        if self._d.eof:
            return b""  # bytes after the end of the stream are ignored
        out = []
        size = 0
        while data and size <= room:
            chunk = self._d.decompress(data, STEP)
            size += len(chunk)
            out.append(chunk)
            data = self._d.unconsumed_tail
            if self._d.eof:
                break
        return b"".join(out)

    def finish(self) -> bytes:
        if self._d is None:
            return b""
        return self._d.flush(STEP)


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()
        self._stuck = False

    @property
    def done(self) -> bool:
        return self._d.is_finished()

    def feed(self, data: bytes, room: int) -> bytes:
        if self._d.is_finished():
            return b""
        if self._stuck:  # over the cap last time with output still pending: it stays stopped
            return b""
        out = [self._d.process(data, output_buffer_limit=STEP)]
        size = len(out[0])
        while not self._d.can_accept_more_data():
            if size > room:
                self._stuck = True
                break
            chunk = self._d.process(b"", output_buffer_limit=STEP)
            if not chunk:
                break
            out.append(chunk)
            size += len(chunk)
        return b"".join(out)

    def finish(self) -> bytes:
        return b""


class _Sink:
    """Collects zstd output, refusing to grow past the room it was given."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.room = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        if self.size > self.room:
            raise _Capped
        return len(data)


class _Zstd:
    def __init__(self) -> None:
        self._sink = _Sink()
        # stream_writer hands output over in write_size pieces, so the sink can stop a bomb
        # after one piece, where decompressobj() would inflate the whole input first.
        self._w = zstandard.ZstdDecompressor().stream_writer(
            self._sink, write_size=STEP, write_return_read=True, closefd=False)
        self._stuck = False

    @property
    def done(self) -> bool:
        return True  # stream_writer exposes no end-of-frame flag: an early end goes unnoticed

    def feed(self, data: bytes, room: int) -> bytes:
        if self._stuck:
            return b""
        self._sink.parts, self._sink.size, self._sink.room = [], 0, room
        try:
            self._w.write(data)
        except _Capped:
            self._stuck = True  # the writer is mid-frame: it is not used again
        return b"".join(self._sink.parts)

    def finish(self) -> bytes:
        return b""


_FACTORIES = {
    "gzip": lambda: _Zlib(47),  # 32 + 15: gzip or zlib header, detected
    "x-gzip": lambda: _Zlib(47),
    "deflate": lambda: _Zlib(0),
    "br": _Brotli,
    "zstd": _Zstd,
}


def parse_codings(value: str) -> list[str]:
    """Content-Encoding header value -> codings to undo, identity dropped."""
    return [c.strip().lower() for c in value.split(",") if c.strip() and c.strip().lower() != "identity"]


def make_decoder(content_encoding: str, cap: int) -> Decoder | None:
    """A decoder for the header value, or None when the body is not encoded."""
    if not content_encoding:
        return None
    codings = parse_codings(content_encoding)
    return Decoder(codings, cap) if codings else None
