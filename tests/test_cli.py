"""Errors reach the user as one line and a non-zero exit code, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from llmspy_tui import cli
from llmspy_tui.capture import kernel_env
from llmspy_tui.errors import UserError


def run_cli(*args, user: int | None = None) -> subprocess.CompletedProcess:
    def demote():
        if user is not None:
            os.setgid(user)
            os.setuid(user)

    return subprocess.run([sys.executable, "-m", "llmspy_tui", *args], capture_output=True, text=True,
                          preexec_fn=demote if user is not None else None, timeout=60)


def assert_one_line_error(cp: subprocess.CompletedProcess, *needles: str) -> None:
    assert cp.returncode != 0
    assert "Traceback" not in cp.stderr
    lines = [l for l in cp.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, cp.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_not_root_suggests_sudo_or_replay(tmp_path):
    cp = run_cli("--headless", "--raw", user=65534)
    assert_one_line_error(cp, "needs root", "sudo", "--replay")
    # a recording that could not start leaves no file behind
    import tempfile

    shared = tempfile.mkdtemp(prefix="llmspy-cli-")
    os.chmod(shared, 0o777)
    rec = os.path.join(shared, "r.llmspy")
    cp = run_cli("--headless", "--raw", "--record", str(rec), user=65534)
    assert_one_line_error(cp, "needs root")
    assert not os.path.exists(rec)
    os.rmdir(shared)


def test_not_root_check_in_process(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UserError, match="sudo"):
        kernel_env.require_root()


def test_bcc_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "bcc", None)
    with pytest.raises(UserError, match="python3-bpfcc"):
        kernel_env.import_bcc()


def test_wrong_bcc_package_is_named(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "bcc", types.ModuleType("bcc"))
    with pytest.raises(UserError, match="unrelated PyPI package"):
        kernel_env.import_bcc()


def test_missing_headers_point_to_setup(monkeypatch):
    monkeypatch.setattr(kernel_env.platform, "release", lambda: "0.0.0-nonexistent")
    monkeypatch.setattr(kernel_env.os.path, "isfile", lambda p: False)
    monkeypatch.setattr(kernel_env, "_has_kheaders_module", lambda: False)
    with pytest.raises(UserError, match="./setup"):
        kernel_env.require_kernel_headers()


def test_no_tls_library_message():
    from llmspy_tui.capture.live import raise_no_tls

    with pytest.raises(UserError, match="no TLS library"):
        raise_no_tls()


def test_replay_of_missing_or_bogus_file(tmp_path):
    assert_one_line_error(run_cli("--headless", "--raw", "--replay", str(tmp_path / "nope")), "cannot open")
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x00" * 100)
    assert_one_line_error(run_cli("--headless", "--raw", "--replay", str(bogus)), "not an llmspy-tui capture")


def test_record_refuses_existing_file(tmp_path):
    existing = tmp_path / "exists.llmspy"
    existing.write_text("precious")
    cp = run_cli("--headless", "--raw", "--record", str(existing))
    assert cp.returncode != 0 and "Traceback" not in cp.stderr
    assert existing.read_text() == "precious"


def test_sizes_parse():
    assert cli.parse_size("1M") == 1 << 20
    assert cli.parse_size("512k") == 512 << 10
    assert cli.parse_size("4096") == 4096
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        cli.parse_size("lots")


def test_http_mode_replays_the_demo_as_http_events():
    import orjson

    cp = run_cli("--headless", "--http", "--demo")
    assert cp.returncode == 0, cp.stderr
    lines = [orjson.loads(line) for line in cp.stdout.splitlines()]
    types = {line["type"] for line in lines}
    assert {"connection", "request", "response", "body", "sse", "end", "close"} <= types
    h2 = [dict(line["headers"]) for line in lines if line["type"] == "request" and line["http_version"] == "2"]
    keys = [v for h in h2 for k, v in h.items() if k in ("authorization", "x-api-key", "x-goog-api-key")]
    assert h2 and len(keys) == len(h2)  # every HTTP/2 request's key, HPACK decoded (curl, the anthropic SDK)
    assert all(v.split()[-1].strip("*") == "" for v in keys)  # and masked
    assert all(line["complete"] for line in lines if line["type"] == "end")
    shown = run_cli("--headless", "--http", "--demo", "--show-secrets")
    assert "sk-ant-demo-not-a-real-key" in shown.stdout and "sk-ant-demo" not in cp.stdout


def test_raw_and_http_are_exclusive():
    cp = run_cli("--headless", "--raw", "--http", "--demo")
    assert_one_line_error(cp, "one of --raw and --http")


def test_internal_parsing_errors_reach_stderr_and_the_call_ends(capsys):
    """A bug of ours met while parsing (forced here by breaking one provider method) costs the
    one exchange, which ends with the reason, and is counted on stderr: never silent."""
    import io

    from llmspy_tui import cli
    from llmspy_tui.headless import ExchangePrinter
    from support import wire
    from support.llm_wire import h1_call

    out = io.BytesIO()
    printer = ExchangePrinter(out, all_http=True)

    def broken(*_a, **_k):
        raise RuntimeError("forced")

    printer.pipeline.exchanges._start = broken
    conv = h1_call("/v1/chat/completions", {"model": "gpt-4o", "messages": []}, [b'{"choices": []}'])
    printer.handle(wire.to_chunks(conv))
    printer.close()
    assert printer.internal_errors >= 1
    lines = out.getvalue().splitlines()
    assert lines and b"internal error: RuntimeError: forced" in lines[0]
    assert cli._report_internal_errors(printer) == printer.internal_errors
    err = capsys.readouterr().err
    assert "internal parsing error" in err and "please report" in err
