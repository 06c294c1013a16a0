"""As root: the real monitor, real TLS through libssl, and bad input on purpose.

One monitor session (`--headless --all --headers --record`) watches real clients (Python's ssl
and http.client, httpx, h2, curl) talk to a loopback TLS server that misbehaves
(support/hostile_server.py) and to the well-behaved one (support/tls_server.py): random bytes,
broken HTTP/2 frames and HPACK, invalid JSON and non-UTF-8 bodies, megabytes of headers, a
gzip bomb, a 100 MB body, streams cut mid-event, clients dying mid-call, a reused pid, and
connections opened before the monitor started. Other eBPF tests may run on the host at the same
time: everything is looked up by the pids of this test's own clients.

What each test holds the monitor to is what a user sees: the exchange lines it printed live,
and, for what those lines do not carry (protocol notices, kept raw bodies, the process list),
the same recording replayed through the same pipeline the full-screen monitor runs.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from conftest import require_bpf
from harness import Monitor, TlsServer, finish_client, run_client, start_client

from llmspy_tui.capture.recordfile import RecordingReader
from llmspy_tui.pipeline import Pipeline
from llmspy_tui.protocol import events as pe
from llmspy_tui.protocol.events import BodyFlush
from llmspy_tui.store import Store

SUPPORT = Path(__file__).resolve().parent / "support"
CLIENT = SUPPORT / "hostile_client.py"
CURL = shutil.which("curl")
BOMB_SIZE = 1 << 30  # bytes of zeros behind the gzip bomb
BIG_BODY = 100_000_000
DECODE_CAP = 64 << 20  # protocol.body.Limits.max_decoded_body
KEEP_BODY = 4 << 20  # providers.tracker.Options.keep_body: raw bytes kept per message
# The monitor's RSS is about 290 MB once bcc has compiled the probes (LLVM); each case may add
# a small multiple of the 64 MiB a body is capped and kept at, never what the input inflates to.
RSS_GROWTH_LIMIT_KB = 256 * 1024
RSS_LIMIT_KB = 640 * 1024


# -- helpers ---------------------------------------------------------------------------------

def write_gzip_bomb(path: Path, size: int = BOMB_SIZE) -> None:
    """`size` zero bytes, gzip-compressed a MiB at a time (never the whole in memory): ~1 MB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(comp.compress(zeros))
        f.write(comp.flush())


class HostileServer:
    def __init__(self, cert: Path, key: Path, bomb: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(SUPPORT / "hostile_server.py"), "--cert", str(cert),
                                      "--key", str(key), "--bomb", str(bomb)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORTS "):
            self.proc.kill()
            raise RuntimeError(f"hostile server did not start: {line!r} {self.proc.stderr.read()}")
        self.ports = json.loads(line[6:])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def client(cert: Path, case: str, *args) -> list[str]:
    return [sys.executable, str(CLIENT), str(cert), case, *map(str, args)]


def result(cp) -> dict:
    return json.loads(cp.stdout.decode().strip().splitlines()[-1])


def wait_ready(p: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the client prints READY (it is then in the middle of what it does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.1)
        if r:
            line = p.stdout.readline()
            if line.strip() == b"READY":
                return
            if not line:
                break
    p.kill()
    raise RuntimeError(f"client {p.args} never got ready: {p.stderr.read().decode(errors='replace')[-2000:]}")


def wait_line(mon: Monitor, pred, timeout: float = 60.0) -> dict:
    """The first exchange line the monitor printed that `pred` accepts, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in mon.lines():
            if pred(line):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no such exchange line within {timeout} s; monitor said: {mon.stderr[-2000:]}")


def rss_kb(pid: int, field: str = "VmHWM") -> int:
    """The process's peak (VmHWM) or current (VmRSS) resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM over from the current RSS (clear_refs 5): the peak of what follows, not of
    the probes' compilation at start."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def chat_text(body: bytes) -> str:
    """The reply text of an OpenAI chat body, whole or streamed."""
    if body.lstrip().startswith(b"{"):
        return json.loads(body)["choices"][0]["message"]["content"]
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            for c in json.loads(line[6:]).get("choices", []):
                out.append(c.get("delta", {}).get("content") or "")
    return "".join(out)


def replay(record: Path) -> dict:
    """The recording through the full-screen monitor's pipeline (same options as the live run):
    the exchanges it finished, its store, and the protocol events other than body output."""
    pipe = Pipeline(Store(), live=False)
    protocol: list = []

    def tap(func):
        def wrapped(*a):
            out = func(*a)
            protocol.extend(e for e in out if type(e) is not BodyFlush)
            return out
        return wrapped

    pipe.protocol.feed_raw = tap(pipe.protocol.feed_raw)
    pipe.protocol.finish_raw = tap(pipe.protocol.finish_raw)
    reader = RecordingReader(str(record))
    views, batch = [], []
    for ev in reader:
        batch.append(ev)
        if len(batch) >= 512:
            views += pipe.feed(batch)
            batch = []
    views += pipe.feed(batch)
    views += pipe.finish()
    return {"views": views, "store": pipe.store.snapshot(), "protocol": protocol, "pipeline": pipe,
            "info": reader.info}


# -- the session ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tls_cert, tmp_path_factory):
    require_bpf()
    if not CURL:
        pytest.fail("curl is needed (./setup --dev installs it)", pytrace=False)
    cert, key = tls_cert
    work = tmp_path_factory.mktemp("hostile")
    bomb = work / "bomb.gz"
    builder = threading.Thread(target=write_gzip_bomb, args=(bomb,))
    builder.start()
    llm = TlsServer(cert, key, work / "server")
    res: dict = {"times": {}}
    times = res["times"]
    # k: connections opened, and used, before the monitor starts
    go = work / "go-midjoin"
    mid = start_client(client(cert, "midjoin", llm.port, go))
    wait_ready(mid)
    builder.join()
    hostile = HostileServer(cert, key, bomb)
    ports = hostile.ports
    t0 = time.monotonic()
    mon = Monitor(work, mode=("--all", "--headers"))
    times["monitor start"] = round(time.monotonic() - t0, 2)
    res["rss_start_kb"] = rss_kb(mon.proc.pid, "VmRSS")
    reset_peak_rss(mon.proc.pid)

    def timed(name: str, func):
        t = time.monotonic()
        try:
            res[name] = func()
        finally:
            times[name] = round(time.monotonic() - t, 2)

    def once(cmd) -> dict:
        cp = run_client(cmd, timeout=120)
        return {"pid": cp.pid, **result(cp)}

    try:
        go.touch()
        timed("k", lambda: {"pid": mid.pid, **result(finish_client(mid))})
        timed("a", lambda: once(client(cert, "garbage", ports["garbage"], llm.port)))
        timed("b", lambda: once(client(cert, "h2junk", ports["h2junk"], llm.port)))
        timed("c", lambda: once(client(cert, "badjson", ports["http1"])))
        timed("d", lambda: once(client(cert, "nonutf8", ports["http1"])))
        timed("e", lambda: once(client(cert, "bighead", ports["http1"], ports["h2"])))
        timed("h", lambda: once(client(cert, "ssecut", ports["http1"], ports["h2"])))
        timed("i", lambda: killed_clients(cert, ports["http1"]))
        timed("j", lambda: pid_reuse(cert, llm.port, work))
        res["rss_before_bomb_kb"] = rss_kb(mon.proc.pid, "VmRSS")
        res["peak_rss_cases_kb"] = rss_kb(mon.proc.pid)  # a to j (since the reset after start)
        reset_peak_rss(mon.proc.pid)
        timed("f", lambda: once(client(cert, "bomb", ports["http1"])))
        wait_line(mon, lambda x: x["pid"] == res["f"]["pid"])
        res["peak_rss_bomb_kb"] = rss_kb(mon.proc.pid)
        res["rss_before_big_kb"] = rss_kb(mon.proc.pid, "VmRSS")
        reset_peak_rss(mon.proc.pid)
        timed("g", lambda: once(client(cert, "big", ports["http1"], BIG_BODY)))
        wait_line(mon, lambda x: x["pid"] == res["g"]["pid"], timeout=120)
        res["peak_rss_big_kb"] = rss_kb(mon.proc.pid)
        res["monitor_alive"] = mon.proc.poll() is None
    finally:
        if mid.poll() is None:
            mid.kill()
        t = time.monotonic()
        res["rc"] = mon.stop()
        times["monitor stop"] = round(time.monotonic() - t, 2)
        hostile.stop()
        llm.stop()
    res["lines"] = mon.lines()
    res["stderr"] = mon.stderr
    t = time.monotonic()
    res["replay"] = replay(mon.record)
    times["replay"] = round(time.monotonic() - t, 2)
    return res


def killed_clients(cert: Path, port: int) -> dict:
    """i: one client exits (os._exit) in the middle of a streamed call, one is SIGKILLed."""
    p = start_client(client(cert, "killed", port, "exit"))
    wait_ready(p)
    p.wait(timeout=30)
    q = start_client(client(cert, "killed", port, "wait"))
    wait_ready(q)
    os.kill(q.pid, signal.SIGKILL)
    q.wait(timeout=30)
    return {"exit_pid": p.pid, "kill_pid": q.pid}


def pid_reuse(cert: Path, port: int, work: Path) -> dict:
    """j: a process makes a call and exits; another one, given the same pid (ns_last_pid), makes
    the next turn of that very conversation. Two processes, two conversations."""
    first_messages = [{"role": "user", "content": "pid reuse: first process"}]
    first = run_client(client(cert, "chat", port, json.dumps(first_messages)))
    reply = chat_text(base64.b64decode(result(first)["call"]["body"]))
    messages = [*first_messages, {"role": "assistant", "content": reply},
                {"role": "user", "content": "pid reuse: second process, same history"}]
    body = work / "reuse.json"
    body.write_text(json.dumps({"model": "gpt-4o-mini", "messages": messages}))
    go = work / "go-reuse"
    script = (f"while [ ! -e {go} ]; do sleep 0.01; done; exec {CURL} -sS --cacert {cert} "
              f"-H 'content-type: application/json' -H 'accept-encoding: identity' "
              f"--data-binary @{body} https://localhost:{port}/v1/chat/completions")
    for attempt in range(50):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(first.pid - 1))
        p = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.pid == first.pid:
            go.touch()
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            return {"pid": first.pid, "attempts": attempt + 1, "first_reply": reply,
                    "second_reply": chat_text(out)}
        p.kill()
        p.wait()
    return {"pid": None, "first_pid": first.pid}


# -- what every case shares --------------------------------------------------------------------

def lines_of(run, pid: int) -> list[dict]:
    return sorted((x for x in run["lines"] if x["pid"] == pid), key=lambda x: x["ts_start"])


def views_of(run, pid: int) -> list:
    return sorted((v for v in run["replay"]["views"] if v.exchange.pid == pid),
                  key=lambda v: v.exchange.timing.ts_start)


def notices_of(run, pid: int) -> list[str]:
    return [e.text for e in run["replay"]["protocol"] if type(e) is pe.ProtocolNotice and e.pid == pid]


def survived(run, pid: int | None = None) -> None:
    """The monitor kept running and exited 0 on SIGINT, with no traceback and nothing lost; for
    this client's connections and calls, its parsers met no internal error."""
    assert run.get("monitor_alive"), run["stderr"][-3000:]
    assert run["rc"] == 0, run["stderr"][-3000:]
    assert "Traceback" not in run["stderr"], run["stderr"][-3000:]
    assert "lost: ring buffer 0 records (0 bytes), read failures 0 (0 bytes), stash failures 0" in run["stderr"]
    if pid is not None:
        assert not [n for n in notices_of(run, pid) if "internal error" in n]
        assert not [x for x in lines_of(run, pid) if "internal error" in (x["problem"] or "")]


@pytest.mark.bpf
def test_monitor_survived_all_of_it(run):
    """Over the whole session (which may include other tests' traffic on this host): exit 0,
    no traceback or internal error on stderr, every loss counter 0, no parser internal error."""
    survived(run)
    assert "internal error" not in run["stderr"], run["stderr"][-3000:]
    counters = run["replay"]["info"].counters
    for key in ("ringbuf_fail", "read_fail", "stash_fail", "truncated_calls", "internal_errors"):
        assert counters.get(key, 0) == 0, counters
    assert run["replay"]["info"].complete
    assert run["replay"]["pipeline"].internal_errors == 0
    assert not [e.text for e in run["replay"]["protocol"]
                if type(e) is pe.ProtocolNotice and "internal error" in e.text]
    print(f"\ncase times (s): {run['times']}")


# -- the cases -------------------------------------------------------------------------------

@pytest.mark.bpf
def test_a_random_bytes_both_ways(run):
    r = run["a"]
    survived(run, r["pid"])
    assert r["garbage_sent"] == 16000 and r["garbage_received"] == 15000
    seen = lines_of(run, r["pid"])
    # one line: the valid call on the new connection; nothing made up of the random bytes
    assert len(seen) == 1, [(x["path"], x["problem"]) for x in seen]
    (x,) = seen
    assert (x["path"], x["status"], x["complete"], x["api"]) == ("/v1/chat/completions", 200, True, "openai.chat")
    assert x["response"]["text"] == chat_text(base64.b64decode(r["call"]["body"]))
    notices = notices_of(run, r["pid"])
    assert any("bytes that were not recognised as HTTP" in n for n in notices), notices
    detected = [e for e in run["replay"]["protocol"] if type(e) is pe.ConnectionDetected and e.pid == r["pid"]]
    assert len(detected) == 1 and detected[0].protocol == "http/1.1", detected


@pytest.mark.bpf
def test_b_http2_preface_then_garbage_frames(run):
    r = run["b"]
    survived(run, r["pid"])
    assert r["call"]["http_version"] == "HTTP/2"
    notices = notices_of(run, r["pid"])
    # each side's first bad frame (a length over what the peer allows) is said at once, then the
    # rest (DATA and HEADERS on stream 0, broken HPACK, a 1-byte RST_STREAM, ...) as it comes
    for side in ("send", "recv"):
        assert f"{side}: frame of 1048576 bytes, over the 16384 the peer allows; looking for the next frame" \
            in notices, notices
        assert any(n.startswith(f"{side}: ") and "not whole HTTP/2 frames" in n for n in notices), notices
    assert any("headers could not be decoded" in n for n in notices), notices
    good = [x for x in lines_of(run, r["pid"]) if x["http_version"] == "2" and x["complete"]]
    assert len(good) == 1, [(x["path"], x["problem"]) for x in lines_of(run, r["pid"])]
    (x,) = good
    assert (x["path"], x["status"], x["api"]) == ("/v1/chat/completions", 200, "openai.chat")
    assert x["response"]["text"] == chat_text(base64.b64decode(r["call"]["body"]))
    assert x["request"]["messages"] == [{"role": "user", "text": "after h2 junk"}]


@pytest.mark.bpf
def test_c_invalid_json_bodies_on_an_llm_endpoint(run):
    r = run["c"]
    survived(run, r["pid"])
    bad_req, bad_resp = r["calls"]
    seen = lines_of(run, r["pid"])
    assert [x["path"] for x in seen] == [bad_req["path"], bad_resp["path"]], seen
    # the request that is not JSON: the exchange says so, and keeps the raw body
    assert "request body is not valid JSON" in (seen[0]["problem"] or ""), seen[0]
    # the reply that is not JSON: an LLM call all the same, saying what is wrong
    x = seen[1]
    assert (x["api"], x["status"], x["model"]) == ("openai.chat", 200, "gpt-4o-mini"), x
    assert "response body is not valid JSON" in (x["problem"] or ""), x
    assert x["request"]["messages"] == [{"role": "user", "text": "answer with broken JSON"}]
    views = views_of(run, r["pid"])
    assert views[0].exchange.request_body == base64.b64decode(bad_req["request"])
    assert views[0].exchange.response_body == base64.b64decode(bad_req["body"])
    assert views[1].exchange.response_body == base64.b64decode(bad_resp["body"])


@pytest.mark.bpf
def test_c_invalid_json_request_is_still_shown_as_an_llm_call(run):
    x = lines_of(run, run["c"]["pid"])[0]
    assert x["api"] == "openai.chat" and x["provider"] == "openai-compatible", x


@pytest.mark.bpf
def test_d_non_utf8_in_sse_text(run):
    r = run["d"]
    survived(run, r["pid"])
    seen = lines_of(run, r["pid"])
    assert len(seen) == 3, [(x["path"], x["problem"]) for x in seen]
    x = seen[1]  # the stream: good, then invalid UTF-8, then good again
    assert x["complete"] and x["stream"] is True, x
    assert x["response"]["text"] == "good bad\ufffd\ufffd end", x["response"]
    views = views_of(run, r["pid"])
    assert b"bad\xff\xfe" in views[1].exchange.response_body  # the raw bytes are kept as they came


@pytest.mark.bpf
def test_d_non_utf8_in_whole_json_bodies(run):
    seen = lines_of(run, run["d"]["pid"])
    assert seen[0]["response"]["text"] == "caf\ufffd ok", seen[0]
    assert seen[2]["request"]["messages"] == [{"role": "user", "text": "na\ufffdve \ufffd request"}], seen[2]


@pytest.mark.bpf
def test_e_giant_headers_and_hpack_abuse(run):
    r = run["e"]
    survived(run, r["pid"])
    assert sorted(map(int, r["h2_responses"])) == [1, 3, 5, 7, 9, 11, 13]  # the server answered all
    seen = lines_of(run, r["pid"])
    notices = notices_of(run, r["pid"])
    # HTTP/1.1: 1 MB of request headers is over the 256 KB head limit: the start line and the
    # headers that fit are kept, the rest passed over and said so; the call is read all the same,
    # and so is the next one on the same connection
    assert any("request head over 262144 bytes" in n and "past the limit not kept" in n for n in notices), notices
    h1 = {x["request"]["messages"][0]["text"]: x for x in seen
          if x["http_version"] == "1.1" and x["request"] and x["request"]["messages"]}
    big = h1["one megabyte of headers"]
    assert big["status"] == 200 and big["complete"] is False, big
    assert "bytes of headers over the 262144-byte limit not kept" in big["problem"], big["problem"]
    assert big["response"]["text"] == "ok"
    assert h1["small headers after big ones"]["complete"], h1
    # HTTP/2: an index past the table and a size update to 2^31 are undecodable blocks, said so
    assert any("stream 3: headers could not be decoded (invalid table index 5000)" in n for n in notices), notices
    assert any("stream 5: headers could not be decoded (table size over the maximum)" in n for n in notices), notices
    # a 1.5 MB header block is over the 1 MiB limit: dropped, said so, on that stream's exchange too
    assert any("stream 11: header block over 1048576 bytes dropped" in n for n in notices), notices
    dropped = [x for x in seen if "header block over 1048576 bytes dropped" in (x["problem"] or "")]
    assert len(dropped) == 1 and dropped[0]["status"] == 200, [(x["path"], x["problem"]) for x in seen]
    h2 = {x["request"]["messages"][0]["text"]: x for x in seen
          if x["http_version"] == "2" and x["request"] and x["request"]["messages"]}
    for text in ("h2 good first", "h2 good after abuse", "h2 600 KB header block", "h2 good at the end"):
        assert text in h2 and h2[text]["complete"] and h2[text]["status"] == 200, (text, sorted(h2))
    giant = dict(h2["h2 600 KB header block"]["request_headers"])
    assert giant.get("x-giant") == "g" * 600_000
    # memory: megabytes of headers cost megabytes (peak over cases a to j)
    assert run["peak_rss_cases_kb"] < RSS_LIMIT_KB, run["peak_rss_cases_kb"]


@pytest.mark.bpf
def test_f_gzip_bomb_stops_at_the_decoder_cap(run):
    r = run["f"]
    survived(run, r["pid"])
    assert r["status"] == 200 and 900_000 < r["wire_bytes"] < 1_200_000, r
    (x,) = lines_of(run, r["pid"])
    assert x["api"] == "openai.chat" and x["complete"] is False, x
    assert f"decoded body capped at {DECODE_CAP} bytes" in x["problem"], x["problem"]
    (v,) = views_of(run, r["pid"])
    assert len(v.exchange.response_body) <= KEEP_BODY and v.exchange.body_truncated
    peak = run["peak_rss_bomb_kb"]
    print(f"\nmonitor RSS: {run['rss_start_kb'] // 1024} MB after start, {run['rss_before_bomb_kb'] // 1024} MB "
          f"before the bomb, peak {peak // 1024} MB while it was decoded")
    # bounded by the decoder's cap (held while the body is parsed), not by what the bomb inflates to
    grew = peak - run["rss_before_bomb_kb"]
    assert grew < RSS_GROWTH_LIMIT_KB, f"monitor RSS grew by {grew // 1024} MB"
    assert peak < RSS_LIMIT_KB, f"monitor peak RSS {peak // 1024} MB"


@pytest.mark.bpf
def test_g_100_mb_request_body(run):
    r = run["g"]
    survived(run, r["pid"])
    assert r["writes"] > 90  # sent as many SSL writes
    (x,) = lines_of(run, r["pid"])
    assert x["status"] == 200 and x["complete"], x
    # too big to parse: the exchange says how big and that it was not parsed
    assert f"request body of {BIG_BODY} bytes not parsed (over the {64 << 20}-byte limit)" in x["problem"], \
        x["problem"]
    ends = [e for e in run["replay"]["protocol"]
            if type(e) is pe.MessageEnd and e.pid == r["pid"] and e.side == pe.REQUEST]
    assert [(e.wire_bytes, e.body_bytes, e.complete) for e in ends] == [(BIG_BODY, BIG_BODY, True)]
    (v,) = views_of(run, r["pid"])
    assert len(v.exchange.request_body) == KEEP_BODY and v.exchange.body_truncated
    assert v.exchange.request_body.startswith(b'{"model": "gpt-4o-mini"')
    peak = run["peak_rss_big_kb"]
    print(f"\nmonitor peak RSS while the 100 MB body went by: {peak // 1024} MB")
    grew = peak - run["rss_before_big_kb"]
    assert grew < RSS_GROWTH_LIMIT_KB, f"monitor RSS grew by {grew // 1024} MB"
    assert peak < RSS_LIMIT_KB, f"monitor peak RSS {peak // 1024} MB"


@pytest.mark.bpf
def test_g_exchange_states_the_body_size_and_what_was_kept(run):
    (x,) = lines_of(run, run["g"]["pid"])
    assert str(BIG_BODY) in x["problem"] and str(KEEP_BODY) in x["problem"], x["problem"]


@pytest.mark.bpf
def test_h_sse_cut_mid_event(run):
    r = run["h"]
    survived(run, r["pid"])
    seen = lines_of(run, r["pid"])
    assert len(seen) == 2, [(x["path"], x["problem"]) for x in seen]
    openai, anthropic = seen
    # what the client got: three whole events and half of the fourth
    assert openai["api"] == "openai.chat" and openai["http_version"] == "1.1"
    assert openai["response"]["text"] == "Hello from", openai["response"]
    assert openai["complete"] is False and openai["problem"], openai
    assert anthropic["api"] == "anthropic.messages" and anthropic["http_version"] == "2"
    assert anthropic["response"]["text"] == "Hello wor", anthropic["response"]
    assert anthropic["complete"] is False and anthropic["problem"], anthropic
    assert b"Hello" in base64.b64decode(r["h2_data"]) and b"wor" in base64.b64decode(r["h2_data"])


@pytest.mark.bpf
def test_i_client_dies_mid_call(run):
    r = run["i"]
    survived(run)
    for pid in (r["exit_pid"], r["kill_pid"]):
        (x,) = lines_of(run, pid)
        assert x["complete"] is False and x["api"] == "openai.chat", x
        assert "response: connection ended (process exit) before the body ended" in x["problem"], x["problem"]
        assert x["response"]["text"].startswith("Hello from"), x["response"]


@pytest.mark.bpf
def test_j_reused_pid_is_a_new_process(run):
    r = run["j"]
    survived(run)
    if r["pid"] is None:
        pytest.skip(f"could not get pid {r['first_pid']} again in 50 tries (a busy host)")
    first, second = lines_of(run, r["pid"])
    assert first["response"]["text"] == r["first_reply"] and second["response"]["text"] == r["second_reply"]
    assert first["comm"].startswith("python") and second["comm"] == "curl", (first["comm"], second["comm"])
    # the second call repeats the first one's history and reply: from the same process it would
    # continue that conversation; from another process it must not
    assert first["conversation_id"] != second["conversation_id"]
    procs = [p for p in run["replay"]["store"].processes if p.pid == r["pid"]]
    assert len(procs) == 2 and procs[0].start_time != procs[1].start_time, procs
    by_comm = {p.comm.startswith("python"): p for p in procs}
    assert by_comm[True].exited and "chat" in by_comm[True].cmdline
    assert by_comm[False].comm == "curl" and by_comm[False].cmdline[0].endswith("curl")
    assert by_comm[True].conversation_ids == (first["conversation_id"],)
    assert by_comm[False].conversation_ids == (second["conversation_id"],)


@pytest.mark.bpf
def test_k_monitor_started_in_the_middle_of_connections(run):
    r = run["k"]
    survived(run, r["pid"])
    seen = lines_of(run, r["pid"])
    by_version = {"1.1": [x for x in seen if x["http_version"] == "1.1"],
                  "2": [x for x in seen if x["http_version"] == "2"]}
    # HTTP/1.1: the calls after the monitor started, whole
    h1 = by_version["1.1"]
    assert len(h1) == 2, [(x["path"], x["problem"]) for x in h1]
    for x, call in zip(h1, r["after_h1"], strict=True):
        assert x["complete"] and x["api"] == "openai.chat", x
        assert x["response"]["text"] == chat_text(base64.b64decode(call["body"]))
    assert h1[1]["stream"] is True
    # HTTP/2: the HPACK table predates the monitor; each call is one exchange all the same, its
    # request and streamed reply read, what could not be decoded marked unknown
    h2 = by_version["2"]
    assert len(h2) == 2, [(x["path"], x["problem"]) for x in h2]
    for x, call in zip(h2, r["after_h2"], strict=True):
        assert x["api"] == "openai.chat", x
        sent = json.loads(base64.b64decode(call["request"]))
        assert x["request"]["messages"] == [{"role": "user", "text": sent["messages"][0]["content"]}], x
        assert x["response"]["text"] == chat_text(base64.b64decode(call["body"])), x
        assert x["status"] == 200 and "headers unknown" in x["problem"], x
        assert "could not be decoded" not in x["problem"], x["problem"]
    heads = [e for e in run["replay"]["protocol"] if type(e) is pe.RequestHead and e.pid == r["pid"]
             and e.http_version == "2"]
    assert [h.stream for h in heads] == [3, 5] and not any(h.headers_known for h in heads)


# -- the fixes, at the pipeline level (no root needed) -----------------------------------------

def _chunks(pid: int, conn: int, direction: str, data: bytes, ts: int, size: int = 1 << 16) -> list:
    from llmspy_tui.capture.events import ChunkEvent

    return [ChunkEvent(ts + i, pid, pid, conn, direction, i, i * size, len(data), data[i * size : (i + 1) * size])
            for i in range((len(data) + size - 1) // size)]


def _h1_call(pid: int, ts: int, messages: list, reply: str, conn: int = 0x5000) -> list:
    body = json.dumps({"model": "gpt-4o-mini", "messages": messages}).encode()
    req = b"POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body), body)
    out = json.dumps({"id": "c", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]}).encode()
    resp = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(out), out)
    return _chunks(pid, conn, "send", req, ts) + _chunks(pid, conn, "recv", resp, ts + 100)


def test_pid_reused_within_one_batch_is_two_processes():
    """j, whatever the batching: the exit of the first process and the start of the second in one
    batch still make two processes, each with its own conversation."""
    from llmspy_tui.capture.events import ProcessExit, ProcessInfo, ProcessSeen

    first = [{"role": "user", "content": "hello"}]
    second = [*first, {"role": "assistant", "content": "hi there"}, {"role": "user", "content": "again"}]
    batch = [ProcessSeen(1, ProcessInfo(4242, 100, "agent", "/usr/bin/agent", ("agent", "--one"), 1)),
             *_h1_call(4242, 10, first, "hi there"), ProcessExit(1000, 4242),
             ProcessSeen(1001, ProcessInfo(4242, 200, "curl", "/usr/bin/curl", ("curl", "-d@x"), 1)),
             *_h1_call(4242, 2000, second, "again?"), ProcessExit(3000, 4242)]
    for batches in ([batch], [[e] for e in batch]):
        pipe = Pipeline(Store(), live=False)
        views = [v for b in batches for v in pipe.feed(b)] + pipe.finish()
        assert [(v.comm, v.exchange.complete) for v in views] == [("agent", True), ("curl", True)]
        assert views[0].conversation_id != views[1].conversation_id
        procs = pipe.store.snapshot().processes
        assert sorted((p.pid, p.comm, p.cmdline, p.exited, p.conversation_ids) for p in procs) == [
            (4242, "agent", ("agent", "--one"), True, (views[0].conversation_id,)),
            (4242, "curl", ("curl", "-d@x"), True, (views[1].conversation_id,))]
    # the same process making the same second call does continue the conversation
    pipe = Pipeline(Store(), live=False)
    views = pipe.feed([batch[0], *_h1_call(4242, 10, first, "hi there"),
                       *_h1_call(4242, 2000, second, "again?", conn=0x6000)]) + pipe.finish()
    assert len(views) == 2 and views[0].conversation_id == views[1].conversation_id


@pytest.mark.parametrize("size", [7, 4096, 65536, 1 << 21])
def test_http1_head_over_the_limit_is_kept_in_part_whatever_the_chunking(size):
    """e: a 1 MB request head keeps its start line and the headers that fit; the call is read."""
    from llmspy_tui.protocol import ProtocolTracker

    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    filler = b"".join(b"x-filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(1024))
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-length: %d\r\n" % len(body)
           + filler + b"\r\n" + body)
    req += b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    tracker = ProtocolTracker()
    events = []
    for ev in _chunks(1, 1, "send", req, 1, size):
        events += tracker.feed(ev)
    events += tracker.finish(10**9)
    heads = [e for e in events if type(e) is pe.RequestHead]
    ends = [e for e in events if type(e) is pe.MessageEnd]
    kept = req[:262144]
    kept = kept[: kept.rfind(b"\n") + 1]  # the whole lines within the limit
    assert [(h.target, len(h.headers)) for h in heads] == [("/v1/chat/completions", kept.count(b"\n") - 1),
                                                           ("/v1/chat/completions", 2)]
    assert [(e.body_bytes, e.complete) for e in ends] == [(len(body), False), (len(body), True)]
    dropped = len(filler) - sum(len(b"%s: %s\r\n" % (k.encode(), v.encode())) for k, v in heads[0].headers[2:])
    assert ends[0].problem == f"{dropped} bytes of headers over the 262144-byte limit not kept"
    assert tracker.internal_errors == 0


def test_http2_joined_mid_connection_reads_each_request_before_its_response():
    """k: joined after a call on an HTTP/2 connection, the next request (HEADERS and DATA, two
    frames) is found before its response, so the call is one exchange, not two halves."""
    import h2.config
    import h2.connection

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    client.initiate_connection()
    server.initiate_connection()

    def call(sid: int, text: str) -> tuple[bytes, bytes]:
        client.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "api.openai.com"),
                                  (":path", "/v1/chat/completions"), ("content-type", "application/json")])
        client.send_data(sid, json.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": text}]}).encode(), end_stream=True)
        sent = client.data_to_send()
        server.receive_data(sent)
        server.send_headers(sid, [(":status", "200"), ("content-type", "text/event-stream")])
        for w in ("Hel", "lo"):
            server.send_data(sid, b'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, '
                                  b'"delta": {"content": "%s"}}]}\n\n' % w.encode())
        server.send_data(sid, b"data: [DONE]\n\n", end_stream=True)
        got = server.data_to_send()
        client.receive_data(got)
        return sent, got

    server.receive_data(client.data_to_send())  # preface and SETTINGS: before the monitor
    client.receive_data(server.data_to_send())
    call(1, "before the monitor")
    sent, got = call(3, "after the monitor joined")
    pipe = Pipeline(Store(), live=False)
    views = pipe.feed(_chunks(7, 9, "send", sent, 10) + _chunks(7, 9, "recv", got, 20, 40)) + pipe.finish()
    assert len(views) == 1, [(v.exchange.path, v.exchange.problem) for v in views]
    x = views[0].exchange
    assert x.api == "openai.chat" and x.request.messages[0].text == "after the monitor joined"
    assert x.response.text == "Hello" and x.status == 200 and x.path == "?"
    assert "headers unknown" in x.problem and pipe.internal_errors == 0
