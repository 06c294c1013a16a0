"""Target discovery: which files export the OpenSSL functions, deduplicated by inode."""

from __future__ import annotations

import os
import shutil
import ssl  # noqa: F401  (maps libssl into this process, for the maps scan)
import subprocess
from pathlib import Path

import pytest

from llmspy_tui.capture.elf import exported_functions, is_ssl_target
from llmspy_tui.capture.targets import (
    MIN_STATIC_SSL_SIZE,
    TargetIndex,
    ldconfig_libssl,
    mapped_ssl_objects,
    program_files,
)

GCC = shutil.which("gcc")


def build_so(tmp_path: Path, name: str, source: str) -> Path:
    if not GCC:
        pytest.skip("gcc is needed to build test libraries")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run([GCC, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


def libssl_path() -> str:
    paths = [p for p in ldconfig_libssl() if is_ssl_target(p)]
    if not paths:
        pytest.skip("no OpenSSL libssl on this machine")
    return paths[0]


def test_real_libssl_exports_all_hooked_functions():
    assert is_ssl_target(libssl_path()) >= {"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex", "SSL_free"}


def test_importers_are_not_targets():
    """curl imports SSL_write from libssl (undefined symbol): hooking curl itself would be wrong."""
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl not installed")
    assert is_ssl_target(curl) == set()


def test_defining_library_is_a_target_and_partial_sets_are_reported(tmp_path):
    so = build_so(tmp_path, "libfakessl", """
        int SSL_write(void *s, const void *b, int n) { return n; }
        int SSL_read(void *s, void *b, int n) { return 0; }
        void SSL_free(void *s) {}
    """)
    assert is_ssl_target(str(so)) == {"SSL_write", "SSL_read", "SSL_free"}
    other = build_so(tmp_path, "libother", "int not_ssl(void) { return 1; }")
    assert is_ssl_target(str(other)) == set()


def test_non_elf_and_unreadable_files_are_ignored(tmp_path):
    text = tmp_path / "libssl.so.3"
    text.write_text("not an ELF file")
    assert exported_functions(str(text)) == set()
    trunc = tmp_path / "trunc.so"
    trunc.write_bytes(b"\x7fELF" + b"\x02\x01\x01" + b"\x00" * 20)
    assert exported_functions(str(trunc)) == set()
    assert exported_functions(str(tmp_path / "missing")) == set()


def test_node_binary_exports_openssl():
    node = shutil.which("node")
    if not node:
        pytest.skip("node not installed")
    if not is_ssl_target(node):
        pytest.skip("this node links OpenSSL dynamically")
    assert "SSL_write" in is_ssl_target(node)


def test_dedup_by_inode_across_paths(tmp_path):
    lib = libssl_path()
    index = TargetIndex()
    first = index.examine(lib, "ldconfig")
    assert first is not None
    link = tmp_path / "libssl-link.so"
    link.symlink_to(lib)
    assert index.examine(str(link), "test") is None  # same inode: not a new target
    assert index.examine(f"/proc/self/root{os.path.realpath(lib)}", "test") is None
    assert len(index.targets) == 1


def test_own_process_maps_show_libssl():
    paths = mapped_ssl_objects(os.getpid())
    if not any(is_ssl_target(p) for p in paths):
        pytest.skip("this Python's ssl module links OpenSSL statically")
    index = TargetIndex()
    found = index.scan_process(os.getpid())
    assert any("SSL_write" in t.functions for t in found)


def test_new_executable_found_through_its_process(tmp_path):
    node = shutil.which("node")
    if not node or not is_ssl_target(node):
        pytest.skip("needs a node binary that exports SSL_write")
    copy = tmp_path / "mynode"
    shutil.copy2(os.path.realpath(node), copy)
    p = subprocess.Popen([str(copy), "-e", "setTimeout(() => {}, 5000)"])
    try:
        index = TargetIndex()
        deadline = __import__("time").monotonic() + 10
        found = []
        while not found and __import__("time").monotonic() < deadline:
            found = index.scan_process(p.pid)
        assert found and found[0].path == str(copy)
        assert found[0].origin == f"exe:{p.pid}"
    finally:
        p.kill()
        p.wait()


def test_program_directories_are_scanned_for_big_files_only(tmp_path):
    small = tmp_path / "small"
    small.write_bytes(b"\x7fELF" + b"\0" * 100)
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(2 << 20)  # sparse: big enough to hold OpenSSL
    (tmp_path / "alias").symlink_to(big)
    (tmp_path / "subdir").mkdir()
    found = program_files([str(tmp_path), str(tmp_path / "missing")])
    assert len(found) == 1 and os.path.realpath(found[0]) == str(big)


def test_program_scan_finds_an_executable_exporting_ssl(tmp_path):
    lib = build_so(tmp_path, "staticssl", "int SSL_write(void *s, const void *b, int n) { return n; }")
    (tmp_path / "staticssl.c").unlink()
    with open(lib, "ab") as f:  # pad past the size filter; the ELF itself is unchanged
        f.write(b"\0" * (MIN_STATIC_SSL_SIZE + 1))
    index = TargetIndex()
    new = index.scan_host(pids=[], linker_cache=False, bin_dirs=[str(tmp_path)])
    assert [(t.path, t.origin) for t in new] == [(str(lib), "bin")]
    assert "SSL_write" in new[0].functions
