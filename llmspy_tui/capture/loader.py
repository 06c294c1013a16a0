"""Compile bpf/ssl_trace.c with bcc and attach it to TLS targets. The only module that touches bcc."""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .probepoints import InternalHooks, internal_hooks
from .records import COUNTER_NAMES
from .ringreader import RingReader
from .targets import Target

CHUNK_SIZE = 65536
# Bytes captured of one SSL call. Python's sendall() passes a whole request (head and body) to
# one SSL_write, so this bounds the largest prompt seen whole; it costs nothing until used.
DEFAULT_MAX_CAPTURE = 16 << 20
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
    placement: str = ""  # why the public functions were probed instead of the internal ones


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
        # A long call is emitted by a chain of programs (tail calls; the kernel allows 33 after the
        # first), each looping over a few chunks, so that none is long to verify.
        per_prog = max(8, -(-max_chunks // 32))
        cflags = [
            f"-DCHUNK_SIZE={CHUNK_SIZE}",
            f"-DMAX_CAPTURE={max_capture}ULL",
            f"-DMAX_CHUNKS={max_chunks}",
            f"-DCHUNKS_PER_PROG={per_prog}",
            f"-DRING_PAGES={pages}",
            f"-DNR_CPUS={len(bcc_module.utils.get_possible_cpus())}",
            "-Wno-macro-redefined",
        ]
        self.max_capture = max_capture
        self.ring_bytes = pages * os.sysconf("SC_PAGE_SIZE")
        try:
            self.bpf = bcc_module.BPF(text=bpf_source(), cflags=cflags)
            more = self.bpf.load_func("emit_more", bcc_module.BPF.KPROBE)
            self.bpf["chunk_progs"][ctypes.c_int(0)] = ctypes.c_int(more.fd)
        except Exception as e:  # bcc raises bare Exception on compile/load failure
            raise UserError(
                f"llmspy-tui: the eBPF program failed to compile or load ({e}). "
                "Check that kernel headers are installed (./setup) and the kernel allows BPF."
            ) from None
        self.results: list[AttachResult] = []

    # -- targets -------------------------------------------------------------------------
    def attach(self, target: Target) -> AttachResult:
        res = AttachResult(target)
        hooks, res.placement = internal_hooks(target.path)
        if hooks is not None and self._attach_internal(target, hooks, res):
            self._attach_lifecycle(target, res)
            self.results.append(res)
            return res
        for sym, enter, ret in PROBES:
            if sym not in target.functions:
                continue
            try:
                self.bpf.attach_uprobe(name=target.path, sym=sym, fn_name=enter)
                self.bpf.attach_uretprobe(name=target.path, sym=sym, fn_name=ret)
                res.attached.append(sym)
            except Exception as e:  # bcc raises bare Exception
                res.errors.append(f"{sym}: {e}")
        self._attach_lifecycle(target, res)
        self.results.append(res)
        return res

    def _attach_internal(self, target: Target, hooks: InternalHooks, res: AttachResult) -> bool:
        """Entry and return of ssl_read_internal / ssl_write_internal (see probepoints.py)."""
        done = []
        try:
            for name, addr, enter, ret in (
                ("ssl_read_internal", hooks.read, "probe_read_internal_enter", "probe_read_return"),
                ("ssl_write_internal", hooks.write, "probe_write_internal_enter", "probe_write_return"),
            ):
                self.bpf.attach_uprobe(name=target.path, addr=addr, fn_name=enter)
                done.append(("p", addr))
                self.bpf.attach_uretprobe(name=target.path, addr=addr, fn_name=ret)
                done.append(("r", addr))
                res.attached.append(name)
            return True
        except Exception as e:  # bcc raises bare Exception: fall back to the public functions
            for kind, addr in done:
                try:
                    detach = self.bpf.detach_uprobe if kind == "p" else self.bpf.detach_uretprobe
                    detach(name=target.path, addr=addr)
                except Exception:
                    pass
            res.attached.clear()
            res.placement = f"internal functions could not be probed: {e}"
            return False

    def _attach_lifecycle(self, target: Target, res: AttachResult) -> None:
        for sym, fn in (("SSL_free", "probe_ssl_free"), ("SSL_set_accept_state", "probe_set_accept_state")):
            if sym not in target.functions:
                continue
            try:
                self.bpf.attach_uprobe(name=target.path, sym=sym, fn_name=fn)
                res.attached.append(sym)
            except Exception as e:
                res.errors.append(f"{sym}: {e}")

    def open_probes(self) -> int:
        return self.bpf.num_open_uprobes()

    # -- filters -------------------------------------------------------------------------
    def set_filter(self, enabled: bool) -> None:
        self.bpf["config"][ctypes.c_int(0)] = ctypes.c_uint32(1 if enabled else 0)

    def set_inbound(self, enabled: bool) -> None:
        """Copy connections on which the process is the TLS server too (off: they are skipped)."""
        self.bpf["config"][ctypes.c_int(1)] = ctypes.c_uint32(1 if enabled else 0)

    def skip(self, tgid: int, conn: int) -> None:
        """Stop copying one connection's bytes (user space judged it not interesting)."""
        key = self.bpf["skip_conn"].Key(conn, tgid, 0)
        self.bpf["skip_conn"][key] = ctypes.c_uint8(1)

    def allow(self, tgid: int, inherit: bool) -> None:
        self.bpf["allow_tgid"][ctypes.c_uint32(tgid)] = ctypes.c_uint32(2 if inherit else 1)

    def disallow(self, tgid: int) -> None:
        try:
            del self.bpf["allow_tgid"][ctypes.c_uint32(tgid)]
        except KeyError:
            pass

    # -- data ----------------------------------------------------------------------------
    def open_ring(self, callback: Callable[[bytes | mmap.mmap, int, int], None]) -> None:
        """`callback(buffer, offset, length)` gets each record where it lies (no extra copy)."""
        self._callback = callback
        self._reader = None
        if platform.machine() == "x86_64":
            try:
                self._reader = RingReader(self.bpf["events"].map_fd, self.ring_bytes)
                return
            except (OSError, ValueError, AttributeError):
                self._reader = None  # fall back to bcc's consumer

        def _cb(_ctx, data, size):
            callback(ctypes.string_at(data, size), 0, size)
            return 0

        self._ring_cb = _cb  # keep a reference: bcc holds only a C pointer
        self.bpf["events"].open_ring_buffer(_cb)

    def consume(self) -> bool:
        """Read a bounded batch of records; True when the ring may hold more right now."""
        if self._reader is not None:
            return self._reader.drain(self._callback)
        self.bpf.ring_buffer_consume()
        return False

    def counters(self) -> dict[str, int]:
        table = self.bpf["counters"]
        return {name: int(sum(table[ctypes.c_int(i)])) for i, name in enumerate(COUNTER_NAMES)}

    def close(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
        try:
            self.bpf.cleanup()
        except Exception:
            pass
