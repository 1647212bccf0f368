"""API benchmark: ``POST /tasks`` throughput and ``GET /tasks/{id}`` latency.

    python -m tests.load.api_bench [--seconds 10] [--create-concurrency 32]
                                   [--read-concurrency 8] [--read-rates 200 400]
                                   [--tool auto|hey|python]

Starts a real ``ordinaut api`` process (one uvicorn process, default settings except the
rate limit, which is off so that one agent can be measured) against ``DATABASE_URL``, or
against a private embedded PostgreSQL with ``fsync`` on (the database on the same machine),
creates an agent with ``tasks:read``/``tasks:write``, and drives the API with ``hey`` (Debian
package ``hey``) when it is installed, else a Python load generator (which competes with
the server for CPU, so its numbers are a lower bound). Prints one line per
scenario: requests/s, p50/p90/p99 latency, status codes.

Scenarios: ``POST /tasks`` flat out (the quick-start task; every request authenticated,
validated, inserted and audited), ``GET /tasks/{id}`` flat out, paced at ``--read-rates``
(latency at a given load rather than at saturation) and with one client, ``GET /agents/me``
(authentication alone), and the token bucket's cost per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.ratelimit import RateLimiter
from engine.examples import QUICK_START_PARAMS, quick_start_pipeline
from ops.embedded_pg import EmbeddedPostgres
from tests.support import ADMIN_TOKEN, Cluster, auth

# The quick-start pipeline as a `once` task far in the future: created, never run.
TASK = {
    "title": "Weekday briefing",
    "schedule_kind": "once",
    "schedule_expr": "2030-01-01T08:30:00",
    "timezone": "Europe/Chisinau",
    "payload": {"params": dict(QUICK_START_PARAMS), "pipeline": quick_start_pipeline()},
}


@dataclass
class Result:
    name: str
    tool: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.name:<24} c={self.concurrency:<3} {self.rps:8.1f} req/s  "
            f"p50 {self.p50_ms:6.2f} ms  p90 {self.p90_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  "
            f"n={self.requests} statuses={self.statuses} ({self.tool})"
        )


@contextmanager
def database() -> Iterator[str]:
    """``DATABASE_URL``, or a private embedded cluster with fsync on."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    home = Path(tempfile.mkdtemp(prefix="ordinaut-bench-"))
    cluster = EmbeddedPostgres(home, fast=False)
    try:
        yield cluster.start()
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class Scenario:
    """One load: ``rate`` (requests/s in total) paces the clients; None drives them flat out."""

    name: str
    path: str
    concurrency: int
    body: bytes | None = None
    rate: float | None = None

    @property
    def label(self) -> str:
        return self.name + (f" @{self.rate:.0f}/s" if self.rate else "")


def run_hey(scenario: Scenario, base: str, headers: dict[str, str], seconds: float) -> Result:
    argv = ["hey", "-z", f"{seconds}s", "-c", str(scenario.concurrency)]
    if scenario.rate:
        argv += ["-q", f"{scenario.rate / scenario.concurrency:.2f}"]  # per client
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    if scenario.body is not None:
        with tempfile.NamedTemporaryFile(delete=False, suffix=".json") as handle:
            handle.write(scenario.body)
        argv += ["-m", "POST", "-T", "application/json", "-D", handle.name]
    argv.append(base + scenario.path)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else float("nan")

    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", output))
    counts = {code: int(n) for code, n in statuses.items()}
    return Result(
        scenario.label,
        "hey",
        scenario.concurrency,
        seconds,
        sum(counts.values()),
        number(r"Requests/sec:\s+([\d.]+)"),
        number(r"50%+ in ([\d.]+) secs") * 1000,
        number(r"90%+ in ([\d.]+) secs") * 1000,
        number(r"99%+ in ([\d.]+) secs") * 1000,
        counts,
    )


async def run_python(
    scenario: Scenario, base: str, headers: dict[str, str], seconds: float
) -> Result:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    began = time.perf_counter()
    deadline = began + seconds
    interval = scenario.concurrency / scenario.rate if scenario.rate else 0.0
    limits = httpx.Limits(
        max_connections=scenario.concurrency, max_keepalive_connections=scenario.concurrency
    )
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:

        async def loop() -> None:
            next_at = time.perf_counter()
            while time.perf_counter() < deadline:
                if interval:
                    next_at += interval
                started = time.perf_counter()
                if scenario.body is None:
                    response = await client.get(scenario.path)
                else:
                    response = await client.post(
                        scenario.path,
                        content=scenario.body,
                        headers={"content-type": "application/json"},
                    )
                latencies.append(time.perf_counter() - started)
                statuses[str(response.status_code)] += 1
                if interval:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        await asyncio.gather(*(loop() for _ in range(scenario.concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(
        scenario.label,
        "python",
        scenario.concurrency,
        seconds,
        len(latencies),
        len(latencies) / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        dict(statuses),
    )


def drive(tool: str, scenario: Scenario, base: str, token: str, seconds: float) -> Result:
    headers = auth(token)
    if tool == "hey":
        return run_hey(scenario, base, headers, seconds)
    return asyncio.run(run_python(scenario, base, headers, seconds))


def pick_tool(requested: str) -> str:
    if requested != "auto":
        return requested
    return "hey" if shutil.which("hey") else "python"


def token_bucket_cost_ns() -> float:
    limiter = RateLimiter(10**9)
    runs = 200_000
    return timeit.timeit(lambda: limiter.acquire("agent"), number=runs) / runs * 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--read-concurrency", type=int, default=8)
    parser.add_argument(
        "--read-rates",
        type=float,
        nargs="*",
        default=[200.0, 400.0],
        help="paced GET /tasks/{id} runs (requests/s): latency at a given load",
    )
    parser.add_argument("--tool", choices=("auto", "hey", "python"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    tool = pick_tool(args.tool)
    results: list[Result] = []
    with database() as url, tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(url, Path(workdir), {"ORDINAUT_RATE_LIMIT_PER_MINUTE": "0"})
        migrated = cluster.run("migrate")
        if migrated.returncode != 0:
            print(migrated.stderr, file=sys.stderr)
            return 1
        try:
            api = cluster.api()
            base = f"http://127.0.0.1:{api.port}"
            with httpx.Client(base_url=base, headers=auth(ADMIN_TOKEN)) as admin:
                agent = admin.post(
                    "/agents",
                    json={"name": f"bench-{os.getpid()}", "scopes": ["tasks:read", "tasks:write"]},
                ).json()
                token = agent["token"]
                with httpx.Client(base_url=base, headers=auth(token)) as client:
                    task_id = client.post("/tasks", json=TASK).json()["id"]
                    for _ in range(200):  # warm up the process and the pool
                        client.get(f"/tasks/{task_id}")
            body = json.dumps(TASK).encode()
            reads = args.read_concurrency
            scenarios = [
                Scenario("POST /tasks", "/tasks", args.create_concurrency, body),
                Scenario("GET /tasks/{id}", f"/tasks/{task_id}", reads),
                *(
                    Scenario("GET /tasks/{id}", f"/tasks/{task_id}", reads, rate=rate)
                    for rate in args.read_rates
                ),
                Scenario("GET /tasks/{id}", f"/tasks/{task_id}", 1),
                Scenario("GET /agents/me", "/agents/me", reads),
            ]
            for scenario in scenarios:
                results.append(drive(tool, scenario, base, token, args.seconds))
        finally:
            cluster.stop_all()
    print(
        f"machine: {os.cpu_count()} cores; database: "
        f"{'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded, fsync on'}"
    )
    for result in results:
        print(result.line())
    print(f"token bucket: {token_bucket_cost_ns():.0f} ns per request")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
