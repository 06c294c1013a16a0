"""Binary layout of BPF ring-buffer records (mirrors `struct rec_hdr` in bpf/ssl_trace.c).

Decoded with struct.unpack_from on the raw bytes: no per-event ctypes objects.
"""

from __future__ import annotations

import struct

HDR = struct.Struct("<QQQQQIIBBHI16s")
HDR_SIZE = HDR.size  # 72

KIND_DATA = 0
KIND_TRUNCATED = 1
KIND_LOST = 2
KIND_SSL_FREE = 3
KIND_EXEC = 4
KIND_EXIT = 5

DIR_NAMES = ("send", "recv")

# Index order of the per-CPU `counters` map (CNT_* in the C source).
COUNTER_NAMES = (
    "ringbuf_fail",
    "ringbuf_fail_bytes",
    "read_fail",
    "read_fail_bytes",
    "truncated_calls",
    "truncated_bytes",
    "calls",
    "bytes",
    "nested",
    "stash_fail",
    "skipped",
    "ringbuf_retried",  # outputs that failed once and went through on a retry (nothing lost)
    "ringbuf_fail_ns",  # time spent in outputs that failed for good
)

assert HDR_SIZE == 72
