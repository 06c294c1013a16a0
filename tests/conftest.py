"""Shared fixtures. eBPF tests need root and bcc: elsewhere they skip with the reason, but
with LLMSPY_REQUIRE_BPF=1 (as in CI) a missing prerequisite is a failure, not a skip."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "support"
sys.path.insert(0, str(SUPPORT))


def bpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (loads eBPF programs)"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "bcc (python3-bpfcc) is not importable"
    if not hasattr(bcc, "BPF"):
        return "the 'bcc' module found is not BPF Compiler Collection"
    return None


def require_bpf() -> None:
    reason = bpf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("LLMSPY_REQUIRE_BPF") == "1":
        pytest.fail(f"eBPF test cannot run ({reason}) but LLMSPY_REQUIRE_BPF=1", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    from harness import make_cert

    return make_cert(tmp_path_factory.mktemp("cert"))
