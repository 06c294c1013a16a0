"""Real clients against the loopback TLS server, with the server's account of each exchange.

Shared by the live protocol test (as root, with the monitor running) and by record_golden.py,
which keeps the captures as golden streams for tests that need no root.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

from harness import Monitor, TlsServer, run_client

CLIENTS = Path(__file__).resolve().parent / "clients"
NAMES = ("python-keepalive", "httpx-h2", "curl-h2", "node-fetch")


def command(name: str, cert: Path, port: int, work: Path) -> tuple[list[str], dict]:
    base = f"https://localhost:{port}"
    if name == "python-keepalive":
        return [sys.executable, str(CLIENTS / "py_keepalive.py"), str(cert), str(port)], {}
    if name == "httpx-h2":
        return [sys.executable, str(CLIENTS / "httpx_h2.py"), str(cert), str(port)], {}
    if name == "curl-h2":
        stream = work / "curl-stream.json"
        stream.write_text(json.dumps({"model": "gpt-4o", "stream": True, "messages": [
            {"role": "user", "content": "curl over h2"}]}))
        plain = work / "curl-plain.json"
        plain.write_text(json.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "curl, compressed please"}]}))
        common = ["--http2", "-sS", "--cacert", str(cert), "-o", "/dev/null",
                  "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test-curl-0123"]
        return [shutil.which("curl"), *common, "--data-binary", f"@{stream}", f"{base}/v1/chat/completions",
                "--next", *common, "--compressed", "--data-binary", f"@{plain}",
                f"{base}/v1/chat/completions"], {}
    if name == "node-fetch":
        return [shutil.which("node"), str(CLIENTS / "node_pair.mjs"), base], {"NODE_EXTRA_CA_CERTS": str(cert)}
    raise ValueError(name)


def run_scenario(name: str, server: TlsServer, cert: Path, work: Path) -> dict:
    """Run one client; return its pid and the server's exchanges on its connections."""
    before = len(list(server.log_dir.glob("conn-*.done")))
    cmd, env = command(name, cert, server.port, work)
    cp = run_client(cmd, env=env)
    server.connections(wait_for=before + 1)
    exchanges = []
    for done in sorted(server.log_dir.glob("conn-*.done"), key=lambda p: int(p.stem.split("-")[1])):
        if int(done.stem.split("-")[1]) <= before:
            continue
        exchanges += json.loads(done.with_suffix(".http.json").read_text())
    return {"name": name, "pid": cp.pid, "exchanges": exchanges, "stdout": cp.stdout.decode()}


def exchanges_seen(events: list, pid: int) -> list[dict]:
    """What the protocol layer reconstructed for one process, per exchange, in the truth's terms."""
    by_key: dict = {}
    order = []
    for e in events:
        if getattr(e, "pid", None) != pid:
            continue
        name = type(e).__name__
        if name not in ("RequestHead", "ResponseHead", "BodyData", "SseEvent", "MessageEnd"):
            continue
        key = (e.conn, e.stream)
        x = by_key.get(key)
        if x is None:
            x = by_key[key] = {"conn": e.conn, "stream": e.stream, "method": None, "path": None,
                               "request_body": b"", "status": None, "response_body": b"",
                               "sse_events": 0, "content_encoding": "", "ends": {}, "http_version": None}
            order.append(key)
        if name == "RequestHead":
            x["method"], x["path"], x["http_version"] = e.method, e.target, e.http_version
        elif name == "ResponseHead" and not e.interim:
            x["status"] = e.status
            x["content_encoding"] = dict(e.headers).get("content-encoding", "")
        elif name == "BodyData":
            x[f"{e.side}_body"] += e.data
        elif name == "SseEvent":
            x["sse_events"] += 1
        elif name == "MessageEnd":
            x["ends"][e.side] = e
    return [by_key[k] for k in order]


def compare(truth: list[dict], seen: list[dict]) -> list[str]:
    """Differences between the server's account and the reconstruction; empty when they agree."""
    problems = []
    if len(seen) != len(truth):
        problems.append(f"{len(seen)} exchanges reconstructed, server saw {len(truth)}")
    unmatched = list(seen)
    for t in truth:
        req_body = base64.b64decode(t["request_body"])
        match = next((s for s in unmatched if s["method"] == t["method"] and s["path"] == t["path"]
                      and s["request_body"] == req_body), None)
        if match is None:
            problems.append(f"no reconstruction of {t['method']} {t['path']} ({len(req_body)} bytes)")
            continue
        unmatched.remove(match)
        want = base64.b64decode(t["response_body"])
        what = f"{t['method']} {t['path']}"
        if match["status"] != t["status"]:
            problems.append(f"{what}: status {match['status']} != {t['status']}")
        if match["response_body"] != want:
            problems.append(f"{what}: response body {len(match['response_body'])} bytes != {len(want)}")
        if match["sse_events"] != t["sse_events"]:
            problems.append(f"{what}: {match['sse_events']} SSE events != {t['sse_events']}")
        if match["content_encoding"] != t["content_encoding"]:
            problems.append(f"{what}: content-encoding {match['content_encoding']!r} != {t['content_encoding']!r}")
        for side in ("request", "response"):
            end = match["ends"].get(side)
            if end is None or not end.complete:
                problems.append(f"{what}: {side} not complete ({end.problem if end else 'no end'})")
    return problems


def run_all(cert: Path, key: Path, work: Path, sse_pause: float = 0.0) -> tuple[dict, Monitor]:
    """Every scenario in turn under one monitor session (recording to work/capture.llmspy)."""
    server = TlsServer(cert, key, work / "server", sse_pause=sse_pause)
    mon = Monitor(work)
    results = {}
    try:
        for name in NAMES:
            results[name] = run_scenario(name, server, cert, work)
    finally:
        mon.stop()
        server.stop()
    return results, mon
