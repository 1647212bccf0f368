"""API rate: ``POST /tasks`` and ``GET /tasks/{id}`` through one real ``ordinaut api``
process (rate limiting off) on a fresh database of the benchmark's server, for a fixed time
with a fixed number of requests in flight.

The load comes from the API benchmark (``tests/load/api_bench.py``): ``hey`` when it is
installed, else its Python generator, which runs on the same cores as the API and takes CPU
from it (its figures are then a floor).

    python -m tests.load.api_rate --seconds 10 --concurrency 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from tests.load.api_bench import TASK, Result, Scenario, drive, pick_tool
from tests.load.server import BenchServer, bench_server
from tests.support import ADMIN_TOKEN, auth, cluster


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

    @classmethod
    def of(cls, result: Result) -> Rate:
        return cls(
            result.name,
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
        tool = pick_tool("auto")
        body = json.dumps(TASK).encode()
        create = Scenario("POST /tasks", "/tasks", concurrency, body)
        read = Scenario("GET /tasks/{id}", f"/tasks/{task_id}", concurrency)
        return [
            _expect(Rate.of(drive(tool, create, base, ADMIN_TOKEN, seconds)), "201"),
            _expect(Rate.of(drive(tool, read, base, ADMIN_TOKEN, seconds)), "200"),
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
