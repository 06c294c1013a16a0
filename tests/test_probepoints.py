"""Probe placement: the internal read/write functions of OpenSSL are found only when the public
functions provably reach them with their arguments intact; otherwise the public ones are used."""

from __future__ import annotations

import platform

import pytest
from elftools.elf.elffile import ELFFile

from llmspy_tui.capture.elf import exported_symbols
from llmspy_tui.capture.probepoints import internal_hooks
from test_elf_targets import build_so, libssl_path

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="placement is analysed on x86_64")


def test_system_libssl_gets_internal_hooks():
    path = libssl_path()
    hooks, why = internal_hooks(path)
    assert hooks is not None, why
    with open(path, "rb") as f:
        elf = ELFFile(f)
        syms = exported_symbols(elf, ("SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex", "SSL_free"))
    # distinct functions, none of them a public entry point
    assert hooks.read != hooks.write
    assert not {hooks.read, hooks.write} & set(syms.values())


def test_bcc_resolves_the_address_to_the_same_file_offset_as_a_symbol():
    bcc = pytest.importorskip("bcc")
    if not hasattr(bcc, "BPF"):
        pytest.skip("bcc is not BPF Compiler Collection")
    path = libssl_path()
    hooks, why = internal_hooks(path)
    assert hooks is not None, why
    with open(path, "rb") as f:
        sym = exported_symbols(ELFFile(f), ("SSL_read_ex",))["SSL_read_ex"]
    _, sym_off = bcc.BPF._check_path_symbol(path.encode(), b"SSL_read_ex", None, -1)
    _, hook_off = bcc.BPF._check_path_symbol(path.encode(), b"", hooks.read, -1)
    assert hook_off - sym_off == hooks.read - sym


def test_public_functions_that_call_different_helpers_are_probed_themselves(tmp_path):
    lib = build_so(tmp_path, "libfakessl", r"""
        #include <stddef.h>
        __attribute__((noinline)) int read_a(void *s, void *b, size_t n, size_t *o) { *o = n; return 1; }
        __attribute__((noinline)) int read_b(void *s, void *b, size_t n, size_t *o) { *o = n + 1; return 1; }
        int SSL_read(void *s, void *b, int n) { size_t o; return read_a(s, b, n, &o) > 0 ? (int)o : -1; }
        int SSL_read_ex(void *s, void *b, size_t n, size_t *o) { return read_b(s, b, n, o); }
        int SSL_write(void *s, const void *b, int n) { return n; }
        int SSL_write_ex(void *s, const void *b, size_t n, size_t *o) { *o = n; return 1; }
    """)
    hooks, why = internal_hooks(str(lib))
    assert hooks is None
    assert "do not call one internal function" in why


def test_files_that_are_not_x86_64_elf_are_left_to_the_public_probes(tmp_path):
    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"\x7fELF" + b"\0" * 60)
    hooks, why = internal_hooks(str(junk))
    assert hooks is None and why
    hooks, why = internal_hooks(str(tmp_path / "missing.so"))
    assert hooks is None and "could not analyse" in why
