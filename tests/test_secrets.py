"""Credentials never reach the user's screen, JSONL or exports unless --show-secrets.

One recording holds every place a secret travels in LLM traffic: credential headers
(Authorization, x-api-key, api-key, x-goog-api-key, Cookie / Set-Cookie, an unknown header
carrying a key), key= in the URL, API keys pasted into the prompt (OpenAI, Anthropic, Google,
AWS, a PEM private key), a key echoed in a streamed reply and in a tool call's arguments, and a
key on the traced program's command line; over HTTP/1.1 and HTTP/2. It goes through the real
pipeline into every output: the full-screen app (each tab of the call, the process list), the
headless JSONL modes (exchanges, HTTP events, raw chunks) and every export format.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))
import wire  # noqa: E402

from llmspy_tui.capture.events import ConnClosed, ProcessInfo, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder  # noqa: E402
from llmspy_tui.redact import mask_cmdline_arg, mask_keys, mask_keys_bytes  # noqa: E402

OPENAI_KEY = "sk-proj-T3stK3yAbcdefghijklmnopqrstuvwxyz0123456789"
ANTHROPIC_KEY = "sk-ant-api03-Zyxwvutsrqponmlkjihgfedcba9876543210-AAAA"
GOOGLE_KEY = "AIzaSyB-1234567890abcdefghijklmnopqrstu"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PEM_BODY = "MIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ"
COOKIE = "session=c00kie-v4lue-9f8e7d"
SET_COOKIE = "sid=s3t-c00kie-1a2b3c"
CUSTOM = "sk-custom-header-0123456789abcdefghij"
ECHOED = "sk-echoedinreply0123456789ABCDEFGHIJ"
TOOL_KEY = "sk-toolargument0123456789abcdefghijk"
CMDLINE_KEY = "sk-cmdline-0123456789abcdefghijklmnop"
PROMPT = (f"My OpenAI key is {OPENAI_KEY}, Anthropic {ANTHROPIC_KEY}, Gemini {GOOGLE_KEY}, "
          f"AWS {AWS_KEY}.\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n"
          "Please keep the task-list risk-free.")
SECRETS = [OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, AWS_KEY, PEM_BODY, COOKIE, SET_COOKIE, CUSTOM, ECHOED,
           TOOL_KEY, CMDLINE_KEY, "s3cr3t-azure-api-key-value", "goog-header-key-value"]
PID = 4321


# -- the masking itself --------------------------------------------------------------------------
def test_keys_in_text_are_masked_keeping_length_and_kind():
    out = mask_keys(PROMPT)
    assert len(out) == len(PROMPT)
    for key in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, AWS_KEY, PEM_BODY):
        assert key not in out
    assert "sk-" + "*" * (len(OPENAI_KEY) - 3) in out  # the kind of key stays readable
    assert "AIza" + "*" * (len(GOOGLE_KEY) - 4) in out
    assert "-----BEGIN RSA PRIVATE KEY-----" in out and "-----END RSA PRIVATE KEY-----" in out
    assert "task-list risk-free" in out
    assert mask_keys_bytes(PROMPT.encode()) == out.encode()


@pytest.mark.parametrize("text", [
    "ask-me-anything, desk-lamp, risk-free, task-list-for-the-week-and-more",
    "sk-short", "AIzaShort", "Bearer short", "the bearer of bad news",
    "github highlights: gh_not_a_token", "AKIA is an acronym", "hf_small",
    "base64: dGhpcyBpcyBub3QgYSBrZXkgYnV0IGxvbmcgZW5vdWdo",
])
def test_ordinary_text_is_left_alone(text):
    assert mask_keys(text) == text
    assert mask_keys_bytes(text.encode()) == text.encode()


def test_masked_json_still_parses_and_masking_is_idempotent():
    body = orjson.dumps({"messages": [{"role": "user", "content": PROMPT}], "key": OPENAI_KEY})
    masked = mask_keys_bytes(body)
    assert len(masked) == len(body) and OPENAI_KEY.encode() not in masked
    content = orjson.loads(masked)["messages"][0]["content"]
    # the same as masking the text, except that a PEM body's escaped newlines (two bytes of JSON
    # each) become two stars where the text has one
    text = mask_keys(PROMPT)
    assert content.split("-----BEGIN")[0] == text.split("-----BEGIN")[0]
    assert content.split("-----END")[1] == text.split("-----END")[1]
    assert not any(k in content for k in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY, AWS_KEY, PEM_BODY))
    assert mask_keys_bytes(masked) == masked


def test_bearer_token_and_cmdline():
    assert mask_keys("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345'") == \
        "curl -H 'Authorization: Bearer " + "*" * 32 + "'"
    assert CMDLINE_KEY not in mask_cmdline_arg(f"--api-key={CMDLINE_KEY}")


# -- every output of one recording ------------------------------------------------------------------
def _calls() -> list[wire.Conversation]:
    request = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": PROMPT}],
               "tools": [{"type": "function", "function": {"name": "save", "parameters": {"type": "object"}}}]}
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": f"I will not store {ECHOED}."}}]},
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                      "function": {"name": "save", "arguments": json.dumps({"key": TOOL_KEY})}}]}}]},
        {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
         "usage": {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102}},
    ]
    sse = wire.sse([(None, json.dumps(c)) for c in chunks] + [(None, "[DONE]")])
    h1 = [
        ("send", wire.h1_request("POST", f"/v1/chat/completions?key={GOOGLE_KEY}&alt=sse",
                                 orjson.dumps(request),
                                 {"Host": "api.openai.com", "Authorization": f"Bearer {OPENAI_KEY}",
                                  "api-key": "s3cr3t-azure-api-key-value", "Cookie": COOKIE,
                                  "X-Custom-Auth": CUSTOM, "Content-Type": "application/json"})),
        ("recv", wire.h1_response(200, sse, {"Content-Type": "text/event-stream", "Set-Cookie": SET_COOKIE})),
    ]
    anthropic_req = {"model": "claude-sonnet-4-5", "max_tokens": 100,
                     "messages": [{"role": "user", "content": PROMPT}]}
    reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
             "content": [{"type": "text", "text": f"Noted {ECHOED}"}], "stop_reason": "end_turn",
             "usage": {"input_tokens": 80, "output_tokens": 5}}
    h2 = wire.H2Pair()
    h2.request(1, "POST", "/v1/messages", orjson.dumps(anthropic_req), authority="api.anthropic.com",
               extra=[("x-api-key", ANTHROPIC_KEY), ("x-goog-api-key", "goog-header-key-value"),
                      ("content-type", "application/json")])
    h2.respond(1, 200, [("content-type", "application/json"), ("set-cookie", SET_COOKIE)])
    h2.data(1, orjson.dumps(reply), end=True)
    return [h1, h2.conv]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "secrets.llmspy"
    rec = Recorder(str(path))
    rec.start()
    info = ProcessInfo(PID, 1, "agent", "/usr/bin/python3",
                       ("python3", "agent.py", "--api-key", CMDLINE_KEY), 1)
    rec.write(ProcessSeen(1_000_000_000, info))
    ts = 1_000_000_000
    for i, conv in enumerate(_calls()):
        events = wire.to_chunks(conv, pid=PID, ssl=0x1000 + i, ts0=ts + 1000, splits=lambda d, b: [5, 40, 300])
        rec.write_many(events)
        ts = events[-1].ts
        rec.write(ConnClosed(ts + 1, PID, 0x1000 + i))
    rec.close()
    return path


def _cli(*args: str) -> bytes:
    out = subprocess.run([sys.executable, "-m", "llmspy_tui", *args], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    assert b"Traceback" not in out.stderr
    return out.stdout


def _check(data: bytes, shown: bool, what: str) -> None:
    for s in SECRETS:
        if shown:
            continue
        assert s.encode() not in data, f"{what}: {s} visible"
        # JSON outputs escape '/' or non-ASCII differently; keys are plain ASCII, so this is enough


def test_recording_holds_the_secrets(recording):
    data = recording.read_bytes()
    for s in (OPENAI_KEY, ANTHROPIC_KEY, COOKIE, CMDLINE_KEY):
        assert s.encode() in data  # the recording is the raw capture: 0600, and masked on output


@pytest.mark.parametrize("mode", [[], ["--http"], ["--raw"]])
def test_headless_jsonl_is_masked_unless_asked(recording, mode):
    masked = _cli("--headless", *mode, "--replay", str(recording))
    lines = [orjson.loads(x) for x in masked.splitlines()]
    assert lines, "no output"
    text = masked + b"".join(base64.b64decode(x["data_b64"]) for x in lines if "data_b64" in x)
    _check(text, False, f"headless {mode}")
    shown = _cli("--headless", *mode, "--show-secrets", "--replay", str(recording))
    shown += b"".join(base64.b64decode(x["data_b64"]) for x in map(orjson.loads, shown.splitlines())
                      if "data_b64" in x)
    present = [s for s in SECRETS if s.encode() in shown]
    assert OPENAI_KEY in present, f"--show-secrets hides them ({mode})"
    if mode:  # the exchange records have no headers; the HTTP events and raw chunks do
        assert COOKIE in present and SET_COOKIE in present, f"--show-secrets hides them ({mode})"
    if not mode:  # the exchange records carry the prompt text and the reply, parsed
        assert len(lines) == 2 and all(x.get("complete") for x in lines), lines
        assert mask_keys(PROMPT).split("\n")[0] in masked.decode()  # the prompt, its keys masked


@pytest.mark.parametrize("fmt", ["md", "json", "jsonl"])
def test_exports_are_masked_unless_asked(recording, fmt):
    listing = _cli("export", "--replay", str(recording), "--list").decode()
    convs = sorted({w for w in listing.split() if w[:1] == "c" and w[1:].isdigit()})
    assert len(convs) == 2, listing
    what = [("--conversation", c) for c in convs] + [("--call", "x1"), ("--call", "x2")]
    for flag, ident in what:
        masked = _cli("export", "--replay", str(recording), flag, ident, "--format", fmt, "-o", "-")
        assert masked.strip(), (ident, fmt)
        _check(masked, False, f"export {ident} {fmt}")
    shown = b"".join(_cli("export", "--replay", str(recording), flag, ident, "--format", fmt, "-o", "-",
                          "--show-secrets") for flag, ident in what)
    assert OPENAI_KEY.encode() in shown and ANTHROPIC_KEY.encode() in shown


async def _screens(path: Path, show_secrets: bool) -> str:
    """Every view of the app with the two calls: process list, each call's five tabs."""
    from llmspy_tui.sources import ReplaySource
    from llmspy_tui.tui.app import MonitorApp
    from tui_views import _select, wait_ready

    app = MonitorApp(ReplaySource(str(path)), show_secrets=show_secrets)
    seen = []
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_ready(pilot)
        seen.append(app.export_screenshot())
        await _select(pilot, str(PID))
        for conv in app.snapshot.processes[0].conversation_ids:
            await _select(pilot, conv)
            for xid in app.snapshot.conversations[conv].exchange_ids:
                await _select(pilot, xid)
                for tab in "12345":
                    await pilot.press(tab)
                    await pilot.pause(0.2)
                    seen.append(app.export_screenshot())
                    seen.append("\n".join(str(getattr(w, "text", "")) for w in app.screen.query("TextArea")))
                await pilot.press("escape")
                await pilot.pause(0.2)
            await pilot.press("escape")
            await pilot.pause(0.2)
    return "\n".join(seen)


@pytest.mark.parametrize("show", [False, True])
def test_screen_is_masked_unless_asked(recording, show):
    import asyncio
    import html

    text = html.unescape(asyncio.run(_screens(recording, show))).replace("\xa0", " ")
    if show:
        assert OPENAI_KEY in text
        return
    for s in SECRETS:
        assert s not in text, f"screen shows {s}"
    assert "sk-****" in text  # the prompt is there, with its key masked


# -- --raw output of HTTP/2: header blocks are compressed bytes ---------------------------------------
def _raw_stream(conv, size: int, masker=None) -> dict[str, bytes]:
    from llmspy_tui.redact import RawMasker

    masker = masker or RawMasker()
    out = {"send": b"", "recv": b""}
    for d, data in conv:
        for k in range(0, len(data), size):
            piece = data[k : k + size]
            out[d] += masker.mask(PID, 7, d, len(out[d]), piece)
    return out


def _plain_h2() -> wire.H2Pair:
    """Header values as plain literals (no Huffman coding): a secret would be plain bytes."""
    import functools

    h2 = wire.H2Pair()
    for side in (h2.client, h2.server):
        side.encoder.encode = functools.partial(side.encoder.encode, huffman=False)
    return h2


def test_raw_http2_header_blocks_are_blanked_at_every_chunk_split():
    h2 = _plain_h2()
    h2.request(1, "POST", f"/v1/messages?key={GOOGLE_KEY}", orjson.dumps({"content": "hello"}),
               authority="api.anthropic.com", extra=[("x-api-key", ANTHROPIC_KEY), ("cookie", COOKIE)])
    h2.respond(1, 200, [("set-cookie", SET_COOKIE)])
    h2.data(1, b'{"text":"ok"}', end=True)
    plain = b"".join(data for _, data in h2.conv)
    assert ANTHROPIC_KEY.encode() in plain and COOKIE.encode() in plain  # the test means something
    whole = _raw_stream(h2.conv, 1 << 30)
    for size in (1, 2, 3, 5, 8, 9, 10, 17, 64, 1000):
        assert _raw_stream(h2.conv, size) == whole, size
    both = whole["send"] + whole["recv"]
    for s in (ANTHROPIC_KEY, COOKIE, SET_COOKIE, GOOGLE_KEY, OPENAI_KEY):
        assert s.encode() not in both, s
    assert len(whole["send"]) + len(whole["recv"]) == len(plain)
    assert b'{"text":"ok"}' in whole["recv"]  # DATA frames are kept
    # keys in DATA frames are masked within a chunk (a key cut by a chunk boundary is the known
    # limit of raw mode, which prints each chunk as it comes)
    h2 = _plain_h2()
    h2.request(1, "POST", "/v1/messages", orjson.dumps({"content": PROMPT}), authority="x")
    sent = _raw_stream(h2.conv, 1 << 30)["send"]
    assert OPENAI_KEY.encode() not in sent and b"sk-****" in sent


def test_raw_http2_after_a_hole_is_blanked_whole():
    from llmspy_tui.redact import RawMasker

    h2 = _plain_h2()
    h2.request(1, "GET", "/", authority="x")
    h2.request(3, "GET", "/", authority="x", extra=[("x-api-key", ANTHROPIC_KEY)])
    send = b"".join(data for d, data in h2.conv if d == "send")
    m = RawMasker()
    first = m.mask(PID, 9, "send", 0, send[:30])
    later = m.mask(PID, 9, "send", 40, send[40:])  # 10 bytes never delivered
    assert first.startswith(b"PRI * HTTP/2.0") and set(later) == {ord("*")}


def test_raw_http2_joined_mid_connection_is_followed_from_a_frame_boundary():
    from llmspy_tui.redact import RawMasker

    h2 = _plain_h2()
    h2.request(1, "GET", "/", authority="x")
    mark = sum(len(data) for d, data in h2.conv if d == "send")
    h2.request(3, "POST", "/v1/chat/completions", b"{}", authority="x", extra=[("authorization", f"Bearer {OPENAI_KEY}")])
    later = b"".join(data for d, data in h2.conv if d == "send")[mark:]
    assert OPENAI_KEY.encode() in later
    out = RawMasker().mask(PID, 11, "send", mark, later)  # the monitor's first sight of it
    assert OPENAI_KEY.encode() not in out and b"{}" in out
    # HTTP/1 text seen mid-connection is not taken for frames
    h1 = wire.h1_request("POST", "/v1/x", b"{}", {"Host": "x", "x-api-key": "abcdef-not-a-known-shape"})
    assert b"abcdef-not-a-known-shape" not in RawMasker().mask(PID, 12, "send", 5000, h1)
