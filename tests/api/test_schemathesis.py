"""Fuzzing the OpenAPI document with schemathesis against a live ``ordinaut api``: no server
error, and answers that match what the document says (status codes, content types,
headers, response schemas, 405s, authentication enforced).

Bounded (``--max-examples``, fixed seed) so it takes well under a minute. Two runs: the
first as admin over everything except the calls that can lock the caller out (rotating
its own token, deleting or demoting itself: the fuzzer learns the admin's id from
``/agents/me``) and the endless ``GET /runs/stream``; the second exercises those three last.

Not enforced: ``positive_data_acceptance`` and ``negative_data_rejection``. Semantic
validation is stricter than the JSON Schema (a cron expression, a time zone name, an opaque
cursor are strings to the schema), so schema-valid input may rightly be a 422.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import ADMIN_TOKEN, cluster

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    ]
)
SELF_LOCKING = r"^/agents/\{agent_id\}"
# An endless stream of server-sent events has no answer to check (tests/e2e/test_results.py
# and the authorization matrix cover it).
STREAM = r"^/runs/stream$"


def fuzz(
    url: str, workdir: Path, *selection: str, examples: int
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            url,
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(examples),
            "--seed",
            "20261123",
            "--phases",
            "examples,coverage,fuzzing",
            "--no-shrink",
            "--request-timeout",
            "10",
            # One worker: schemathesis compiles code in its worker threads, and CPython 3.11's
            # AST constructor is not thread-safe ("recursion depth mismatch").
            "--workers",
            "1",
            *selection,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def server_errors(metrics: str) -> list[str]:
    return [
        line
        for line in metrics.splitlines()
        if line.startswith("ordinaut_http_requests_total{")
        and re.search(r'status="5\d\d"', line)
        and not line.rstrip().endswith(" 0.0")
    ]


def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_RATE_LIMIT_PER_MINUTE="0") as running:
        api = running.api()
        # A worker runs what the fuzzer queues, so `?wait=N` answers when the run ends
        # rather than holding the request past the fuzzer's timeout.
        running.worker(concurrency=10)
        base = f"http://127.0.0.1:{api.port}"
        everything_else = fuzz(
            f"{base}/openapi.json",
            tmp_path,
            "--exclude-path-regex",
            f"{SELF_LOCKING}|{STREAM}",
            examples=12,
        )
        self_locking = fuzz(
            f"{base}/openapi.json",
            tmp_path,
            "--include-path-regex",
            SELF_LOCKING,
            examples=12,
        )
        metrics = httpx.get(f"{base}/metrics").text
        log = api.output()
    for run in (everything_else, self_locking):
        assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
        assert re.search(r"Tested: \d+", run.stdout), run.stdout[-3000:]
    assert server_errors(metrics) == []
    assert '"level": "error"' not in log, log[-5000:]
