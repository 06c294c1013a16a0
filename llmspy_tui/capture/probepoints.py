"""Where to put the uprobes so that a traced program barely notices them.

An x86 uprobe replaces one instruction with int3. Branches, calls, nops and pushes are then
emulated by the kernel; any other instruction is executed out of line with the trap flag set,
which costs a second exception (#DB). Hypervisors intercept #DB (KVM does, for safety), so on a
VM that probe costs ~12 µs instead of ~1 µs (bench/overhead.py measures it on this machine).

OpenSSL's SSL_read, SSL_read_ex, SSL_write and SSL_write_ex begin with `sub rsp, N` (not
emulated), and the _ex and plain variants each call one internal function with the _ex
signature, `ssl_read_internal(SSL *s, void *buf, size_t num, size_t *bytes)` (write likewise),
whose first instruction is a `push`. Hooking that function's entry and return sees every read
and write once, for the price of an emulated probe and a return trampoline.

The internal function has no exported symbol, so it is found by disassembling (capstone) the
public functions: the first call in SSL_read and in SSL_read_ex must go to the same function,
and SSL_read_ex must reach it with its four arguments untouched. Anything else (another TLS
library, another compiler's code layout, CET's endbr64 first, another architecture) falls back
to probing the public functions, which is always correct, only slower.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .elf import exported_symbols

SCAN_BYTES = 96  # the internal call comes within the first few instructions
ARG_REGS = ("rdi", "rsi", "rdx", "rcx")
_ARG_ALIASES = {
    "rdi": {"rdi", "edi", "di", "dil"},
    "rsi": {"rsi", "esi", "si", "sil"},
    "rdx": {"rdx", "edx", "dx", "dl", "dh"},
    "rcx": {"rcx", "ecx", "cx", "cl", "ch"},
}


@dataclass(frozen=True, slots=True)
class InternalHooks:
    """Addresses (as bcc's attach_uprobe takes them) of ssl_read_internal and ssl_write_internal."""

    read: int
    write: int


def _load_bias(elf: ELFFile) -> int:
    """bcc wants a virtual address for ET_EXEC and an offset from the load address otherwise."""
    if elf["e_type"] == "ET_EXEC":
        return 0
    loads = [seg["p_vaddr"] for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    return min(loads) if loads else 0


def _code_at(elf: ELFFile, vaddr: int, size: int) -> bytes:
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
            start = vaddr - seg["p_vaddr"] + seg["p_offset"]
            elf.stream.seek(start)
            return elf.stream.read(min(size, seg["p_vaddr"] + seg["p_filesz"] - vaddr))
    return b""


class _Disassembler:
    def __init__(self) -> None:
        import capstone

        self.cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self.cs.detail = True
        self.capstone = capstone

    def first_call(self, code: bytes, addr: int, keep_args: bool) -> int | None:
        """Target of the first direct call; with keep_args, None if an argument register changed first."""
        x86 = self.capstone.x86
        for insn in self.cs.disasm(code, addr):
            if insn.mnemonic == "call":
                ops = insn.operands
                if len(ops) == 1 and ops[0].type == x86.X86_OP_IMM:
                    return int(ops[0].imm)
                return None
            if insn.mnemonic in ("ret", "jmp"):
                return None  # control leaves the straight line before any call
            # a conditional branch before the call is an early error exit (num < 0): read on
            if keep_args:
                _, written = insn.regs_access()
                names = {insn.reg_name(r) for r in written}
                if any(names & _ARG_ALIASES[r] for r in ARG_REGS):
                    return None
        return None

    def emulated_entry(self, code: bytes, addr: int) -> bool:
        """Whether the kernel emulates the function's first instruction (a register push)."""
        for insn in self.cs.disasm(code, addr):
            return insn.mnemonic == "push" and insn.operands[0].type == self.capstone.x86.X86_OP_REG
        return False


def internal_hooks(path: str) -> tuple[InternalHooks | None, str]:
    """The internal read/write functions of the OpenSSL in `path`, or None and why not."""
    if platform.machine() != "x86_64":
        return None, f"probe placement is analysed for x86_64 only, not {platform.machine()}"
    try:
        dis = _Disassembler()
    except ImportError:
        return None, "capstone is not installed"
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != "EM_X86_64":
                return None, "not an x86_64 ELF file"
            names = ("SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex")
            syms = exported_symbols(elf, names)
            if len(syms) != len(names):
                return None, "the _ex variants are not exported"
            targets = {}
            for op in ("read", "write"):
                plain = syms[f"SSL_{op}"]
                ex = syms[f"SSL_{op}_ex"]
                t_plain = dis.first_call(_code_at(elf, plain, SCAN_BYTES), plain, keep_args=False)
                t_ex = dis.first_call(_code_at(elf, ex, SCAN_BYTES), ex, keep_args=True)
                if t_plain is None or t_plain != t_ex:
                    return None, f"SSL_{op} and SSL_{op}_ex do not call one internal function"
                if not dis.emulated_entry(_code_at(elf, t_ex, 16), t_ex):
                    return None, f"ssl_{op}_internal does not start with an emulated instruction"
                targets[op] = t_ex
            if targets["read"] == targets["write"]:
                return None, "read and write resolve to the same function"
            bias = _load_bias(elf)
            return InternalHooks(read=targets["read"] - bias, write=targets["write"] - bias), ""
    except (OSError, ELFError, ValueError, KeyError, IndexError, AttributeError) as e:
        return None, f"could not analyse {path}: {e}"
