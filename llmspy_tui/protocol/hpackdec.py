"""HPACK header block decoding (RFC 7541) for a passive observer.

The hpack package decodes the same way, but through a memoryview slice, a bytes copy of the
rest of the block and a log call for every field; every HTTP/2 request and response has one
or two blocks, so that was a good part of the cost of a call. This decoder keeps hpack's
rules and limits exactly (its static table and Huffman decoder are used as they are), plus
what a monitor that may have joined late needs: a table that knows it is missing entries
(`partial`), where an index past the entries it has seen decodes to UNKNOWN instead of failing.

Any malformed block raises HpackError; the caller then starts over with a partial table.
"""

from __future__ import annotations

from collections import deque

from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

UNKNOWN = b"\x00?"  # a table entry the monitor never saw
STATIC = HeaderTable.STATIC_TABLE
STATIC_LEN = len(STATIC)
DEFAULT_TABLE = 4096
_VARINT_MAX = 5  # bytes of an integer, prefix included (as hpack)
_HUFFMAN_CACHE_MAX = 4096


class HpackError(Exception):
    """A header block that cannot be decoded."""


_huffman: dict[bytes, bytes] = {}  # encoded -> decoded: values such as credentials repeat


def _unhuff(raw: bytes) -> bytes:
    out = _huffman.get(raw)
    if out is None:
        try:
            out = decode_huffman(raw)
        except Exception as e:  # hpack's HPACKDecodingError
            raise HpackError(str(e)) from e
        if len(_huffman) >= _HUFFMAN_CACHE_MAX:
            _huffman.clear()
        _huffman[raw] = out
    return out


def _int(data: bytes, i: int, prefix: int) -> tuple[int, int]:
    """(value, offset after it) of the integer at data[i] with a `prefix`-bit prefix."""
    mask = (1 << prefix) - 1
    try:
        number = data[i] & mask
        if number != mask:
            return number, i + 1
        k = 1
        shift = 0
        while True:
            b = data[i + k]
            k += 1
            if b < 128:
                return number + (b << shift), i + k
            number += (b - 128) << shift
            shift += 7
            if k > _VARINT_MAX:
                raise HpackError("integer too long")
    except IndexError:
        raise HpackError("truncated integer") from None


def _string(data: bytes, i: int) -> tuple[bytes, int]:
    """(bytes, offset after) of the string literal at data[i]."""
    length, j = _int(data, i, 7)
    raw = data[j : j + length]
    if len(raw) != length:
        raise HpackError("truncated header block")
    if data[i] & 0x80:
        raw = _unhuff(raw)
    return raw, j + length


class Decoder:
    """One direction's HPACK decoding context: the dynamic table and its limits."""

    __slots__ = ("entries", "size", "maxsize", "max_allowed", "max_list", "partial")

    def __init__(self, max_header_list_size: int, max_allowed_table_size: int, partial: bool = False) -> None:
        self.entries: deque[tuple[bytes, bytes]] = deque()
        self.size = 0
        self.maxsize = DEFAULT_TABLE
        self.max_allowed = max_allowed_table_size  # a passive observer does not police the peer much
        self.max_list = max_header_list_size
        self.partial = partial  # entries made before the monitor saw them are missing

    def get(self, index: int) -> tuple[bytes, bytes]:
        i = index - 1
        if i >= 0:
            if i < STATIC_LEN:
                return STATIC[i]
            i -= STATIC_LEN
            if i < len(self.entries):
                return self.entries[i]
        if self.partial and index > STATIC_LEN:
            return UNKNOWN, UNKNOWN
        raise HpackError(f"invalid table index {index}")

    def _add(self, name: bytes, value: bytes) -> None:
        size = 32 + len(name) + len(value)
        if size > self.maxsize:
            self.entries.clear()
            self.size = 0
            return
        self.entries.appendleft((name, value))
        self.size += size
        self._shrink()

    def _shrink(self) -> None:
        entries = self.entries
        size = self.size
        while size > self.maxsize:
            name, value = entries.pop()
            size -= 32 + len(name) + len(value)
        self.size = size

    def _resize(self, new: int) -> None:
        old, self.maxsize = self.maxsize, new
        if new <= 0:
            self.entries.clear()
            self.size = 0
        elif old > new:
            self._shrink()

    def decode(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """The (name, value) pairs of a complete header block, in order."""
        headers: list[tuple[bytes, bytes]] = []
        n = len(data)
        i = 0
        inflated = 0
        while i < n:
            b = data[i]
            if b & 0x80:  # indexed field
                index, i = _int(data, i, 7)
                name, value = self.get(index)
            elif b & 0x40 or not b & 0x20:  # literal: with indexing, without, never indexed
                indexing = bool(b & 0x40)
                if b & (0x3F if indexing else 0x0F):
                    index, i = _int(data, i, 6 if indexing else 4)
                    name = self.get(index)[0]
                else:
                    name, i = _string(data, i + 1)
                value, i = _string(data, i)
                if indexing:
                    self._add(name, value)
            else:  # dynamic table size update: only before the first field
                if headers:
                    raise HpackError("table size update not at the start of the block")
                new, i = _int(data, i, 5)
                if new > self.max_allowed:
                    raise HpackError("table size over the maximum")
                self._resize(new)
                continue
            headers.append((name, value))
            inflated += 32 + len(name) + len(value)
            if inflated > self.max_list:
                raise HpackError(f"header list over {self.max_list} bytes")
        if self.maxsize > self.max_allowed:
            raise HpackError("table size over the maximum")
        return headers
