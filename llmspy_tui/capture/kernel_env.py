"""Preconditions of live capture, each failing with one actionable line."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

from ..errors import UserError

TRACEFS = "/sys/kernel/tracing"


def require_root() -> None:
    if os.geteuid() != 0:
        raise UserError(
            "llmspy-tui: live capture needs root (it loads eBPF programs): run it with sudo, "
            "or use --replay FILE to read a recording without root."
        )


def import_bcc():
    """Import the distro's bcc; the PyPI package called `bcc` is unrelated and useless here."""
    try:
        import bcc  # noqa: PLC0415  (only capture/ imports bcc, and only for live capture)
    except ImportError:
        raise UserError(
            "llmspy-tui: the bcc Python module is missing. Install the distro package "
            "(Debian/Ubuntu: sudo apt-get install python3-bpfcc) and re-run ./setup so the venv "
            "can see it. The PyPI package named 'bcc' is a different project."
        ) from None
    if not hasattr(bcc, "BPF"):
        raise UserError(
            f"llmspy-tui: the module 'bcc' found at {getattr(bcc, '__file__', '?')} is not BPF "
            "Compiler Collection (probably the unrelated PyPI package): pip uninstall bcc, "
            "then sudo apt-get install python3-bpfcc and re-run ./setup."
        )
    return bcc


def require_kernel_headers() -> None:
    """bcc compiles C at run time against /lib/modules/$(uname -r)/build."""
    release = platform.release()
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(os.path.join(build, "include")):
        return
    if os.path.isfile("/sys/kernel/kheaders.tar.xz") or _has_kheaders_module():
        return  # bcc can use the kheaders module
    raise UserError(
        f"llmspy-tui: kernel headers not found at {build} (needed to compile the eBPF program). "
        "Run ./setup, which installs them (or links the distro's generic headers when no "
        "package matches this kernel)."
    )


def _has_kheaders_module() -> bool:
    try:
        r = subprocess.run(["modinfo", "kheaders"], capture_output=True, timeout=5, check=False)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_tracefs(log=lambda msg: print(msg, file=sys.stderr)) -> None:
    """bcc creates and removes uprobe events through tracefs; mount it when it is missing."""
    for path in (TRACEFS, "/sys/kernel/debug/tracing"):
        if os.path.exists(os.path.join(path, "uprobe_events")):
            return
    r = subprocess.run(
        ["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True, check=False
    )
    if r.returncode != 0 or not os.path.exists(os.path.join(TRACEFS, "uprobe_events")):
        raise UserError(
            f"llmspy-tui: tracefs is not mounted and mounting it at {TRACEFS} failed "
            f"({r.stderr.strip() or 'no uprobe_events'}); uprobes cannot be managed."
        )
    log(f"llmspy-tui: mounted tracefs at {TRACEFS} (bcc manages uprobes through it)")
