"""Exports of conversations and calls: content true to the store, private files, masked secrets,
and the `llmspy-tui export` command. Real recordings replayed through the real pipeline."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from llmspy_tui.capture.events import ProcessInfo, ProcessSeen
from llmspy_tui.errors import UserError
from llmspy_tui.export import cli as export_cli
from llmspy_tui.export import create_private, default_filename, exchange_record, export_bytes, write_private
from llmspy_tui.export.markdown import fence, new_messages
from llmspy_tui.pipeline import Pipeline
from llmspy_tui.providers.events import Exchange
from llmspy_tui.providers.model import LlmRequest, LlmResponse, Message, ToolCall
from support.llm_wire import h1_call, through_store

GOLDEN = str(Path(__file__).resolve().parent / "golden" / "llm-clients.llmspy")
# what the recorded clients send (tests/support/clients/openai_sdk.py, llm_scenarios.py, node_llm.mjs)
KNOWN_KEYS = ("sk-test-openai-0123456789", "AIzaTESTSECRET0123456789", "sk-test-node-llm-0123456789")
SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}


@pytest.fixture(scope="module")
def snap():
    return export_cli.load(GOLDEN)


@pytest.fixture(scope="module")
def snap_secrets():
    return export_cli.load(GOLDEN, show_secrets=True)


def views_of(snap, cid):
    return [snap.exchanges[x] for x in snap.conversations[cid].exchange_ids]


def md_of(snap, **ids) -> str:
    return export_bytes(snap, fmt="md", **ids).decode()


def fenced(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text}\n```\n"


# -- Markdown ----------------------------------------------------------------------------------
def test_recording_has_the_interesting_cases(snap):
    convs = snap.conversations
    assert len(convs) >= 20
    assert len(convs["c6"].exchange_ids) == 3  # three chat turns
    assert len(convs["c23"].exchange_ids) == 3  # three Anthropic turns
    assert any(v.exchange.response.tool_calls for v in views_of(snap, "c3"))
    assert any(v.exchange.response.reasoning for v in views_of(snap, "c20"))
    assert any(v.exchange.provider == "google" for v in snap.exchanges.values())


def test_markdown_shows_every_message_and_reply_once(snap):
    for cid in snap.conversations:
        md = md_of(snap, conversation_id=cid)
        views = views_of(snap, cid)
        assert md.startswith(f"# Conversation {cid}: ")
        user_texts = {m.text for v in views for m in v.exchange.request.messages if m.role == "user"}
        for text in user_texts:
            assert md.count(fenced(text)) == 1, (cid, text)
        tool_results = {m.text for v in views for m in v.exchange.request.messages if m.role == "tool"}
        for text in tool_results:
            assert md.count(fenced(text, "json")) == 1, (cid, text)
        systems = {v.exchange.request.system for v in views if v.exchange.request.system}
        for text in systems:
            assert md.count(fenced(text)) == 1, (cid, text[:40])
        for v in views:
            x, resp = v.exchange, v.exchange.response
            assert md.count(f"## Call {x.id} · ") == 1
            if resp.text:
                assert md.count(fenced(resp.text)) == 1, (cid, x.id)
            for c in resp.tool_calls:
                assert f"**Tool call** `{c.name}`" in md
                assert fenced(json.dumps(json.loads(c.arguments), indent=2), "json") in md
            if resp.reasoning:
                assert "".join(f"> {line}".rstrip() + "\n" for line in resp.reasoning.splitlines()) in md
            if resp.error:
                assert fenced(resp.error) in md


def test_markdown_header_has_process_models_and_totals(snap):
    conv = snap.conversations["c6"]
    md = md_of(snap, conversation_id="c6")
    head = md.split("\n## ", 1)[0]
    assert f"- Process: python (pid {conv.pid})" in head
    assert "- Models: gpt-4o-mini" in head
    assert "- Calls: 3" in head
    assert f"- Tokens: {conv.tally.input_tokens:,} in / {conv.tally.output_tokens:,} out" in head
    assert "- Cost: $" in head
    assert "credentials masked" in md


def test_markdown_multi_turn_shows_history_once(snap):
    md = md_of(snap, conversation_id="c6")
    sections = md.split("\n## Call ")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == list(snap.conversations["c6"].exchange_ids)
    assert "First question? (turn 1)" in sections[0]
    # later turns: only their own question; the earlier turns and replies are not repeated
    assert "First question" not in sections[1] and "Second question? (turn 2)" in sections[1]
    assert "Second question" not in sections[2] and "Third question? (turn 3)" in sections[2]
    assert "**System**" in sections[0] and "**System**" not in sections[1]


def test_markdown_tool_turn_shows_tool_result_not_the_echoed_call(snap):
    md = md_of(snap, conversation_id="c19")
    second = md.split("\n## Call ")[2]
    prompt = second.split("### Reply")[0]
    assert "**Tool result**" in prompt
    assert "**Tool call**" not in prompt  # the echoed assistant turn was shown as the first reply


def test_markdown_failed_call_shows_status_and_error(snap):
    md = md_of(snap, conversation_id="c11")
    assert "- Status: 429 · failed" in md
    assert "**Error**" in md and "Rate limit reached" in md


def test_markdown_single_call(snap):
    v = snap.exchanges["x4"]
    md = md_of(snap, exchange_id="x4")
    assert md.startswith("# Call x4 in conversation c3\n")
    # a lone call shows its whole history
    for m in v.exchange.request.messages:
        if m.text:
            assert m.text in md
    assert fenced(v.exchange.response.text) in md


def test_new_messages_falls_back_to_all_when_history_differs():
    u1, u2 = Message("user", "one"), Message("user", "two")
    reply = LlmResponse(text="answer")

    def x(msgs, resp=reply):
        return Exchange("x", "c", 0, 1, "h", "POST", "/", "1.1", 200, "openai", "openai.chat",
                        LlmRequest(model="m", messages=tuple(msgs)), resp)

    prev = x([u1])
    assert new_messages(None, x([u1]).request) == ((u1,), False)
    assert new_messages(prev, x([u1, Message("assistant", "answer"), u2]).request) == ((u2,), True)
    rewritten = Message("assistant", "edited answer")
    assert new_messages(prev, x([u1, rewritten, u2]).request) == ((rewritten, u2), True)
    other = [Message("user", "different"), Message("assistant", "answer"), u2]
    assert new_messages(prev, x(other).request) == (tuple(other), False)
    # tool arguments re-serialised by the client are the same call
    call = ToolCall("id1", "f", '{"a":1}')
    prev_t = x([u1], LlmResponse(tool_calls=(call,)))
    echoed = Message("assistant", "", (ToolCall("id1", "f", '{"a": 1}'),))
    result = Message("tool", "42", tool_call_id="id1")
    assert new_messages(prev_t, x([u1, echoed, result]).request) == ((result,), True)


def chat(messages: list, reply: str, model: str = "gpt-4o-mini"):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    return h1_call("/v1/chat/completions", {"model": model, "messages": messages}, [json.dumps(body).encode()])


def test_fences_cannot_be_broken_by_content():
    for text in ["```", "a\n```\n# not a heading", "````x````", "`` ` ``` `````", "plain"]:
        block = fence(text)
        lines = block.splitlines()
        f = lines[0][: len(lines[0]) - len("text")]
        assert set(f) == {"`"} and lines[-1] == f
        inner = "\n".join(lines[1:-1])
        assert inner == text
        assert not any(line.strip().startswith(f) for line in lines[1:-1])


def test_hostile_content_stays_in_its_block():
    evil_user = "Look:\n```\n# Injected heading\n```\nand ````` five"
    evil_reply = "```python\nprint(1)\n```\n</details><script>x</script>"
    _, pl = through_store([chat([{"role": "user", "content": evil_user}], evil_reply)])
    snap = pl.store.snapshot()
    (cid,) = snap.conversations
    md = md_of(snap, conversation_id=cid)
    assert "\n# Injected heading" in md  # inside a block, where it is inert:
    assert "``````text\n" + evil_user + "\n``````\n" in md
    assert "````text\n" + evil_reply + "\n````\n" in md
    # the title (the first user message) is escaped in the heading
    first = md.splitlines()[0]
    assert "\\`\\`\\`" in first and "\\#" in first
    # and a CommonMark parser sees exactly the structure the exporter meant
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").parse(md)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == "Conversation c1: Look: \\`\\`\\` \\# Injected heading \\`\\`\\` and \\`\\`\\`\\`\\` five"
    assert [h.split(" ·")[0] for h in headings[1:]] == ["Call x1", "Prompt", "Reply"]
    assert [t.content for t in tokens if t.type == "fence"] == [evil_user + "\n", evil_reply + "\n"]
    assert not any(t.type.startswith("html") for t in tokens)


# -- JSON and JSONL ----------------------------------------------------------------------------
def test_json_conversation_round_trips_and_totals_match(snap):
    for cid, conv in snap.conversations.items():
        doc = json.loads(export_bytes(snap, conversation_id=cid, fmt="json"))
        assert doc["type"] == "conversation" and doc["id"] == cid and doc["pid"] == conv.pid
        assert doc["process"] == views_of(snap, cid)[0].comm
        assert doc["title"] == conv.title and doc["models"] == list(conv.models)
        assert doc["totals"] == conv.tally.to_json()
        assert doc["first_ts"] == conv.first_ts / 1e9 and doc["last_ts"] == conv.last_ts / 1e9
        assert [x["id"] for x in doc["exchanges"]] == list(conv.exchange_ids)
        for rec, v in zip(doc["exchanges"], views_of(snap, cid), strict=True):
            assert rec == json.loads(json.dumps(exchange_record(v, headers=True)))
            assert rec["request_headers"]  # headers are part of an export
        sums = {k: sum((x["usage"] or {}).get(k) or 0 for x in doc["exchanges"])
                for k in ("input_tokens", "output_tokens")}
        assert sums == {k: doc["totals"][k] for k in sums}


def test_json_single_call_is_its_record(snap):
    doc = json.loads(export_bytes(snap, exchange_id="x25", fmt="json"))
    assert doc == json.loads(json.dumps(exchange_record(snap.exchanges["x25"], headers=True)))
    assert doc["conversation_id"] == "c19" and doc["id"] == "x25"


def test_jsonl_one_line_per_call(snap):
    for cid, conv in snap.conversations.items():
        data = export_bytes(snap, conversation_id=cid, fmt="jsonl")
        lines = data.decode().splitlines()
        assert len(lines) == len(conv.exchange_ids) == conv.tally.calls
        assert [json.loads(line)["id"] for line in lines] == list(conv.exchange_ids)
        assert data.endswith(b"\n")
    assert len(export_bytes(snap, exchange_id="x9", fmt="jsonl").splitlines()) == 1


def test_unknown_ids_and_formats(snap):
    with pytest.raises(UserError, match=r"no conversation 'c999'.*--list.*--headless --replay"):
        export_bytes(snap, conversation_id="c999", fmt="md")
    with pytest.raises(UserError, match=r"no call 'x999'"):
        export_bytes(snap, exchange_id="x999", fmt="json")
    with pytest.raises(UserError, match="json, md, jsonl"):
        export_bytes(snap, conversation_id="c1", fmt="html")


# -- secrets -----------------------------------------------------------------------------------
def secrets_sent(snap) -> set[str]:
    out = set()
    for v in snap.exchanges.values():
        for k, val in v.exchange.request_headers:
            if k.lower() in SECRET_HEADERS:
                out.add(re.sub(r"(?i)^(bearer|basic|token)\s+", "", val))
    return out


def all_exports(snap, show_secrets: bool) -> bytes:
    parts = []
    for cid in snap.conversations:
        for fmt in ("json", "md", "jsonl"):
            parts.append(export_bytes(snap, conversation_id=cid, fmt=fmt, show_secrets=show_secrets))
    for xid in snap.exchanges:
        parts.append(export_bytes(snap, exchange_id=xid, fmt="md", show_secrets=show_secrets))
    return b"".join(parts)


def test_secrets_masked_unless_asked(snap, snap_secrets):
    secrets = secrets_sent(snap_secrets)
    assert set(KNOWN_KEYS) <= secrets
    masked = all_exports(snap, show_secrets=False)
    for s in secrets:
        assert s.encode() not in masked, s
    assert b"Bearer ****" in masked
    shown = all_exports(snap_secrets, show_secrets=True)
    for s in secrets:
        assert s.encode() in shown, s


# -- files -------------------------------------------------------------------------------------
def test_private_file_mode_and_abspath(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0)  # a permissive umask must not widen the mode
    try:
        path = write_private("out.md", b"hello")
    finally:
        os.umask(old)
    assert path == str(tmp_path / "out.md")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Path(path).read_bytes() == b"hello"
    with create_private(str(tmp_path / "b.bin")) as f:
        f.write(b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "b.bin").st_mode) == 0o600


def test_existing_file_is_not_overwritten(tmp_path):
    p = tmp_path / "x.json"
    p.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists; choose another name"):
        write_private(str(p), b"new")
    assert p.read_bytes() == b"keep me"


def test_symlink_is_not_followed(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        write_private(str(link), b"evil")
    assert target.read_bytes() == b"precious"
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(UserError, match="symbolic link"):
        write_private(str(dangling), b"evil")
    assert not (tmp_path / "would-be-created").exists()


def test_missing_directory_and_permission_messages(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        write_private(str(tmp_path / "no" / "such" / "x.md"), b"")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(UserError, match="permission denied"):
            write_private(str(ro / "x.md"), b"")
        return
    # root ignores directory permissions: try as an unprivileged user, in a directory it cannot write
    shared = Path(tempfile.mkdtemp(prefix="llmspy-export-"))
    try:
        shared.chmod(0o755)
        code = ("import sys\nfrom llmspy_tui.errors import UserError\n"
                "from llmspy_tui.export.files import write_private\n"
                "try:\n    write_private(sys.argv[1], b'')\nexcept UserError as e:\n    print(e)\n")

        def demote():
            os.setgid(65534)
            os.setuid(65534)

        cp = subprocess.run([sys.executable, "-c", code, str(shared / "x.md")], capture_output=True, text=True,
                            preexec_fn=demote, timeout=60)
        if "permission denied" not in cp.stdout and "Permission denied" in cp.stderr:
            pytest.skip("the interpreter is not readable by an unprivileged user")
        assert "permission denied" in cp.stdout, (cp.stdout, cp.stderr)
        assert not (shared / "x.md").exists()
    finally:
        shutil.rmtree(shared)


def test_failed_write_leaves_no_partial_file(tmp_path):
    # a real short write: the file size limit makes the kernel refuse the rest with EFBIG
    code = (
        "import resource, signal, sys\n"
        "from llmspy_tui.errors import UserError\n"
        "from llmspy_tui.export.files import write_private\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
        "try:\n"
        "    write_private(sys.argv[1], b'x' * 1_000_000)\n"
        "except UserError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    out = tmp_path / "big.jsonl"
    cp = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 3, cp.stderr
    assert "cannot write" in cp.stdout and "Traceback" not in cp.stderr
    assert not out.exists()


def test_default_filename_is_sanitised():
    pipeline = Pipeline()
    pipeline.feed([ProcessSeen(1, ProcessInfo(4242, 0, "my app/../x", "/bin/x", (), 1))])
    _, pl = through_store([chat([{"role": "user", "content": "hi"}], "hello")], pipeline=pipeline)
    snap = pl.store.snapshot()
    (cid,) = snap.conversations
    (xid,) = snap.conversations[cid].exchange_ids
    now = datetime(2025, 1, 2, 3, 4, 5)
    name = default_filename(snap, conversation_id=cid, fmt="md", now=now)
    assert name == f"llmspy-my_app_.._x-{cid}-20250102-030405.md"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
    assert default_filename(snap, exchange_id=xid, fmt="jsonl", now=now).endswith(f"-{cid}-{xid}-20250102-030405.jsonl")


# -- the command -------------------------------------------------------------------------------
def test_cli_list(capsys, snap):
    assert export_cli.main(["--replay", GOLDEN, "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "PID", "PROCESS", "MODEL", "CALLS", "TOKENS", "IN/OUT", "COST", "TITLE"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert list(rows) == list(snap.conversations)
    c6 = rows["c6"].split()
    conv = snap.conversations["c6"]
    assert c6[1:5] == [str(conv.pid), "python", "gpt-4o-mini", "3"]
    assert c6[5] == f"{conv.tally.input_tokens}/{conv.tally.output_tokens}"
    assert rows["c6"].endswith(conv.title)
    assert rows["c26"].split()[2] == "curl"


def test_cli_writes_private_file(tmp_path, capsys, snap):
    out = tmp_path / "c6.md"
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c6", "--format", "md", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err == f"wrote {out} (3 calls)\n"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_bytes() == export_bytes(snap, conversation_id="c6", fmt="md")
    # again: refused, one line, file untouched
    before = out.read_bytes()
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c1", "--format", "json", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "Traceback" not in err
    assert out.read_bytes() == before


def test_cli_default_name_and_format_from_extension(tmp_path, monkeypatch, capsys, snap):
    monkeypatch.chdir(tmp_path)
    assert export_cli.main(["--replay", GOLDEN, "--call", "x25", "--format", "json"]) == 0
    (made,) = os.listdir(tmp_path)
    assert re.fullmatch(r"llmspy-python-c19-x25-\d{8}-\d{6}\.json", made)
    assert "(1 call)" in capsys.readouterr().err
    assert json.loads((tmp_path / made).read_bytes())["id"] == "x25"
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c3", "-o", "c3.jsonl"]) == 0
    assert len((tmp_path / "c3.jsonl").read_text().splitlines()) == 2


def test_cli_stdout(capsys, snap):
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c23", "--format", "jsonl", "-o", "-"]) == 0
    cap = capsys.readouterr()
    assert cap.out.encode() == export_bytes(snap, conversation_id="c23", fmt="jsonl")
    assert cap.err == ""


def test_cli_show_secrets(capsys):
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c1", "--format", "json", "-o", "-"]) == 0
    assert "sk-test-openai-0123456789" not in capsys.readouterr().out
    assert export_cli.main(["--replay", GOLDEN, "--conversation", "c1", "--format", "json", "-o", "-",
                            "--show-secrets"]) == 0
    assert "sk-test-openai-0123456789" in capsys.readouterr().out


def test_cli_demo(capsys):
    assert export_cli.main(["--demo", "--list"]) == 0
    assert capsys.readouterr().out.startswith("ID ")
    assert export_cli.main(["--demo", "--conversation", "c1", "--format", "md", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Conversation c1: ")


@pytest.mark.parametrize("argv, needles, code", [
    (["--replay", GOLDEN, "--conversation", "c999", "-o", "-"], ["no conversation 'c999'", "--list"], 2),
    (["--replay", GOLDEN, "--call", "nope", "-o", "-"], ["no call 'nope'", "conversation_id"], 2),
    (["--replay", "/nonexistent/rec.llmspy", "--list"], ["cannot open /nonexistent/rec.llmspy"], 2),
    (["--replay", GOLDEN, "--list", "-o", "x.md"], ["--list prints a table"], 2),
    (["--replay", GOLDEN, "--conversation", "c1", "-o", "/nonexistent-dir/x.md"], ["does not exist"], 2),
])
def test_cli_errors_are_one_line(capsys, argv, needles, code):
    assert export_cli.main(argv) == code
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.count("\n") == 1 and "Traceback" not in cap.err
    for n in needles:
        assert n in cap.err


def test_cli_usage_errors_return_a_code(capsys):
    assert export_cli.main([]) == 2
    assert "usage: llmspy-tui export" in capsys.readouterr().err
    assert export_cli.main(["--demo", "--list", "--call", "x1"]) == 2
    assert export_cli.main(["--help"]) == 0
    assert "--conversation" in capsys.readouterr().out
