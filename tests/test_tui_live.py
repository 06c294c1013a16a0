"""The full-screen monitor, live, as a user runs it: `llmspy-tui` in a real terminal (tmux),
real eBPF capture, and the official openai SDK streaming a conversation to the loopback server.
The test reads the screen as text and drives it with keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, require_bpf
from harness import TlsServer, start_client, finish_client

pytestmark = pytest.mark.bpf
SESSION = f"llmspy-tui-live-test-{os.getpid()}"  # unique: two runs at once must not share a session
CLIENT = Path(__file__).resolve().parent / "support" / "clients" / "openai_sdk.py"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_screen(pred, what: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = screen()
        if pred(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"the screen never showed {what}:\n{text}")


def keys(*k: str, pause: float = 0.4) -> None:
    tmux("send-keys", "-t", SESSION, *k)
    time.sleep(pause)


def test_live_monitor_shows_a_streaming_conversation(tmp_path, tls_cert):
    require_bpf()
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed (./setup --dev installs it)")
    cert, key = tls_cert
    server = TlsServer(cert, key, tmp_path / "server", sse_pause=0.15)
    exe = Path(sys.executable).parent / "llmspy-tui"
    subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    # the UI draws on stderr, so nothing is redirected: what it prints on exit stays on screen
    tmux("new-session", "-d", "-s", SESSION, "-x", "160", "-y", "45",
         f"cd {REPO} && {exe}; echo EXIT=$?; sleep 600")
    client = None
    try:
        wait_screen(lambda s: "LIVE" in s and "Waiting for LLM calls" in s, "the empty live monitor", 90)
        client = start_client([sys.executable, str(CLIENT), "--port", str(server.port), "--ca", str(cert),
                               "--scenario", "conversation"])
        # while the reply streams: the process appears with a live call, and the header counts it
        text = wait_screen(lambda s: f"{client.pid}" in s and "▶" in s, "a call in flight", 60)
        assert "live" in text.splitlines()[0]
        result = json.loads(finish_client(client).stdout)
        calls = result["calls"]
        row = wait_screen(lambda s: any(str(client.pid) in ln and f" {len(calls)} " in ln and "▶" not in ln
                                        for ln in s.splitlines()), "the finished calls", 30)
        assert "openai" in row
        # drill down: filter to the client, its one conversation, its calls
        keys("/")
        keys(*str(client.pid), "Enter")
        keys("Enter")
        text = wait_screen(lambda s: "conversations" in s, "the conversations list")
        keys("Enter")
        text = wait_screen(lambda s: s.count("✓ 200") == len(calls), f"{len(calls)} calls with status 200")
        keys("End", "Enter")
        text = wait_screen(lambda s: "Response" in s and "assistant" in s, "the call detail")
        last = calls[-1]
        words = " ".join(last["text"].split())[:50]
        assert words in " ".join(text.split()), (words, text)
        keys("1")  # Prompt: the earlier turns are there
        wait_screen(lambda s: "─ system ─" in s and "You are a helpful assistant" in s, "the system prompt")
        keys("q")
        summary = wait_screen(lambda s: "EXIT=" in s, "the monitor's exit", 30)
        assert "EXIT=0" in summary
        summary = " ".join(summary.split())
        assert "monitor closed" in summary and "lost: ring buffer 0 records" in summary
        assert "Traceback" not in summary
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        server.stop()
