"""Compile bpf/ssl_trace.c with bcc and attach it to TLS targets. The only module that touches bcc."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .records import COUNTER_NAMES
from .targets import Target

CHUNK_SIZE = 16384
DEFAULT_MAX_CAPTURE = 1 << 20
MAX_MAX_CAPTURE = 64 << 20
DEFAULT_RING_MB = 64

# (symbol, entry program, return program)
PROBES = (
    ("SSL_write", "probe_write_enter", "probe_write_return"),
    ("SSL_write_ex", "probe_write_ex_enter", "probe_write_return"),
    ("SSL_read", "probe_read_enter", "probe_read_return"),
    ("SSL_read_ex", "probe_read_ex_enter", "probe_read_return"),
)


def bpf_source() -> str:
    """The BPF C text: packaged copy in an installed wheel, repository copy in a source tree."""
    try:
        packaged = resources.files("llmspy_tui").joinpath("bpf", "ssl_trace.c")
        if packaged.is_file():
            return packaged.read_text()
    except (FileNotFoundError, ModuleNotFoundError, NotADirectoryError):
        pass
    repo = Path(__file__).resolve().parents[2] / "bpf" / "ssl_trace.c"
    return repo.read_text()


@dataclass
class AttachResult:
    target: Target
    attached: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class BpfProgram:
    """Owns the bcc BPF object: compile, attach, filter maps, counters, ring buffer."""

    def __init__(self, bcc_module, max_capture: int, ring_mb: int = DEFAULT_RING_MB) -> None:
        if not 1 <= max_capture <= MAX_MAX_CAPTURE:
            raise UserError(
                f"llmspy-tui: --max-capture must be between 1 and {MAX_MAX_CAPTURE} bytes"
            )
        pages = max(1, (ring_mb << 20) // os.sysconf("SC_PAGE_SIZE"))
        pages = 1 << (pages.bit_length() - 1)  # ring buffer size must be a power of two pages
        max_chunks = -(-max_capture // CHUNK_SIZE)
        cflags = [
            f"-DCHUNK_SIZE={CHUNK_SIZE}",
            f"-DMAX_CAPTURE={max_capture}ULL",
            f"-DMAX_CHUNKS={max_chunks}",
            f"-DRING_PAGES={pages}",
            f"-DNR_CPUS={len(bcc_module.utils.get_possible_cpus())}",
            "-Wno-macro-redefined",
        ]
        self.max_capture = max_capture
        self.ring_bytes = pages * os.sysconf("SC_PAGE_SIZE")
        try:
            self.bpf = bcc_module.BPF(text=bpf_source(), cflags=cflags)
        except Exception as e:  # bcc raises bare Exception on compile/load failure
            raise UserError(
                f"llmspy-tui: the eBPF program failed to compile or load ({e}). "
                "Check that kernel headers are installed (./setup) and the kernel allows BPF."
            ) from None
        self.results: list[AttachResult] = []

    # -- targets -------------------------------------------------------------------------
    def attach(self, target: Target) -> AttachResult:
        res = AttachResult(target)
        for sym, enter, ret in PROBES:
            if sym not in target.functions:
                continue
            try:
                self.bpf.attach_uprobe(name=target.path, sym=sym, fn_name=enter)
                self.bpf.attach_uretprobe(name=target.path, sym=sym, fn_name=ret)
                res.attached.append(sym)
            except Exception as e:  # bcc raises bare Exception
                res.errors.append(f"{sym}: {e}")
        if "SSL_free" in target.functions:
            try:
                self.bpf.attach_uprobe(name=target.path, sym="SSL_free", fn_name="probe_ssl_free")
                res.attached.append("SSL_free")
            except Exception as e:
                res.errors.append(f"SSL_free: {e}")
        self.results.append(res)
        return res

    def open_probes(self) -> int:
        return self.bpf.num_open_uprobes()

    # -- filters -------------------------------------------------------------------------
    def set_filter(self, enabled: bool) -> None:
        self.bpf["config"][ctypes.c_int(0)] = ctypes.c_uint32(1 if enabled else 0)

    def allow(self, tgid: int, inherit: bool) -> None:
        self.bpf["allow_tgid"][ctypes.c_uint32(tgid)] = ctypes.c_uint32(2 if inherit else 1)

    def disallow(self, tgid: int) -> None:
        try:
            del self.bpf["allow_tgid"][ctypes.c_uint32(tgid)]
        except KeyError:
            pass

    # -- data ----------------------------------------------------------------------------
    def open_ring(self, callback: Callable[[bytes], None]) -> None:
        def _cb(_ctx, data, size):
            callback(ctypes.string_at(data, size))
            return 0

        self._ring_cb = _cb  # keep a reference: bcc holds only a C pointer
        self.bpf["events"].open_ring_buffer(_cb)

    def poll(self, timeout_ms: int) -> None:
        self.bpf.ring_buffer_poll(timeout_ms)

    def consume(self) -> None:
        self.bpf.ring_buffer_consume()

    def counters(self) -> dict[str, int]:
        table = self.bpf["counters"]
        return {name: int(sum(table[ctypes.c_int(i)])) for i, name in enumerate(COUNTER_NAMES)}

    def close(self) -> None:
        try:
            self.bpf.cleanup()
        except Exception:
            pass
