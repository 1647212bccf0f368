"""API rate: ``POST /tasks`` and ``GET /tasks/{id}`` through one real ``ordinaut api``
process (uvicorn, rate limiting off) on a fresh database, for a fixed time with a fixed
number of requests in flight.

The load comes from ``tests/load/api_bench.py`` (the API benchmark, which drives ``hey``
when it is installed) when that module is present, else from the small httpx generator
below. A generator in Python runs on the same cores as the API and takes CPU from it: its
figures are a floor.

    python -m tests.load.api_rate --seconds 10 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.load.figures import percentile
from tests.load.server import BenchServer, bench_server
from tests.support import ADMIN_TOKEN, auth, cluster

# A realistic task: a once schedule in a zone and a two-step templated pipeline.
TASK: dict[str, Any] = {
    "title": "Weekday briefing",
    "schedule_kind": "once",
    "schedule_expr": "2030-01-01T08:30:00",
    "timezone": "Europe/Chisinau",
    "payload": {
        "params": {"city": "Chisinau"},
        "pipeline": [
            {"id": "greet", "uses": "debug.echo", "with": {"message": "Hi ${params.city}"}},
            {"id": "log", "uses": "debug.log", "with": {"message": "${params.city}"}},
        ],
    },
}


@dataclass
class Rate:
    route: str
    tool: str
    concurrency: int
    seconds: float
    requests: int
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    statuses: dict[str, int] = field(default_factory=dict)


async def python_load(
    route: str, url: str, *, seconds: float, concurrency: int, body: bytes | None
) -> Rate:
    """``concurrency`` loops sending requests to ``url`` for ``seconds`` (POST when a body is
    given)."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {**auth(ADMIN_TOKEN), "content-type": "application/json"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def user() -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                if body is None:
                    response = await client.get(url)
                else:
                    response = await client.post(url, content=body)
                latencies.append(time.perf_counter() - began)
                statuses[str(response.status_code)] += 1

        began = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = [s * 1000 for s in latencies]
    return Rate(
        route,
        "python",
        concurrency,
        elapsed,
        len(ms),
        len(ms) / elapsed,
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        percentile(ms, 0.99),
        dict(statuses),
    )


def _api_bench() -> Any:
    """The API benchmark module when it is present (another issue's), else None."""
    try:
        return importlib.import_module("tests.load.api_bench")
    except ImportError:
        return None


def drive(route: str, url: str, *, seconds: float, concurrency: int, body: bytes | None) -> Rate:
    """One scenario through ``api_bench.drive`` (hey when installed) or ``python_load``."""
    api_bench = _api_bench()
    if api_bench is None:
        return asyncio.run(
            python_load(route, url, seconds=seconds, concurrency=concurrency, body=body)
        )
    tool = api_bench.pick_tool("auto")
    result = api_bench.drive(tool, route, url, ADMIN_TOKEN, seconds, concurrency, body)
    return Rate(
        route,
        result.tool,
        result.concurrency,
        result.seconds,
        result.requests,
        result.rps,
        result.p50_ms,
        result.p90_ms,
        result.p99_ms,
        dict(result.statuses),
    )


def _expect(rate: Rate, status: str) -> Rate:
    unexpected = {code: n for code, n in rate.statuses.items() if code != status}
    if unexpected or not rate.requests:
        raise RuntimeError(f"{rate.route}: unexpected answers {rate.statuses}")
    return rate


def measure(server: BenchServer, *, seconds: float, concurrency: int) -> list[Rate]:
    """Create tasks for ``seconds``, then read one task for ``seconds``."""
    with (
        server.database("api") as url,
        tempfile.TemporaryDirectory() as workdir,
        cluster(url, Path(workdir), ORDINAUT_LOG_LEVEL="WARNING") as running,
    ):
        api = running.api(ORDINAUT_RATE_LIMIT_PER_MINUTE="0")
        base = f"http://127.0.0.1:{api.port}"
        with httpx.Client(base_url=base, headers=auth(ADMIN_TOKEN), timeout=30) as client:
            task_id = client.post("/tasks", json=TASK).json()["id"]
            for _ in range(200):  # warm up the process and its pool
                client.get(f"/tasks/{task_id}")
        server.checkpoint()
        body = json.dumps(TASK).encode()
        common: dict[str, Any] = {"seconds": seconds, "concurrency": concurrency}
        return [
            _expect(drive("POST /tasks", f"{base}/tasks", body=body, **common), "201"),
            _expect(
                drive("GET /tasks/{id}", f"{base}/tasks/{task_id}", body=None, **common), "200"
            ),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with bench_server() as server:
        results = measure(server, seconds=args.seconds, concurrency=args.concurrency)
    for result in results:
        print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
