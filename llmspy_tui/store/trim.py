"""Giving freed memory back to the system.

Evicted bodies are freed into glibc's arenas, which keep the pages: in a long session RSS then
stays at its high-water mark, tens of MB above what the store holds. malloc_trim(0) returns the
free pages inside the heap too (madvise), not only the top of it. Elsewhere it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
    _trim.restype = ctypes.c_int
except (OSError, AttributeError):
    _trim = None


def release_free_memory() -> None:
    if _trim is not None:
        _trim(0)
