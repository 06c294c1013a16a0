"""Record a large, mixed capture from real clients, for bench/pipeline.py.

    .venv/bin/python bench/record_mix.py [--exchanges 10400] [--concurrency 6] [--out FILE] [--keep]
                                         [--monitor-tree DIR]

Needs root (it runs the live monitor). Writes bench/.cache/mix-10k.llmspy by default.

Why a recording of real clients and not synthetic bytes: the pipeline benchmark should see what
the monitor sees in practice: the official SDKs' request framing (httpx over HTTP/1.1 and
HTTP/2, with gzip-compressed replies when they ask for them), curl's HTTP/2, Node's fetch, the
way reads and writes are cut into SSL calls, interleaved HTTP/2 streams, concurrent
connections. So the pieces record_demo.py uses to make the bundled demo are used here at scale,
imported from tests/support rather than copied:

- the loopback TLS server (tls_server.py via harness.TlsServer) answering as api.openai.com,
  api.anthropic.com and generativelanguage.googleapis.com, in the providers' wire formats
  (fake_llm.py), with a script of replies (fake_llm's `match` rules) so reply sizes and tool
  calls are chosen here; no pacing and no latency, so 10k calls take minutes, not hours;
- the real monitor (`python -m llmspy_tui --headless --raw --record`, harness.Monitor);
- the real clients in tests/support/clients: the openai SDK (HTTP/1.1, some clients with
  conversations in parallel threads, and HTTP/2), the anthropic SDK (HTTP/2 and HTTP/1.1, some
  conversations with extended thinking), curl --http2 for Gemini (SSE and not; some curl
  processes with up to 6 calls multiplexed on their connection), and Node's fetch for the
  OpenAI Responses API (streamed or not, chained with previous_response_id).

The work is agent-like: a system prompt of 4-7 KB (the demo's, plus project notes), tool
definitions, and tool-call loops whose outputs (files, command output, JSON) make the
conversation grow to tens of KB of prompt; streamed replies of tens to a few hundred events;
non-streamed replies of 1-5 KB. Everything is generated from a fixed seed, so a re-recording
carries the same calls (the timing of course differs).

Only the clients are captured: every client is started by one launcher process (this file run
with --launcher under the name mix-launch), started before the monitor, and the monitor is
given the launcher's and the clients' process names (-c). The kernel then traces the launcher's
forked children from their first instruction (no race with the monitor noticing an exec), and
the server's side of every call is never captured, which halves the load on the recorder. The
recording is then reduced to the clients' pids, as record_demo.py does.

The recording is judged against ground truth, not by the parsers it is meant to benchmark
(which may be mid-change): it is refused, and nothing written, unless every client succeeded
and got a 200 for every call, the server answered as many requests as the clients made, every
client connection put back together from the recorded chunks equals byte for byte what the
server received and sent on one of its connections (and the other way round), and the
capture's loss counters are all 0. The recording carries what a benchmark needs to check
itself: the number of exchanges and the loss counters (the "mix" entry of its end frame,
RecordingReader.info.footer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SUPPORT = REPO / "tests" / "support"
CLIENTS = SUPPORT / "clients"
DEFAULT_OUT = BENCH / ".cache" / "mix-10k.llmspy"

OPENAI, ANTHROPIC, GOOGLE = "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"
OPENAI_KEY = "sk-proj-bench-not-a-real-key-0000000000"
ANTHROPIC_KEY = "sk-ant-bench-not-a-real-key"
GOOGLE_KEY = "AIzaSyBENCH-not-a-real-key-00000000000"

# (kind, process name, share of the exchanges, exchanges per client process)
KINDS = [
    ("openai-h1", "mix-ops-agent", 0.33, 360),
    ("openai-h2", "mix-swarm", 0.14, 360),
    ("anthropic-h2", "mix-code-agent", 0.28, 330),
    ("anthropic-h1", "mix-review", 0.15, 330),
    ("gemini-curl", "mix-curl", 0.05, 260),
    ("responses-node", "mix-node", 0.05, 260),
]
LAUNCHER = "mix-launch"


# -- the launcher (a separate process; stdlib only) -------------------------------------------

def launcher_main(spec_path: str) -> int:
    """Run the jobs of a spec file, `concurrency` at a time, once the go file exists.

    It exists so that one process, traced from before the first client starts, is the parent
    of every client: the kernel filter then covers each client from its fork. It writes
    {name, pid, rc, seconds} per job to the spec's results file.
    """
    spec = json.loads(Path(spec_path).read_text())
    go, jobs = Path(spec["go"]), list(spec["jobs"])
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.02)
    running: dict[int, tuple] = {}
    results = []
    while jobs or running:
        while jobs and len(running) < spec["concurrency"]:
            job = jobs.pop(0)
            out, err = open(job["stdout"], "wb"), open(job["stderr"], "wb")  # noqa: SIM115 (closed when it ends)
            p = subprocess.Popen(job["argv"], stdout=out, stderr=err, env={**os.environ, **job["env"]})
            running[p.pid] = (p, job, time.monotonic(), out, err)
        time.sleep(0.02)
        for pid, (p, job, t0, out, err) in list(running.items()):
            if p.poll() is None:
                continue
            out.close()
            err.close()
            results.append({"name": job["name"], "kind": job["kind"], "pid": pid, "rc": p.returncode,
                            "seconds": round(time.monotonic() - t0, 2), "stdout": job["stdout"],
                            "stderr": job["stderr"], "expected": job["expected"]})
            del running[pid]
    Path(spec["results"]).write_text(json.dumps(results))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--launcher"]:
    sys.exit(launcher_main(sys.argv[2]))

sys.path[:0] = [str(SUPPORT), str(REPO)]

import harness  # noqa: E402
from harness import Monitor, TlsServer, make_cert  # noqa: E402
from record_demo import (  # noqa: E402  (the demo's prompts, tools and tool outputs)
    CI_LOG,
    CODE_SYSTEM,
    DF_BEFORE,
    DOCKER_DF,
    FIX_PATCH,
    OPS_SYSTEM,
    PRUNED,
    PYTEST_14,
    REFUNDS_PY,
    TEST_PATCH,
    TOOLS,
)

from llmspy_tui.capture.events import ChunkEvent, ConnClosed, Counters, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder, RecordingReader  # noqa: E402

# -- generated content ------------------------------------------------------------------------

EXTRA_TOOLS = [
    {"name": "search_code", "description": "Search the repository with a regular expression (ripgrep "
     "syntax) and return matching lines as path:line: text, at most 200 matches. Use it to find where a "
     "function is defined or called before reading whole files.",
     "parameters": {"type": "object", "properties": {
         "pattern": {"type": "string", "description": "regular expression"},
         "path": {"type": "string", "description": "directory or file to search, default the root"},
         "glob": {"type": "string", "description": "only files matching this glob, e.g. *.py"}},
         "required": ["pattern"]}},
    {"name": "list_directory", "description": "List a directory of the repository: names, sizes and "
     "modification times, directories first. Hidden files are listed too.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                                                     "depth": {"type": "integer", "minimum": 1, "maximum": 3}},
                    "required": ["path"]}},
    {"name": "kubectl", "description": "Run a read-only kubectl command (get, describe, logs, top, events) "
     "against a cluster and return its output. Mutating verbs are refused: propose them to the engineer.",
     "parameters": {"type": "object", "properties": {
         "context": {"type": "string", "enum": ["prod-eu", "prod-us", "staging"]},
         "namespace": {"type": "string"}, "args": {"type": "array", "items": {"type": "string"}}},
         "required": ["context", "args"]}},
    {"name": "query_metrics", "description": "Run a PromQL query over a time range and return the series as "
     "JSON (at most 500 points per series). Use rate() for counters and a step of at least 30s.",
     "parameters": {"type": "object", "properties": {
         "query": {"type": "string"}, "start": {"type": "string", "description": "RFC 3339 or relative, e.g. -1h"},
         "end": {"type": "string"}, "step": {"type": "string"}}, "required": ["query", "start"]}},
    {"name": "http_get", "description": "Fetch a URL from the internal network (service health endpoints, "
     "the service catalogue, runbooks) and return the status and the body, cut at 64 KB.",
     "parameters": {"type": "object", "properties": {"url": {"type": "string"},
                                                     "headers": {"type": "object"}}, "required": ["url"]}},
    {"name": "git", "description": "Run a read-only git command in the repository (log, show, diff, blame, "
     "status) and return its output.",
     "parameters": {"type": "object", "properties": {"args": {"type": "array", "items": {"type": "string"}}},
                    "required": ["args"]}},
    {"name": "write_file", "description": "Create or overwrite a text file in the repository. Prefer "
     "apply_patch for changes to existing files; use this for new files only.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                    "required": ["path", "content"]}},
    {"name": "create_ticket", "description": "Open a ticket in the team's tracker for follow-up work, with a "
     "title, a description in Markdown, labels and a priority. Returns the ticket's key and URL.",
     "parameters": {"type": "object", "properties": {
         "title": {"type": "string"}, "description": {"type": "string"},
         "labels": {"type": "array", "items": {"type": "string"}},
         "priority": {"type": "string", "enum": ["P1", "P2", "P3", "P4"]}}, "required": ["title", "description"]}},
]
ALL_TOOLS = TOOLS + EXTRA_TOOLS
TOOL_NAMES = [t["name"] for t in ALL_TOOLS]

PROSE = (OPS_SYSTEM + "\n" + CODE_SYSTEM).replace("\n", " ").split()
CODE_LINES = (REFUNDS_PY + FIX_PATCH + TEST_PATCH).splitlines()
LOG_LINES = (CI_LOG + "\n" + DOCKER_DF + "\n" + DF_BEFORE + "\n" + PRUNED + "\n" + PYTEST_14).splitlines()
SPICE = ["→", "—", "“quoted”", "naïve", "≥", "✓", "½", "°C"]  # non-ASCII, as model output has
MODELS = {
    "openai": ["gpt-4.1", "gpt-4o", "gpt-4o-mini", "gpt-5-mini", "o4-mini"],
    "anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"],
    "gemini": ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"],
    "responses": ["gpt-4.1", "gpt-5", "o4-mini"],
}


class Writer:
    """Text of a given size that reads like an agent session: prose cut from the demo's system
    prompts, code from its files, log lines, JSON. Content matters less than shape (escapes,
    newlines, non-ASCII, sizes), which is what the parsers pay for."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def prose(self, words: int) -> str:
        r, out, n = self.rng, [], 0
        while n < words:
            start = r.randrange(len(PROSE))
            run = PROSE[start : start + r.randint(6, 24)]
            if r.random() < 0.08:
                run.append(r.choice(SPICE))
            if r.random() < 0.05:
                out.append("`" + r.choice(PROSE).strip(".,;:") + "`")
            out.extend(run)
            n += len(run)
            roll = r.random()
            if roll < 0.12:
                out.append("\n\n")
            elif roll < 0.2:
                out.append("\n-")
            elif roll < 0.23:
                code = "\n".join(self._lines(CODE_LINES, r.randint(3, 10)))
                out.append(f"\n\n```python\n{code}\n```\n\n")
        return " ".join(out).replace(" \n", "\n").replace("\n ", "\n")

    def _lines(self, lines: list[str], n: int) -> list[str]:
        start = self.rng.randrange(len(lines))
        return [lines[(start + i) % len(lines)] for i in range(n)]

    def code(self, size: int) -> str:
        out: list[str] = []
        while sum(map(len, out)) < size:
            out.extend(self._lines(CODE_LINES, self.rng.randint(4, 16)))
        return "\n".join(out)[:size]

    def log(self, size: int) -> str:
        r, out, total = self.rng, [], 0
        while total < size:
            if r.random() < 0.5:
                line = r.choice(LOG_LINES)
            else:
                line = (f"2025-11-21T02:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z "
                        f"{r.choice(['INFO', 'INFO', 'WARN', 'ERROR', 'DEBUG'])} {r.choice(['api', 'worker', 'db'])}"
                        f"-{r.randint(1, 9)} " + " ".join(PROSE[(s := r.randrange(len(PROSE))) : s + r.randint(4, 12)]))
            out.append(line)
            total += len(line) + 1
        return "\n".join(out)[:size]

    def blob(self, size: int) -> str:
        """A JSON document as tool output: JSON inside a JSON string, escapes and all."""
        r, rows = self.rng, []
        while len(json.dumps(rows)) < size:
            rows.append({"id": f"{r.choice(['INC', 'OPS', 'BIL'])}-{r.randint(100, 9999)}",
                         "ts": 1763700000 + r.randint(0, 86400), "value": round(r.uniform(0, 500), 3),
                         "labels": {"service": r.choice(["checkout", "catalog", "payments", "search"]),
                                    "cluster": r.choice(["prod-eu", "prod-us"])},
                         "note": " ".join(PROSE[(s := r.randrange(len(PROSE))) : s + r.randint(3, 10)])})
        return json.dumps({"status": "success", "data": rows}, indent=r.choice([None, 2]))

    def tool_output(self, tool: str, size: int) -> str:
        if tool in ("read_file", "write_file"):
            return self.code(size)
        if tool in ("query_metrics", "http_get", "create_ticket"):
            return self.blob(size)
        if tool == "apply_patch":
            module = self.rng.choice(["refunds", "tax", "money"])
            return f"Patch applied: billing/{module}.py ({self.rng.randint(1, 4)} hunks)"
        return self.log(size)

    def tool_arguments(self, tool: str) -> dict:
        r = self.rng
        path = (f"{r.choice(['billing', 'api', 'tests', 'migrations'])}/"
                f"{r.choice(['refunds', 'invoices', 'tax', 'schemas', 'money'])}.py")
        args = {
            "run_shell": lambda: {"host": f"ci-runner-0{r.randint(1, 6)}",
                                  "command": r.choice(["df -h /", "docker system df", "free -m && uptime",
                                                       "journalctl -u docker --since -1h", "systemctl status kubelet"])},
            "read_file": lambda: {"path": path},
            "apply_patch": lambda: {"patch": FIX_PATCH if r.random() < 0.5
                                    else TEST_PATCH + self.code(r.randint(200, 1500))},
            "run_tests": lambda: {"path": path.replace("billing/", "tests/test_")},
            "search_code": lambda: {"pattern": r.choice(["split_refund", r"def \w+_cents", "BillingError"]),
                                    "glob": "*.py"},
            "list_directory": lambda: {"path": path.rsplit("/", 1)[0], "depth": r.randint(1, 3)},
            "kubectl": lambda: {"context": r.choice(["prod-eu", "prod-us"]),
                                "namespace": r.choice(["checkout", "payments"]), "args": ["get", "pods", "-o", "wide"]},
            "query_metrics": lambda: {"query": 'sum(rate(http_requests_total{status=~"5.."}[5m])) by (service)',
                                      "start": "-1h", "step": "60s"},
            "http_get": lambda: {"url": f"http://{r.choice(['checkout', 'catalog'])}.internal/healthz"},
            "git": lambda: {"args": ["log", "--oneline", "-n", str(r.randint(5, 30))]},
            "write_file": lambda: {"path": path.replace(".py", "_new.py"), "content": self.code(r.randint(300, 2000))},
            "create_ticket": lambda: {"title": " ".join(self.prose(8).split()[:8]), "description": self.prose(60),
                                      "labels": ["follow-up"], "priority": "P3"},
        }
        return args[tool]()


def log_uniform(rng: random.Random, lo: float, hi: float) -> int:
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class Script:
    """The server's script of replies (fake_llm rules): pools of text replies (streamed length,
    and 1-5 KB for replies not streamed) and tool calls, each named by a marker like [R0042]
    that a user message or a tool output carries to ask for it."""

    def __init__(self, rng: random.Random) -> None:
        w = Writer(rng)
        self.rules: list[dict] = []
        self.stream_text = [self._add(text=w.prose(log_uniform(rng, 20, 320)),
                                      thinking=w.prose(rng.randint(30, 150))) for _ in range(90)]
        self.full_text = [self._add(text=w.prose(rng.randint(170, 720))) for _ in range(60)]
        self.tool_calls = {name: [self._add(tool={"name": name, "arguments": w.tool_arguments(name)},
                                            text=w.prose(rng.randint(8, 30)), thinking=w.prose(rng.randint(20, 80)))
                                  for _ in range(6)] for name in TOOL_NAMES}

    def _add(self, **rule) -> str:
        marker = f"[R{len(self.rules):04d}]"
        self.rules.append({"match": marker, **rule})
        return marker


# -- plans for the clients --------------------------------------------------------------------

class Planner:
    """Conversations for each kind of client, until a client has its share of exchanges."""

    def __init__(self, rng: random.Random, script: Script) -> None:
        self.rng, self.script, self.w = rng, script, Writer(rng)

    def _system(self) -> str:
        base = self.rng.choice([OPS_SYSTEM, CODE_SYSTEM])
        return base + "\n\n## Project notes\n" + self.w.prose(self.rng.randint(0, 450))

    def _tool_count(self) -> int:
        return self.rng.choices([0, 1, 2, 3, 4, 5, 6], weights=[22, 20, 18, 14, 11, 8, 7])[0]

    def agent_conversation(self, quota: int) -> tuple[dict, int]:
        """One SDK session conversation (openai_sdk.py / anthropic_sdk.py --plan): turns that are
        tool loops, growing until the prompt reaches its cap. Returns (conversation, exchanges)."""
        r, s = self.rng, self.script
        tools = r.sample(TOOL_NAMES, r.randint(3, len(TOOL_NAMES)))
        system = self._system()
        size = len(system) + len(json.dumps([t for t in ALL_TOOLS if t["name"] in tools]))
        cap = r.randint(12_000, 42_000)
        turns, outputs, exchanges = [], [], 0
        while size < cap and exchanges < quota and len(turns) < 10:
            stream = r.random() < 0.65
            n_tools = min(self._tool_count(), quota - exchanges - 1)
            chain = [r.choice(s.tool_calls[r.choice(tools)]) for _ in range(n_tools)]
            chain.append(r.choice(s.stream_text if stream else s.full_text))
            user = self.w.prose(r.randint(10, 90)) + " " + chain[0]
            turns.append({"user": user, "stream": stream})
            size += len(user)
            for marker in chain[1:]:  # a tool output asks for the next reply
                out = self.w.tool_output(r.choice(tools), log_uniform(r, 150, 4000)) + "\n" + marker
                outputs.append(out)
                size += len(out) + 250  # and the assistant's tool call
            size += 1500  # the final reply, about
            exchanges += len(chain)
        return {"system": system, "tools": tools, "tool_outputs": outputs, "turns": turns}, exchanges

    def sdk_plan(self, provider: str, quota: int, parallel: bool) -> tuple[dict, int]:
        convs, total = [], 0
        while total < quota:
            conv, n = self.agent_conversation(quota - total)
            conv["model"] = self.rng.choice(MODELS[provider])
            if provider == "anthropic":
                conv["max_tokens"] = 8192
                conv["cache_system"] = self.rng.random() < 0.5
                if self.rng.random() < 0.3:
                    conv["thinking"] = 2048
            convs.append(conv)
            total += n
        key = ANTHROPIC_KEY if provider == "anthropic" else OPENAI_KEY
        return {"api_key": key, "max_retries": 0, "tools": ALL_TOOLS, "conversations": convs,
                "parallel": parallel}, total

    def gemini_requests(self, quota: int) -> list[tuple[str, dict]]:
        """(path, body) per call: a system instruction, a history of up to 8 turns."""
        r, s, out = self.rng, self.script, []
        while len(out) < quota:
            model, system = r.choice(MODELS["gemini"]), self._system()
            history: list[dict] = []
            for _ in range(r.randint(1, 8)):
                if len(out) >= quota:
                    break
                stream = r.random() < 0.6
                marker = r.choice(s.stream_text if stream else s.full_text)
                history.append({"role": "user", "parts": [{"text": self.w.prose(r.randint(10, 90)) + " " + marker}]})
                body = {"systemInstruction": {"parts": [{"text": system}]}, "contents": list(history),
                        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 4096}}
                verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
                out.append((f"/v1beta/models/{model}:{verb}", body))
                reply = next(x for x in s.rules if x["match"] == marker)["text"]
                history.append({"role": "model", "parts": [{"text": reply}]})
        return out

    def responses_calls(self, quota: int) -> list[dict]:
        """node_session.mjs calls: conversations chained with previous_response_id."""
        r, s, out = self.rng, self.script, []
        tool_defs = [{"type": "function", "name": t["name"], "description": t["description"],
                      "parameters": t["parameters"]} for t in ALL_TOOLS]
        while len(out) < quota:
            model, system = r.choice(MODELS["responses"]), self._system()
            tools = r.sample(tool_defs, r.randint(0, 5))
            for i in range(r.randint(1, 6)):
                if len(out) >= quota:
                    break
                stream = r.random() < 0.6
                marker = r.choice(s.stream_text if stream else s.full_text)
                body = {"model": model, "instructions": system, "stream": stream,
                        "input": [{"role": "user", "content": self.w.prose(r.randint(10, 90)) + " " + marker}]}
                if tools:
                    body["tools"] = tools
                out.append({"path": "/v1/responses", "body": body, "chain": i > 0})
        return out


# -- running it -------------------------------------------------------------------------------

class Work:
    """The work directory: certificate, script, plans, per-client outputs, the launcher's spec."""

    def __init__(self, path: Path, port: int, cert: Path) -> None:
        self.path, self.port, self.cert = path, port, cert
        self.bindir = path / "bin"
        self.bindir.mkdir(exist_ok=True)
        self.pyenv = {"PYTHONPATH": os.pathsep.join(site.getsitepackages())}

    def link(self, name: str, target: str) -> str:
        """A link named `name` to `target`: the kernel names the process (comm) after it."""
        p = self.bindir / name
        if not p.exists():
            p.symlink_to(os.path.realpath(target))
        return str(p)

    def write(self, name: str, obj) -> str:
        (self.path / name).write_text(json.dumps(obj))
        return str(self.path / name)

    def url(self, host: str, path: str) -> str:
        return f"https://{host}{'' if self.port == 443 else f':{self.port}'}{path}"

    def job(self, kind: str, comm: str, i: int, argv: list[str], env: dict, expected: int) -> dict:
        name = f"{comm}-{i}"
        return {"name": name, "kind": kind, "argv": argv, "env": env, "expected": expected,
                "stdout": str(self.path / f"{name}.out"), "stderr": str(self.path / f"{name}.err")}

    def sdk_job(self, kind: str, comm: str, i: int, plan: dict, expected: int) -> dict:
        provider, proto = kind.split("-")
        host, script = (ANTHROPIC, "anthropic_sdk.py") if provider == "anthropic" else (OPENAI, "openai_sdk.py")
        argv = [self.link(comm, sys.executable), str(CLIENTS / script), "--port", str(self.port), "--ca",
                str(self.cert), "--scenario", "session", "--host", host, "--resolve", f"{host}:127.0.0.1",
                "--plan", self.write(f"{comm}-{i}.plan.json", plan), *(["--http2"] if proto == "h2" else [])]
        return self.job(kind, comm, i, argv, self.pyenv, expected)

    def curl_job(self, comm: str, i: int, requests: list[tuple[str, dict]], parallel: bool) -> dict:
        """One curl process, every call in a config file joined by `next`, over one HTTP/2
        connection: one call after another, or (`parallel`) up to 6 at a time, multiplexed."""
        lines = ["parallel", "parallel-max = 6"] if parallel else []
        for k, (path, body) in enumerate(requests):
            body_file = self.write(f"{comm}-{i}.req{k}.json", body)
            if k:
                lines.append("next")
            lines += ["http2", "silent", "show-error", "no-buffer", f'cacert = "{self.cert}"',
                      f'resolve = "{GOOGLE}:{self.port}:127.0.0.1"', 'header = "content-type: application/json"',
                      f'header = "x-goog-api-key: {GOOGLE_KEY}"', f'data-binary = "@{body_file}"',
                      'output = "/dev/null"', 'write-out = "%{http_code} %{http_version}\\n"',
                      f'url = "{self.url(GOOGLE, path)}"']
        cfg = self.path / f"{comm}-{i}.curlrc"
        cfg.write_text("\n".join(lines) + "\n")
        return self.job("gemini-curl", comm, i, [self.link(comm, shutil.which("curl")), "-K", str(cfg)], {},
                        len(requests))

    def node_job(self, comm: str, i: int, calls: list[dict]) -> dict:
        plan = {"base": self.url(OPENAI, ""), "resolve": {OPENAI: "127.0.0.1"},
                "headers": {"authorization": f"Bearer {OPENAI_KEY}"}, "calls": calls}
        argv = [self.link(comm, shutil.which("node")), str(CLIENTS / "node_session.mjs"),
                self.write(f"{comm}-{i}.plan.json", plan)]
        return self.job("responses-node", comm, i, argv, {"NODE_EXTRA_CA_CERTS": str(self.cert)}, len(calls))


def plan_jobs(work: Work, script: Script, target: int, seed: int) -> list[dict]:
    """Client jobs for every kind, interleaved so that each wave of the launcher mixes kinds."""
    planner = Planner(random.Random(seed + 1), script)
    per_kind: list[list[dict]] = []
    for kind, comm, share, per_proc in KINDS:
        want, jobs, i = math.ceil(target * share), [], 0
        while want > 0:
            quota = min(per_proc, want)
            if kind.startswith(("openai", "anthropic")):
                provider = kind.split("-")[0]
                # every other openai HTTP/1.1 client runs its conversations in parallel threads
                # (on a pool of connections). Not over HTTP/2: httpcore's sync HTTP/2 picks a
                # stream id without a lock, so threads sharing a connection can open streams out
                # of order and the server rightly ends the connection (PROTOCOL_ERROR).
                parallel = kind == "openai-h1" and i % 2 == 1
                plan, n = planner.sdk_plan(provider, quota, parallel)
                jobs.append(work.sdk_job(kind, comm, i, plan, n))
            elif kind == "gemini-curl":
                reqs = planner.gemini_requests(quota)
                jobs.append(work.curl_job(comm, i, reqs, parallel=i % 2 == 0))
                n = len(reqs)
            else:
                calls = planner.responses_calls(quota)
                jobs.append(work.node_job(comm, i, calls))
                n = len(calls)
            want -= n
            i += 1
        per_kind.append(jobs)
    order = []
    while any(per_kind):
        for jobs in per_kind:
            if jobs:
                order.append(jobs.pop(0))
    return order


def count_calls(result: dict) -> tuple[int, list[str]]:
    """Calls a client reports having made, and the problems it reports (non-200 answers)."""
    out = Path(result["stdout"]).read_text()
    if result["kind"] == "gemini-curl":
        codes = [line.split()[0] for line in out.splitlines() if line.strip()]
        return len(codes), [f"{result['name']}: HTTP {c}" for c in codes if c != "200"]
    calls = json.loads(out)["calls"]
    return len(calls), [f"{result['name']}: HTTP {c['status']} {c.get('error')}" for c in calls
                        if c.get("status") != 200]


class Streams:
    """Every client connection's two byte streams, put back together from the recording's chunks.

    This is how the recording is judged, rather than by the parsers it is meant to benchmark:
    byte for byte against what the server logged, so it holds every byte of every call."""

    def __init__(self) -> None:
        self.open: dict[tuple[int, int], dict[str, bytearray]] = {}
        self.done: list[dict[str, bytearray]] = []
        self.problems: list[str] = []

    def chunk(self, ev: ChunkEvent) -> None:
        streams = self.open.setdefault((ev.pid, ev.conn), {"send": bytearray(), "recv": bytearray()})
        buf = streams[ev.dir]
        if ev.lost or ev.truncated:
            self.problems.append(f"pid {ev.pid} conn {ev.conn:x} {ev.dir}: {ev.lost} bytes not captured")
        elif ev.offset != len(buf):
            self.problems.append(f"pid {ev.pid} conn {ev.conn:x} {ev.dir}: chunk at {ev.offset}, "
                                 f"expected {len(buf)}")
        buf += ev.data

    def close(self, pid: int, conn: int) -> None:
        """SSL_free: a later connection may get the same SSL* address."""
        streams = self.open.pop((pid, conn), None)
        if streams is not None:
            self.done.append(streams)

    def compare(self, server_logs: Path) -> tuple[list[str], dict]:
        """Problems unless each recorded connection is one of the server's, byte for byte, and
        the other way round; and a note of the unread tails.

        A client may close a connection without reading the last few bytes the server sent (the
        openai SDK over HTTP/2 stops at `data: [DONE]` and can exit before the empty DATA frame
        that ends the stream): the capture rightly has only what the client read, so what a
        client received must be what the server sent, or all of it but a tail of at most
        UNREAD_TAIL bytes (likewise for bytes a client sent after the server stopped reading)."""
        clients = [(bytes(c["send"]), bytes(c["recv"])) for c in [*self.done, *self.open.values()]
                   if c["send"] or c["recv"]]
        server = []
        for done in server_logs.glob("conn-*.done"):
            stem = done.with_suffix("")
            received, sent = stem.with_suffix(".recv").read_bytes(), stem.with_suffix(".sent").read_bytes()
            if received or sent:
                server.append((received, sent))
        by_received: dict[bytes, list[int]] = {}
        for i, (received, _) in enumerate(server):
            by_received.setdefault(hashlib.sha256(received).digest(), []).append(i)
        pairs, unpaired = [], []
        for c in clients:  # most connections: what the client sent is what the server received
            same = by_received.get(hashlib.sha256(c[0]).digest())
            (pairs.append((c, server[same.pop()])) if same else unpaired.append(c))
        left = [server[i] for ids in by_received.values() for i in ids]
        for c in unpaired:  # the rest: one is the other but for a short tail
            match = next((srv for srv in left if _tail(c[0], srv[0]) is not None), None)
            if match is None:
                continue
            pairs.append((c, match))
            left.remove(match)
        problems = list(self.problems[:10])
        tails = [0, 0]
        for (send, recv), (received, sent) in pairs:
            gaps = _tail(recv, sent), _tail(send, received)
            if None in gaps:
                problems.append(f"a connection's bytes differ from the server's (recorded {len(send)} sent, "
                                f"{len(recv)} received; the server {len(received)} and {len(sent)})")
            elif any(gaps):
                tails[0] += 1
                tails[1] += sum(gaps)
        if len(pairs) != len(clients) or left:
            problems.append(f"{len(clients) - len(pairs)} recorded connections are not the server's; "
                            f"{len(left)} of the server's {len(server)} connections are not in the recording")
        return problems, {"connections": len(clients), "with_unread_tail": tails[0], "tail_bytes": tails[1]}


UNREAD_TAIL = 256


def _tail(a: bytes, b: bytes) -> int | None:
    """How many bytes one of a, b has beyond the other, when the shorter is a prefix of the
    longer and the difference is at most UNREAD_TAIL; else None."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(long) - len(short) > UNREAD_TAIL or not long.startswith(short):
        return None
    return len(long) - len(short)


def server_exchanges(server_logs: Path) -> int:
    """Requests the server answered, by its own log."""
    return sum(len(json.loads(p.read_text())) for p in server_logs.glob("conn-*.http.json"))


def wait_for_server_logs(server_logs: Path, quiet: float = 1.0, timeout: float = 30.0) -> None:
    """The server writes a connection's log when the connection ends: wait until they stop coming."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(list(server_logs.glob("conn-*.done")))
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def start_monitor(tmp: Path, args: list[str], tree: Path | None) -> Monitor:
    """harness.Monitor, from this working tree or from `tree` (another checkout of the project,
    e.g. `git archive HEAD` unpacked, for when the working tree's capture code is mid-change;
    the recording format is what has to match, not the rest). harness runs the monitor with the
    repository as its working directory, which is what puts that llmspy_tui first on the path."""
    if tree is None:
        return Monitor(tmp, extra_args=args, mode=("--raw",))
    saved, harness.REPO = harness.REPO, tree
    try:
        return Monitor(tmp, extra_args=args, mode=("--raw",))
    finally:
        harness.REPO = saved


def start_server(cert: Path, key: Path, log_dir: Path, script: Path) -> TlsServer:
    """The loopback server on port 443 (URLs then look like the real APIs'), or any free port."""
    try:
        return TlsServer(cert, key, log_dir, port=443, script=script)
    except RuntimeError:
        return TlsServer(cert, key, log_dir, port=0, script=script)


def record(out: Path = DEFAULT_OUT, target: int = 10_400, concurrency: int = 6, seed: int = 2025,
           keep: bool = False, ring_mb: int = 64, monitor_tree: Path | None = None, log=print) -> dict:
    """Record the mix to `out`; returns its note (expected exchanges, loss counters, timing).
    Raises SystemExit, writing nothing, when a check fails. The work directory (plans, client
    outputs, server logs, the unreduced capture) is removed unless `keep`."""
    if os.geteuid() != 0:
        raise SystemExit("record_mix: recording needs root (it runs the live eBPF monitor)")
    tmp = Path(tempfile.mkdtemp(prefix="llmspy-mix-"))
    try:
        return _record(tmp, out, target, concurrency, seed, ring_mb, monitor_tree, log)
    finally:
        if keep:
            log(f"record_mix: work directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _record(tmp: Path, out: Path, target: int, concurrency: int, seed: int, ring_mb: int,
            monitor_tree: Path | None, log) -> dict:
    t_all = time.monotonic()
    cert, key = make_cert(tmp, (OPENAI, ANTHROPIC, GOOGLE))
    script = Script(random.Random(seed))
    script_path = tmp / "replies.json"
    script_path.write_text(json.dumps(script.rules))
    server = start_server(cert, key, tmp / "server", script_path)
    work = Work(tmp, server.port, cert)
    jobs = plan_jobs(work, script, target, seed)
    expected = sum(j["expected"] for j in jobs)
    log(f"record_mix: {len(jobs)} client processes, {expected} exchanges planned, {concurrency} at a time; "
        f"server on port {server.port}")

    spec = {"jobs": jobs, "concurrency": concurrency, "go": str(tmp / "go"), "results": str(tmp / "results.json")}
    launcher = subprocess.Popen([work.link(LAUNCHER, sys.executable), __file__, "--launcher",
                                 work.write("launcher.json", spec)],
                                stdout=subprocess.PIPE, stderr=open(tmp / "launcher.err", "wb"),  # noqa: SIM115
                                env={**os.environ, **work.pyenv})
    # --raw: the monitor hands every chunk to the recorder and prints it without parsing it
    # (the recording is checked below against the server's logs, not by the parsers it is
    # meant to benchmark); what it prints is not needed, so it goes to /dev/null
    (tmp / "monitor.jsonl").symlink_to(os.devnull)
    mon = None
    try:
        if launcher.stdout.readline().strip() != b"READY":
            raise SystemExit(f"record_mix: launcher did not start: {(tmp / 'launcher.err').read_text()}")
        comms = sorted({LAUNCHER} | {comm for _, comm, _, _ in KINDS})
        mon = start_monitor(tmp, [a for c in comms for a in ("-c", c)] + ["--ring-mb", str(ring_mb)],
                            monitor_tree)
        if "Failed to load BPF program" in mon.stderr:  # e.g. bpf/ mid-edit: nothing would be captured
            raise SystemExit(f"record_mix: the monitor could not load its probes:\n{mon.stderr[-1500:]}")
        began = time.monotonic()
        (tmp / "go").write_text("")
        launcher.wait(timeout=3600)
        clients_s = time.monotonic() - began
        time.sleep(1.0)  # let the monitor drain the last records
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if mon is not None:
            mon.stop(timeout=600)
        wait_for_server_logs(server.log_dir)
        server.stop()
    results = json.loads((tmp / "results.json").read_text())
    log(f"record_mix: clients ran {clients_s:.1f} s; monitor: {mon.stderr.strip().splitlines()[-1]}")

    problems = [f"{r['name']} exited {r['rc']}: {Path(r['stderr']).read_text()[-600:]}" for r in results if r["rc"]]
    pids = {r["pid"] for r in results}
    made = 0
    for r in results:
        if r["rc"] == 0:
            n, bad = count_calls(r)
            made += n
            problems += bad[:5]
            if n != r["expected"]:
                problems.append(f"{r['name']}: made {n} calls, planned {r['expected']}")
    answered = server_exchanges(server.log_dir)
    if answered != made:
        problems.append(f"the server answered {answered} requests, the clients report {made}")

    # reduce to the clients' processes, putting their connections together on the way
    reader = RecordingReader(str(mon.record))
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    rec = Recorder(str(part))
    rec.start({**{k: v for k, v in reader.info.header.items() if k not in ("format", "version")}, "argv": []})
    streams = Streams()
    kept = chunks = dropped = captured = 0
    for ev in reader:
        t = type(ev)
        pid = ev.info.pid if t is ProcessSeen else getattr(ev, "pid", None)
        if t is Counters or pid in pids:
            rec.write(ev)
            kept += 1
            if t is ChunkEvent:
                chunks += 1
                captured += len(ev.data)
                streams.chunk(ev)
            elif t is ConnClosed:
                streams.close(ev.pid, ev.conn)
        elif t in (ChunkEvent, ConnClosed):
            dropped += 1
    stream_problems, connections = streams.compare(server.log_dir)
    problems += stream_problems
    del streams
    footer = reader.info.footer
    counters = footer.get("counters") or reader.info.counters
    loss = {k: int(counters.get(k, 0)) for k in (*Counters.LOSS_KEYS, "ringbuf_fail_bytes", "read_fail_bytes",
                                                  "truncated_calls", "truncated_bytes")}
    if reader.info.problem or not reader.info.complete:
        problems.append(f"recording damaged: {reader.info.problem or 'no end marker'}")
    if any(loss.values()):
        problems.append(f"capture lost data: {loss}")
    if dropped:
        problems.append(f"{dropped} chunk or close events from processes other than the clients")
    mix = {"exchanges": made, "clients": len(results), "by_kind": {}, "monitor_tree": str(monitor_tree or REPO),
           "loss": loss, "calls": int(counters.get("calls", 0)), "captured_bytes": captured,
           "connections": connections,
           "clients_seconds": round(clients_s, 1), "concurrency": concurrency, "seed": seed,
           "recorded_by": "bench/record_mix.py: real clients against the loopback server; reduced to client pids"}
    for r in results:
        mix["by_kind"][r["kind"]] = mix["by_kind"].get(r["kind"], 0) + r["expected"]
    if problems:
        rec.discard()
        raise SystemExit("record_mix: recording refused (--keep keeps the work directory):\n  "
                         + "\n  ".join(problems[:40]))
    rec.close({"counters": counters, "mix": mix})
    os.chmod(part, 0o644)
    os.replace(part, out)
    log(f"record_mix: wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {kept} events, {chunks} chunks, "
        f"{captured / 1e6:.1f} MB captured from {len(pids)} processes); {made} exchanges "
        f"({', '.join(f'{k} {v}' for k, v in mix['by_kind'].items())})")
    log(f"record_mix: {connections['connections']} connections, each equal to one of the server's byte for "
        f"byte ({connections['with_unread_tail']} but for an unread tail, {connections['tail_bytes']} bytes "
        "in all)")
    log(f"record_mix: loss counters: {', '.join(f'{k} {v}' for k, v in loss.items())}; "
        f"total {time.monotonic() - t_all:.0f} s")
    return mix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exchanges", type=int, default=10_400, help="exchanges to plan (at least)")
    ap.add_argument("--concurrency", type=int, default=6, help="client processes at a time")
    ap.add_argument("--ring-mb", type=int, default=64, help="the monitor's ring buffer (its default: 64)")
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (plans, outputs, server logs)")
    ap.add_argument("--monitor-tree", type=Path, metavar="DIR",
                    help="run the monitor from this checkout instead of the working tree, e.g. "
                    "mkdir /tmp/head && git archive HEAD | tar -x -C /tmp/head")
    args = ap.parse_args()
    record(args.out, args.exchanges, args.concurrency, args.seed, args.keep, args.ring_mb, args.monitor_tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
