"""Record the bundled demo capture (llmspy_tui/data/demo.llmspy) from real clients.

Run as root from the repository:

    .venv/bin/python tests/support/record_demo.py [--keep]

One short, made-up working session of a platform team, about 20 s: the loopback TLS server
(tls_server.py) answers as api.openai.com, api.anthropic.com and
generativelanguage.googleapis.com (a certificate for those names; each client connects to
127.0.0.1 for them, as curl --resolve does), with paced streams, a first-byte latency and the
replies scripted below (fake_llm.py's script), while the real monitor records and five real
clients run at once:

- devops-agent   the openai SDK, HTTP/1.1: an incident conversation (3 turns, a system prompt
                 long enough for cached tokens), a tool-call loop on a full disk, and a status
                 update that gets a 429 and is retried by the SDK;
- code-agent     the anthropic SDK, HTTP/2: a bug fix with extended thinking and a tool-use loop
                 over two user turns (cached system prompt), then a commit message that gets a
                 529 and is retried by the SDK;
- pr-summarizer  the openai SDK, HTTP/1.1: three streamed pull-request summaries at once;
- curl           curl --http2: Gemini streamGenerateContent (SSE), then generateContent on the
                 same connection;
- node           Node fetch: the OpenAI Responses API, streamed, then continued with
                 previous_response_id.

The Python clients run through a link to the interpreter named after them, so their process
names (comm) differ. The recording is reduced to the clients' own processes (the server and
unrelated processes on the host are dropped); nothing in it is written by hand. --keep leaves
the work directory (server logs, what each client received) and says where.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import sys
import tempfile
import time
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
sys.path[:0] = [str(SUPPORT), str(REPO)]

from harness import Monitor, TlsServer, finish_client, make_cert, start_client  # noqa: E402

from fake_llm import WORDS  # noqa: E402
from llmspy_tui.capture.events import ChunkEvent, Counters, ProcessSeen  # noqa: E402
from llmspy_tui.capture.recordfile import Recorder, RecordingReader  # noqa: E402

OUT = REPO / "llmspy_tui" / "data" / "demo.llmspy"
CLIENTS = SUPPORT / "clients"
OPENAI, ANTHROPIC, GOOGLE = "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"
SSE_PAUSE = 0.02  # seconds between stream events: about 50 tokens/s
LATENCY = 0.6  # seconds before a reply starts, 0.3 to 0.9 by request
OPENAI_KEY = "sk-proj-demo-not-a-real-key-0000000000"
ANTHROPIC_KEY = "sk-ant-demo-not-a-real-key"
GOOGLE_KEY = "AIzaSyDEMO-not-a-real-key-000000000000"


# -- the session ------------------------------------------------------------------------------

def _prompt(intro: str, sections: dict[str, list[str]]) -> str:
    return intro + "".join(f"\n\n## {title}\n" + "\n".join(f"- {line}" for line in lines)
                           for title, lines in sections.items())


OPS_SYSTEM = _prompt(
    "You are Ops Copilot, the on-call assistant of the Platform team at Northwind Commerce. You help "
    "the engineer on call diagnose and fix production problems quickly and safely. You can run shell "
    "commands on the hosts you are given and read files there, through the tools provided.",
    {
        "Environment": [
            "Production runs on Kubernetes: clusters prod-eu (eu-west-1) and prod-us (us-east-1), one "
            "namespace per service (checkout, catalog, payments, search, identity).",
            "Services are deployed with Helm charts from the platform-charts repository; ArgoCD syncs "
            "them automatically from the main branch every three minutes.",
            "PostgreSQL databases sit behind PgBouncer, which listens on port 6432; the databases "
            "themselves (port 5432) only accept connections from the poolers.",
            "CI runs on self-hosted runners ci-runner-01 to ci-runner-06 (Ubuntu 22.04, Docker 24, "
            "200 GB NVMe each); nightly builds start at 02:00 UTC.",
            "Metrics are in Prometheus and Grafana (dashboards named after the service); logs are in "
            "Loki; alerts page through PagerDuty.",
            "kubectl contexts are named after the clusters (prod-eu, prod-us, staging); always pass "
            "--context explicitly, the default context on the bastion is staging.",
            "Service owners and escalation contacts are listed in the service catalogue (Backstage).",
        ],
        "How to work": [
            "Start from the symptom the engineer reports and the most recent change: most incidents "
            "follow a deploy, a config change or a capacity limit.",
            "Prefer read-only commands first (get, describe, logs, df, top). Say what each command is "
            "for in one short sentence before you run it.",
            "When you run a command, read its output before deciding on the next step; do not chain "
            "speculative commands.",
            "Quote the exact error lines you base a conclusion on, and say how confident you are.",
            "Give commands ready to paste, with the namespace and context flags filled in.",
            "Keep answers short: the engineer is under pressure. Use numbered steps for procedures.",
        ],
        "Safety rules": [
            "Never delete persistent volumes, databases, namespaces or secrets, even if asked "
            "indirectly. Propose the command and let the engineer run it instead.",
            "Never restart more than one replica set at a time in production without saying so "
            "explicitly and waiting for confirmation.",
            "Rollbacks go through Helm (helm rollback) so that ArgoCD and the release history stay "
            "consistent; pause ArgoCD auto-sync for the application first or it will re-apply the "
            "bad revision.",
            "On CI runners you may prune Docker build cache and images that are not used by running "
            "containers. Do not touch volumes, /home or /etc.",
            "Do not print secrets, tokens or connection strings with passwords in them; mask them.",
            "If a command could take longer than five minutes or affect customers, say so first.",
        ],
        "Communication": [
            "Internal updates go to #incidents with the time in UTC, the impact, what was done and "
            "what is next.",
            "Customer-facing text (status page) must not mention internal hostnames, people or tools.",
            "After an incident, list the follow-up actions with an owner placeholder so they can be "
            "copied into the post-incident review.",
        ],
        "Runbooks": [
            "CrashLoopBackOff: read the previous container's logs and the exit code before anything "
            "else; 137 is OOMKilled, 1 is usually startup configuration, 143 is a failed liveness probe.",
            "Disk full on a runner: check df, then docker system df; build cache and dangling images are "
            "safe to prune, volumes are not.",
            "Elevated 5xx after a deploy: compare the error rate of the new and old replica sets in "
            "Grafana; if only the new one fails, roll back first and investigate afterwards.",
            "Certificate expiry alerts: cert-manager renews 30 days ahead; if a certificate is within 7 "
            "days of expiry, check the Certificate and Order resources for the failing challenge.",
            "Database connection errors: check PgBouncer's SHOW POOLS for waiting clients before "
            "suspecting the database itself.",
        ],
        "Escalation": [
            "Payments or identity down for more than 10 minutes: page the service owner and the "
            "incident commander rotation.",
            "Suspected data loss or a security issue: stop, say so clearly, and page security on call.",
            "Anything touching the primary databases beyond read-only queries: page the database team.",
        ],
    },
)

CODE_SYSTEM = _prompt(
    "You are a coding agent working in the billing-service repository (Python 3.12, FastAPI, "
    "SQLAlchemy 2, pytest). You fix bugs and make small changes end to end: read the code, make "
    "the change, run the tests, and report what you did.",
    {
        "Repository layout": [
            "billing/ holds the domain code: invoices.py, payments.py, refunds.py, money.py, tax.py.",
            "api/ holds the FastAPI routers; api/schemas.py has the request and response models.",
            "migrations/ holds Alembic migrations; never edit a migration that is already on main.",
            "tests/ mirrors billing/ and api/; tests/conftest.py provides a transactional database "
            "fixture and a frozen clock.",
        ],
        "Conventions": [
            "Money is always an integer number of cents (type Cents = int) until it is formatted for "
            "display; never use float for amounts, and never round a share of an amount on its own.",
            "When an amount is split into parts, the parts must add up to the amount exactly; give "
            "remainders to the first parts.",
            "Public functions have type hints and a one-line docstring; keep functions short.",
            "Errors the API returns are raised as BillingError subclasses with a stable code.",
            "Commit messages follow Conventional Commits: type(scope): summary, then a body that "
            "explains why, then references such as Fixes: #123.",
        ],
        "Tools": [
            "read_file returns a file's text; read before you edit, and read only what you need.",
            "apply_patch takes a unified diff relative to the repository root; keep diffs minimal "
            "and do not reformat code you did not change.",
            "run_tests runs pytest on the given path and returns its output; run the narrowest path "
            "that covers the change first, then the module's tests.",
            "Do not run the whole test suite unless asked: it takes several minutes.",
            "Tool output can be long; quote only the lines that matter in your answer.",
        ],
        "Working style": [
            "Think about the cause before editing: a failing test usually points at a recent change; "
            "name the change when you can.",
            "Make one change at a time and run the tests after each.",
            "If the tests fail after your change, read the failure and fix it; do not weaken a test "
            "to make it pass.",
            "When you are done, summarise the cause, the fix and the test results in a few sentences; "
            "mention anything you noticed but did not change.",
            "Ask before changing public API signatures, database schemas or dependencies.",
            "Keep the working tree clean: do not leave debugging prints, commented-out code or "
            "temporary files behind.",
            "Prefer the standard library; do not add dependencies for small helpers.",
        ],
        "Domain notes": [
            "An invoice has lines; a payment settles one invoice; a refund reverses part or all of a "
            "payment and may be paid back in instalments (split_refund).",
            "Currencies are ISO 4217 codes; amounts are in the currency's minor unit. JPY has no minor "
            "unit, so one cent there is one yen; never assume two decimals.",
            "Tax is computed per invoice line and rounded per line (half-even), then summed; do not round "
            "the invoice total separately.",
            "Refunds never exceed the captured amount of the payment; the API rejects them with "
            "REFUND_EXCEEDS_CAPTURE.",
            "Idempotency keys are stored for 24 hours; a replay returns the stored response.",
        ],
        "Testing": [
            "Every bug fix comes with a regression test that fails before the fix and passes after it.",
            "Tests are plain pytest functions named test_<behaviour>; use parametrize for tables of "
            "cases rather than loops inside a test.",
            "Amounts in tests are written in cents (1000, not 10.00) so that the expected values are "
            "exact.",
            "Database tests use the db fixture, which rolls back after each test; never commit inside a "
            "test.",
            "Time-dependent code takes the frozen_clock fixture; never call datetime.now() in a test.",
        ],
        "Pull requests": [
            "One logical change per pull request; the title is the commit summary line.",
            "The description says what changed, why, and how it was tested, and links the issue.",
            "Changes to money handling need a second reviewer from the payments team.",
        ],
        "Security": [
            "Never print or commit credentials, API keys or customer data; tests use the fixtures in "
            "tests/fixtures with fake data only.",
            "Do not disable authentication or authorisation checks, even in tests; use the "
            "authenticated client fixture.",
        ],
    },
)

TOOLS = [
    {"name": "run_shell", "description": "Run a shell command on a host and return its output.",
     "parameters": {"type": "object", "properties": {
         "host": {"type": "string", "description": "host name"},
         "command": {"type": "string", "description": "the command line"}}, "required": ["host", "command"]}},
    {"name": "read_file", "description": "Read a text file from the repository.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {"name": "apply_patch", "description": "Apply a unified diff to the repository.",
     "parameters": {"type": "object", "properties": {"patch": {"type": "string"}}, "required": ["patch"]}},
    {"name": "run_tests", "description": "Run pytest on a path and return its output.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
]

DF_BEFORE = ("Filesystem      Size  Used Avail Use% Mounted on\n"
             "/dev/nvme0n1p1  200G  193G  7.1G  97% /")
DOCKER_DF = ("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
             "Images          214       6         96.4GB    88.9GB (92%)\n"
             "Containers      9         2         1.2GB     1.1GB (91%)\n"
             "Local Volumes   31        3         12.5GB    9.8GB (78%)\n"
             "Build Cache     1482      0         61.7GB    61.7GB")
PRUNED = ("Total reclaimed space: 58.3GB\n"
          "Total reclaimed space: 71.6GB\n"
          "Filesystem      Size  Used Avail Use% Mounted on\n"
          "/dev/nvme0n1p1  200G   64G  137G  32% /")
REFUNDS_PY = '''"""Refunds: full and partial, in instalments."""

from billing.money import Cents


def split_refund(total_cents: Cents, parts: int) -> list[Cents]:
    """Split a refund into `parts` instalments."""
    share = round(total_cents / parts)
    return [share] * parts
'''
FIX_PATCH = '''--- a/billing/refunds.py
+++ b/billing/refunds.py
@@ -6,4 +6,4 @@
 def split_refund(total_cents: Cents, parts: int) -> list[Cents]:
     """Split a refund into `parts` instalments."""
-    share = round(total_cents / parts)
-    return [share] * parts
+    share, rest = divmod(total_cents, parts)
+    return [share + 1 if i < rest else share for i in range(parts)]
'''
TEST_PATCH = '''--- a/tests/test_refunds.py
+++ b/tests/test_refunds.py
@@ -88,3 +88,11 @@
 def test_partial_refund_rounding():
     assert sum(split_refund(1001, 4)) == 1001
+
+
+def test_split_refund_keeps_every_cent():
+    assert split_refund(1000, 3) == [334, 333, 333]
+
+
+def test_split_refund_smaller_than_parts():
+    assert split_refund(2, 3) == [1, 1, 0]
'''
PYTEST_14 = ("============================= test session starts ==============================\n"
             "collected 14 items\n\ntests/test_refunds.py ..............                          [100%]\n\n"
             "============================== 14 passed in 0.41s ==============================")
PYTEST_16 = ("============================= test session starts ==============================\n"
             "collected 16 items\n\ntests/test_refunds.py ................                        [100%]\n\n"
             "============================== 16 passed in 0.44s ==============================")
CI_LOG = """job: nightly / integration-tests   runner: ci-runner-03   started: 02:00:41 UTC
02:13:58 Step 4/9 : RUN docker compose -f ci/compose.yml pull
02:14:07 postgres Pulling
02:14:31 failed to register layer: write /var/lib/docker/overlay2/9f3c1e7a/diff/usr/lib/postgresql/16/lib/llvmjit.so: no space left on device
02:14:31 Error response from daemon: failed to register layer: no space left on device
02:14:32 ##[error]Process completed with exit code 1."""

OPS_PLAN = {
    "api_key": OPENAI_KEY, "max_retries": 2, "system": OPS_SYSTEM, "tools": TOOLS,
    "conversations": [
        {"model": "gpt-4o", "turns": [
            {"user": "checkout-api pods in prod-eu went into CrashLoopBackOff right after the v2.14.0 "
                     "rollout. What should I check first?"},
            {"user": "Exit code 1. The previous container's logs end with: FATAL: could not connect to "
                     "postgres at pg-checkout.internal:5432: dial tcp 10.42.3.7:5432: connect: connection "
                     "refused", "stream": True, "pause": 1.2},
            {"user": "You were right: v2.14.0 switched DATABASE_URL to port 5432 but the pooler listens on "
                     "6432. How do I roll back safely while we fix the chart?", "stream": True, "pause": 1.0},
        ]},
        {"model": "gpt-4o", "tools": ["run_shell"], "tool_outputs": [DF_BEFORE, DOCKER_DF, PRUNED], "turns": [
            {"user": "ci-runner-03 keeps failing nightly builds with 'no space left on device'. Investigate "
                     "and free space safely; don't touch anything outside Docker's data.", "stream": True,
             "pause": 0.8},
        ]},
        {"model": "gpt-4o-mini", "system": "You write customer-facing status page updates: plain language, "
                                           "no internal names, times in UTC.", "turns": [
            {"user": "Write a two-sentence status page update for the checkout incident: checkout errors in "
                     "Europe from 14:02 to 14:31 UTC, caused by a bad configuration in a deploy, rolled "
                     "back, resolved.", "pause": 0.5},
        ]},
    ],
}

CODE_PLAN = {
    "api_key": ANTHROPIC_KEY, "max_retries": 2, "tools": TOOLS,
    "conversations": [
        {"model": "claude-sonnet-4-5", "system": CODE_SYSTEM, "cache_system": True, "thinking": 2048,
         "max_tokens": 8192, "tools": ["read_file", "apply_patch", "run_tests"],
         "tool_outputs": [REFUNDS_PY, "Patch applied: billing/refunds.py (1 hunk)", PYTEST_14,
                          "Patch applied: tests/test_refunds.py (1 hunk)", PYTEST_16],
         "turns": [
             {"user": "tests/test_refunds.py::test_partial_refund_rounding started failing on main after "
                      "yesterday's merge. Find the cause and fix it.", "stream": True},
             {"user": "Nice. Add regression tests for a 3-way split of 1000 cents and for an amount "
                      "smaller than the number of parts.", "pause": 1.5},
         ]},
        {"model": "claude-haiku-4-5", "max_tokens": 512, "turns": [
            {"user": "Write a Conventional Commits message for this change (it fixes issue #491, a "
                     "regression from #482):\n\n" + FIX_PATCH + TEST_PATCH, "pause": 0.5},
        ]},
    ],
}

PR_PLAN = {
    "api_key": OPENAI_KEY, "parallel": True,
    "system": "You summarise pull requests for reviewers: at most three bullet points, then what to "
              "review first.",
    "conversations": [
        {"model": "gpt-4o-mini", "turns": [{"stream": True, "user": text}]} for text in (
            "PR #488 feat(api): add idempotency keys to POST /refunds. 6 files changed, 214 insertions, "
            "12 deletions. Stores the Idempotency-Key header with a hash of the request body in a new "
            "refund_requests table (24 h TTL); a replay returns the stored response; the same key with a "
            "different body returns 422.",
            "PR #486 chore(ci): prune Docker build cache nightly on runners. 2 files changed, 31 "
            "insertions. Adds a systemd timer on the CI runners that runs docker builder prune with "
            "until=72h at 01:30 UTC, and sets builder.gc keepStorage to 50GB in daemon.json.",
            "PR #491 fix(billing): keep every cent when splitting refunds. 2 files changed, 11 insertions, "
            "2 deletions. split_refund now uses divmod and gives the remainder to the first instalments; "
            "adds two regression tests.",
        )],
}

GEMINI_SUMMARY = {
    "systemInstruction": {"parts": [{"text": "You summarise CI failures for the #builds Slack channel: "
                                             "one line for the cause, one line for the action."}]},
    "contents": [{"role": "user", "parts": [{"text": "Summarise this failed job:\n" + CI_LOG}]}],
    "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256},
}
GEMINI_CLASSIFY = {
    "contents": [{"role": "user", "parts": [{"text": "Classify this CI failure as one of flaky_test, infra, "
                                                     "code_regression, dependency. Reply with JSON "
                                                     "{category, confidence}.\n\n" + CI_LOG.splitlines()[3]}]}],
    "generationConfig": {"temperature": 0, "responseMimeType": "application/json",
                         "thinkingConfig": {"thinkingBudget": 0}},
}

NODE_CALLS = [
    {"path": "/v1/responses", "body": {
        "model": "gpt-4o", "stream": True,
        "instructions": "You write release notes for developers. Group changes under Fixes, Features and "
                        "Internal. Markdown, no marketing language.",
        "input": "Write release notes for billing-service v3.8.1 from these merged PRs:\n"
                 "- #491 fix(billing): keep every cent when splitting refunds\n"
                 "- #488 feat(api): add idempotency keys to POST /refunds\n"
                 "- #486 chore(ci): prune Docker build cache nightly on runners\n"
                 "- #482 refactor(billing): simplify refund splitting"}},
    {"path": "/v1/responses", "chain": True, "pause": 1.5, "body": {
        "model": "gpt-4o", "input": [{"role": "user", "content": "Shorter please: one line per section, for "
                                                                 "the Slack announcement."}]}},
]

# The "model": the first rule whose `match` occurs in a request's last turn gives the reply.
RULES = [
    # devops-agent: incident
    {"match": "What should I check first?", "text":
        "Start with the container that crashed, not the one restarting now:\n\n"
        "1. `kubectl --context prod-eu -n checkout logs deploy/checkout-api --previous --tail=100`\n"
        "2. `kubectl --context prod-eu -n checkout describe pod -l app=checkout-api` and look at Last State, "
        "Exit Code and Events.\n\n"
        "Exit code 137 means the container was OOMKilled; exit code 1 usually means the app gave up at "
        "startup, most often on configuration or a dependency it cannot reach. Since it began with v2.14.0, "
        "also diff the release: `helm -n checkout diff revision checkout-api 41 42`."},
    {"match": "connection refused", "text":
        "Connection refused, not a timeout: the address answered but nothing listens on 5432 there. With "
        "PgBouncer on 6432 in front of the databases, the likeliest cause is that v2.14.0 points the app at "
        "the database port instead of the pooler. Check the rendered DATABASE_URL:\n\n"
        "`kubectl --context prod-eu -n checkout get configmap checkout-api -o yaml | grep -i database`\n\n"
        "and compare it with revision 41. I'm fairly confident (the error appeared with the deploy and the "
        "host resolves fine)."},
    {"match": "roll back safely", "text":
        "1. Pause auto-sync first, or ArgoCD will re-apply v2.14.0: `argocd app set checkout-api "
        "--sync-policy none`\n"
        "2. Roll back the release: `helm --kube-context prod-eu -n checkout rollback checkout-api 41 --wait "
        "--timeout 5m`\n"
        "3. Watch it settle: `kubectl --context prod-eu -n checkout rollout status deploy/checkout-api`\n"
        "4. Check the error rate on the checkout dashboard is back to baseline.\n\n"
        "Follow-ups for the review: fix `database.port: 6432` in values-prod-eu.yaml (owner: TBD), and add a "
        "startup probe so a bad DSN fails the rollout instead of the pods (owner: TBD)."},
    # devops-agent: full disk, a tool loop
    {"match": "no space left on device'. Investigate",
     "tool": {"name": "run_shell", "arguments": {"host": "ci-runner-03", "command": "df -h /"}}},
    {"match": "193G  7.1G  97%",
     "tool": {"name": "run_shell", "arguments": {"host": "ci-runner-03", "command": "docker system df"}}},
    {"match": "RECLAIMABLE",
     "tool": {"name": "run_shell", "arguments": {
         "host": "ci-runner-03", "command": "docker builder prune --force --filter until=72h && docker image "
                                            "prune --all --force --filter until=168h && df -h /"}}},
    {"match": "Total reclaimed space", "text":
        "Done: / on ci-runner-03 went from 97% to 32% used (137G free). The space was 62 GB of build cache "
        "and 89 GB of unused images: the nightly builds pull fresh base images every night and nothing "
        "pruned the old ones. I removed only build cache older than 3 days and images unused for a week; "
        "volumes and running containers were not touched. To keep it from coming back, run the build cache "
        "prune daily from a systemd timer and set `builder.gc` with `keepStorage: 50GB` in "
        "/etc/docker/daemon.json."},
    # devops-agent: status page, rate-limited once (the SDK retries)
    {"match": "status page update", "once": True, "error": "ratelimit"},
    {"match": "status page update", "text":
        "Between 14:02 and 14:31 UTC, some customers in Europe could not complete checkout. The cause was a "
        "configuration change that we have rolled back, and checkout has worked normally since 14:31 UTC."},
    # code-agent: bug fix with thinking and tools
    {"match": "Find the cause and fix it.",
     "thinking": "The test name points at rounding when a refund is split. A regression right after "
                 "yesterday's merge, so read the refund splitting code first and see how the shares are "
                 "computed before running anything.",
     "text": "I'll start with the refund splitting code.",
     "tool": {"name": "read_file", "arguments": {"path": "billing/refunds.py"}}},
    {"match": "Refunds: full and partial",
     "thinking": "round(total_cents / parts) rounds each share on its own, so the shares only add up when the "
                 "total divides evenly: 1001 in 4 gives 250 x 4 = 1000 and a cent is lost. The repository "
                 "convention says remainders go to the first parts. divmod gives the share and the "
                 "remainder in integers, no float involved.",
     "text": "Found it: `round(total_cents / parts)` rounds every share independently, so a total that doesn't "
             "divide evenly loses or gains cents (1001 in 4 gives 1000). I'll split with `divmod` and give "
             "the remainder to the first instalments.",
     "tool": {"name": "apply_patch", "arguments": {"patch": FIX_PATCH}}},
    {"match": "Patch applied: billing/refunds.py",
     "thinking": "Patch applied. Run the refund tests: the failing one and the rest of the module.",
     "tool": {"name": "run_tests", "arguments": {"path": "tests/test_refunds.py"}}},
    {"match": "14 passed",
     "thinking": "All 14 pass, including test_partial_refund_rounding. Summarise the cause and the fix.",
     "text": "Fixed. The regression came from #482 (\"simplify refund splitting\"), which replaced the "
             "remainder handling in `split_refund` with `round(total_cents / parts)` repeated for every "
             "part, so totals that don't divide evenly lost or gained cents. It now uses `divmod` and gives "
             "the remainder to the first instalments (1000 in 3 gives 334, 333, 333), so the parts always "
             "add up to the total. `tests/test_refunds.py`: 14 passed."},
    {"match": "Add regression tests",
     "thinking": "Two cases: 1000 in 3 should give [334, 333, 333]; 2 in 3 should give [1, 1, 0], which "
                 "also checks that a zero share is allowed. Append them after the existing rounding test.",
     "text": "Adding both tests next to the existing rounding test.",
     "tool": {"name": "apply_patch", "arguments": {"patch": TEST_PATCH}}},
    {"match": "Patch applied: tests/test_refunds.py",
     "thinking": "Run the module's tests again.",
     "tool": {"name": "run_tests", "arguments": {"path": "tests/test_refunds.py"}}},
    {"match": "16 passed",
     "thinking": "16 pass: the 14 from before and the two new ones.",
     "text": "Added `test_split_refund_keeps_every_cent` (1000 in 3 gives [334, 333, 333]) and "
             "`test_split_refund_smaller_than_parts` (2 in 3 gives [1, 1, 0]). `tests/test_refunds.py`: "
             "16 passed."},
    # code-agent: commit message, overloaded once (the SDK retries)
    {"match": "Conventional Commits message", "once": True, "error": "overloaded"},
    {"match": "Conventional Commits message", "text":
        "fix(billing): keep every cent when splitting refunds\n\n"
        "split_refund rounded each instalment on its own since #482, so totals that do not divide evenly "
        "lost or gained cents. Split with divmod and give the remainder to the first instalments, and add "
        "regression tests for a 3-way split and for an amount smaller than the number of parts.\n\n"
        "Fixes: #491\nRefs: #482"},
    # pr-summarizer
    {"match": "PR #488", "text":
        "- Adds `Idempotency-Key` support to `POST /refunds`: the key and a hash of the body are kept for "
        "24 h in a new `refund_requests` table.\n"
        "- A replay returns the stored response; the same key with another body gets 422.\n\n"
        "Review first: two concurrent first requests with the same key."},
    {"match": "PR #486", "text":
        "- Adds a systemd timer on the CI runners: `docker builder prune --filter until=72h` daily at "
        "01:30 UTC.\n"
        "- Caps the builder cache at 50GB in daemon.json.\n\n"
        "Review first: the daemon restart, one runner at a time."},
    {"match": "PR #491", "text":
        "- Fixes a regression from #482: refund instalments now add up to the total exactly.\n"
        "- `split_refund` uses `divmod` and gives the remainder to the first instalments.\n"
        "- Two regression tests.\n\n"
        "Review first: callers that expect equal instalments."},
    # curl: Gemini
    {"match": "Summarise this failed job", "text":
        "Cause: integration-tests on ci-runner-03 failed pulling the postgres image, no space left on device "
        "(02:14 UTC); not a test failure.\n"
        "Action: free Docker disk on ci-runner-03 (build cache, old images) and re-run the nightly job."},
    {"match": "Classify this CI failure", "text": "{\"category\": \"infra\", \"confidence\": 0.96}"},
    # node: Responses API
    {"match": "Write release notes", "text":
        "## billing-service v3.8.1\n\n"
        "### Fixes\n"
        "- Refund instalments add up to the refunded amount again; remainders go to the first instalments "
        "(#491, a regression from #482).\n\n"
        "### Features\n"
        "- `POST /refunds` accepts an `Idempotency-Key` header; a retry with the same key returns the "
        "original refund (#488).\n\n"
        "### Internal\n"
        "- CI runners prune the Docker build cache nightly (#486).\n"
        "- Refund splitting code simplified (#482)."},
    {"match": "Shorter please", "text":
        "billing-service v3.8.1 | Fixes: split refunds no longer lose a cent (#491) | Features: idempotency "
        "keys on POST /refunds (#488) | Internal: nightly Docker cache pruning on CI (#486)"},
]


# -- running it -------------------------------------------------------------------------------

def start_server(cert: Path, key: Path, work: Path, script: Path) -> TlsServer:
    """The loopback server on port 443 (URLs then look like the real APIs'), or any free port."""
    for port in (443, 0):
        try:
            return TlsServer(cert, key, work / f"server-{port}", sse_pause=SSE_PAUSE, port=port,
                             latency=LATENCY, script=script)
        except RuntimeError:
            if port == 0:
                raise
    raise AssertionError


def main() -> int:
    keep_work = "--keep" in sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="llmspy-demo-"))
    cert, key = make_cert(work, (OPENAI, ANTHROPIC, GOOGLE))
    (work / "replies.json").write_text(json.dumps(RULES))
    server = start_server(cert, key, work, work / "replies.json")
    port = server.port

    def url(host: str, path: str) -> str:
        return f"https://{host}{'' if port == 443 else f':{port}'}{path}"

    def write(name: str, obj) -> str:
        (work / name).write_text(json.dumps(obj))
        return str(work / name)

    # The Python clients run through links named after them: the kernel names a process (comm)
    # after the file it executes. The link is outside the venv, so the venv's packages come by path.
    bindir = work / "bin"
    bindir.mkdir()
    for name in ("devops-agent", "code-agent", "pr-summarizer"):
        (bindir / name).symlink_to(os.path.realpath(sys.executable))
    pyenv = {"PYTHONPATH": os.pathsep.join(site.getsitepackages())}

    def sdk(name: str, script: str, host: str, plan: dict, http2: bool = False) -> list[str]:
        return [str(bindir / name), str(CLIENTS / script), "--port", str(port), "--ca", str(cert),
                "--scenario", "session", "--host", host, "--resolve", f"{host}:127.0.0.1",
                "--plan", write(f"{name}.plan.json", plan), *(["--http2"] if http2 else [])]

    gemini = ["--http2", "-sS", "-N", "--cacert", str(cert), "--resolve", f"{GOOGLE}:{port}:127.0.0.1",
              "-H", "content-type: application/json", "-H", f"x-goog-api-key: {GOOGLE_KEY}"]
    curl = [shutil.which("curl"),
            *gemini, "--data-binary", f"@{write('gemini-summary.json', GEMINI_SUMMARY)}",
            "-o", str(work / "gemini-summary.out"),
            url(GOOGLE, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"), "--next",
            *gemini, "--data-binary", f"@{write('gemini-classify.json', GEMINI_CLASSIFY)}",
            "-o", str(work / "gemini-classify.out"),
            url(GOOGLE, "/v1beta/models/gemini-2.5-flash:generateContent")]
    node_plan = {"base": url(OPENAI, ""), "resolve": {OPENAI: "127.0.0.1"},
                 "headers": {"authorization": f"Bearer {OPENAI_KEY}"}, "calls": NODE_CALLS}
    node = [shutil.which("node"), str(CLIENTS / "node_session.mjs"), write("node.plan.json", node_plan)]
    timeline = [  # (start after s, name, command, extra environment)
        (0.0, "devops-agent", sdk("devops-agent", "openai_sdk.py", OPENAI, OPS_PLAN), pyenv),
        (0.4, "code-agent", sdk("code-agent", "anthropic_sdk.py", ANTHROPIC, CODE_PLAN, http2=True), pyenv),
        (1.5, "curl", curl, {}),
        (3.0, "pr-summarizer", sdk("pr-summarizer", "openai_sdk.py", OPENAI, PR_PLAN), pyenv),
        (6.0, "node", node, {"NODE_EXTRA_CA_CERTS": str(cert)}),
    ]

    mon = Monitor(work, mode=())
    procs = {}
    began = time.monotonic()
    try:
        for at, name, cmd, env in timeline:
            time.sleep(max(0.0, began + at - time.monotonic()))
            procs[name] = start_client(cmd, env)
        done = {name: finish_client(p, timeout=120) for name, p in procs.items()}
        elapsed = time.monotonic() - began
        time.sleep(0.5)  # let the monitor drain the last records
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        mon.stop()
        server.stop()
    pids = {p.pid: name for name, p in procs.items()}
    for name, cp in done.items():
        (work / f"{name}.out").write_bytes(cp.stdout)

    reader = RecordingReader(str(mon.record))
    keep = [e for e in reader if type(e) is Counters
            or (e.info.pid if type(e) is ProcessSeen else getattr(e, "pid", None)) in pids]
    check(mon.lines(), pids)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    if OUT.exists():
        OUT.unlink()
    rec = Recorder(str(OUT))
    rec.start({**{k: v for k, v in reader.info.header.items() if k not in ("format", "version")},
               "demo": "recorded by tests/support/record_demo.py from real clients; reduced to client pids",
               "argv": []})
    rec.write_many(keep)
    rec.close({"counters": reader.info.counters})
    os.chmod(OUT, 0o644)  # shipped in the package: holds only loopback test traffic
    chunks = sum(1 for e in keep if type(e) is ChunkEvent)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {chunks} chunks from {len(pids)} processes, "
          f"clients ran {elapsed:.1f} s)")
    if keep_work:
        print(f"work directory: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def check(lines: list[dict], pids: dict[int, str]) -> None:
    """Refuse a demo with a call the script did not answer (generated filler) or one not seen whole."""
    calls = [x for x in lines if x.get("type") == "exchange" and x["pid"] in pids]
    words = set(WORDS)
    problems = []
    for x in calls:
        where = f"{pids[x['pid']]} {x['id']} {x['model']}"
        text = x["response"]["text"] or ""
        if text and set(text.split()) <= words:
            problems.append(f"{where}: not scripted: {text[:60]!r}")
        if not x["complete"]:
            problems.append(f"{where}: incomplete: {x['problem']}")
        if x["status"] < 400 and not (text or x["response"]["tool_calls"]):
            problems.append(f"{where}: empty reply")
    if len(calls) < 20:
        problems.append(f"only {len(calls)} calls")
    if problems:
        raise SystemExit("record_demo: " + "; ".join(problems))


if __name__ == "__main__":
    sys.exit(main())
