"""Reading the BPF ring buffer straight from its memory map, without a callback per record.

bcc hands records to Python one ctypes callback at a time (libbpf's ring_buffer__consume), which
costs a few microseconds each before any work is done. The ring is a plain shared-memory
protocol (see the kernel's bpf_ringbuf): a consumer-position page we write, then a read-only
producer-position page followed by the data pages, mapped twice in a row so that a record that
wraps around the end is still contiguous. Each record is an 8-byte header (length with BUSY and
DISCARD bits, page offset) and the payload, padded to 8 bytes.

Used on x86_64 only: there, the kernel's release store of a record's header and our plain loads
cannot be reordered (TSO). Elsewhere the capture keeps bcc's consumer.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Callable

BUSY = 1 << 31
DISCARD = 1 << 30
HDR = 8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
# Hand ring space back to the kernel at least this often during one long drain.
RELEASE_EVERY = 4 << 20
# At most this much per drain() call: the batch it makes is handed on before the next read.
MAX_DRAIN = 16 << 20


class RingReader:
    def __init__(self, map_fd: int, ring_bytes: int) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.mask = ring_bytes - 1
        self.cons_map = mmap.mmap(map_fd, self.page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.data = mmap.mmap(map_fd, self.page + 2 * ring_bytes, mmap.MAP_SHARED, mmap.PROT_READ,
                              offset=self.page)
        self.cons = _U64.unpack_from(self.cons_map, 0)[0]

    def drain(self, handle: Callable[[mmap.mmap, int, int], None], max_bytes: int = MAX_DRAIN) -> bool:
        """Hand committed records to `handle(buffer, offset, length)` in order; True when more
        may be waiting. The handler copies what it keeps: the space is reused once we return.

        Bounded on purpose: it stops at the producer position it read on entry, and after
        `max_bytes`, so one call never runs for long under sustained load and the caller can
        hand each batch on before reading the next.
        """
        data, page, mask = self.data, self.page, self.mask
        cons = start = released = self.cons
        prod = _U64.unpack_from(data, 0)[0]
        limit = min(prod, start + max_bytes)
        more = False
        while cons < limit:
            off = page + (cons & mask)
            hdr = _U32.unpack_from(data, off)[0]
            if hdr & BUSY:
                break  # reserved but not committed yet: stop here, keep the order
            length = hdr & ~(BUSY | DISCARD) & 0xFFFFFFFF
            if not hdr & DISCARD:
                handle(data, off + HDR, length)
            cons += (length + HDR + 7) & ~7
            if cons - released >= RELEASE_EVERY:
                _U64.pack_into(self.cons_map, 0, cons)
                released = cons
        else:
            more = cons < prod
        if cons != released:
            _U64.pack_into(self.cons_map, 0, cons)
        self.cons = cons
        return more

    def close(self) -> None:
        for m in (self.data, self.cons_map):
            try:
                m.close()
            except (BufferError, ValueError):
                pass
