"""Start latency through the real processes (API, scheduler, two workers of concurrency 50,
the production poll interval) on a fresh database:

- ``run_now``: ``POST /tasks/{id}/run_now`` a few hundred times, spaced so that the workers
  are idle each time; the latency of a run is ``runs.started_at - runs.scheduled_for`` (both
  written by PostgreSQL: ``scheduled_for`` is the clock when the API inserted the run,
  ``started_at`` when a worker's lease statement took it), i.e. what the
  ``ordinaut_run_start_delay_seconds`` histogram observes. The wall-clock time from sending
  the POST to ``started_at`` (HTTP and the API's own work included) is reported beside it.
- scheduled: ``once`` tasks created through the API, due at instants spread over a window a
  few seconds ahead; the delay of each is ``started_at - scheduled_for`` from ``runs``.

    python -m tests.load.latency --samples 300 --tasks 200 --spread 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from store.db import connect
from tests.load.figures import Distribution
from tests.load.server import BenchServer, bench_server
from tests.support import Cluster, api_client, cluster

PIPELINE = {"pipeline": [{"id": "echo", "uses": "debug.echo", "with": {"n": "${run.attempt}"}}]}
QUIET = {"ORDINAUT_LOG_LEVEL": "WARNING"}
WORKERS = 2


@dataclass
class RunNowLatency:
    start: Distribution  # started_at - scheduled_for
    wall: Distribution  # started_at - the moment the POST was sent
    gap_seconds: float
    busy: int  # samples posted before the previous run had finished (should be 0)


@dataclass
class ScheduledDelay:
    tasks: int
    spread_seconds: float
    delay: Distribution  # started_at - scheduled_for
    created_with_seconds_to_spare: float  # the last POST /tasks answered this long before t0


@contextmanager
def processes(url: str, workdir: Path) -> Iterator[Cluster]:
    """API, one scheduler and two workers (concurrency 50, poll 1 s) on ``url``."""
    with cluster(url, workdir, **QUIET) as running:
        running.api(ORDINAUT_RATE_LIMIT_PER_MINUTE="0")
        running.scheduler()
        for _ in range(WORKERS):
            running.worker(concurrency=50, ORDINAUT_POLL_SECONDS="1")
        yield running


async def _runs(url: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    conn = await connect(url)
    async with conn:
        cursor = await conn.execute(
            "SELECT id::text, scheduled_for, started_at, finished_at FROM runs "
            "WHERE id = ANY(%s::uuid[])",
            (run_ids,),
        )
        return {row["id"]: row for row in await cursor.fetchall()}


async def _wait_runs(url: str, run_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(rows := await _runs(url, run_ids)) < len(run_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(rows)} of {len(run_ids)} runs finished in time")
        await asyncio.sleep(0.2)
    return rows


async def _create(client: httpx.AsyncClient, document: dict[str, Any]) -> str:
    response = await client.post("/tasks", json=document)
    if response.status_code != 201:
        raise RuntimeError(f"POST /tasks: {response.status_code} {response.text}")
    return str(response.json()["id"])


async def _wait_workers(url: str, count: int, timeout: float = 60.0) -> None:
    """The workers have registered (they start after the API is ready)."""
    conn = await connect(url)
    async with conn:
        deadline = time.monotonic() + timeout
        while True:
            cursor = await conn.execute("SELECT count(*) AS n FROM workers")
            row = await cursor.fetchone()
            if row and row["n"] >= count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not register in time")
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # let them reach their idle wait


async def _post_run_nows(
    client: httpx.AsyncClient, task_id: str, count: int, gap: float
) -> list[tuple[str, float]]:
    """POST run_now ``count`` times, ``gap`` seconds apart (±20 %, so as not to beat in
    time with the workers' timers); returns (run id, time the POST was sent)."""
    posted: list[tuple[str, float]] = []
    for _ in range(count):
        sent = time.time()
        response = await client.post(f"/tasks/{task_id}/run_now")
        if response.status_code != 202:
            raise RuntimeError(f"run_now: {response.status_code} {response.text}")
        posted.append((str(response.json()["id"]), sent))
        await asyncio.sleep(gap * random.uniform(0.8, 1.2))
    return posted


async def run_now_latency(
    client: httpx.AsyncClient, url: str, *, samples: int, gap: float, warmup: int = 10
) -> RunNowLatency:
    """POST run_now ``samples`` times, ``gap`` seconds apart, once the workers are up and
    ``warmup`` uncounted runs have finished."""
    task_id = await _create(
        client,
        {
            "title": "bench run_now",
            "schedule_kind": "event",
            "schedule_expr": "bench.run_now",
            "payload": PIPELINE,
            "max_retries": 0,
        },
    )
    await _wait_workers(url, WORKERS)
    warm = await _post_run_nows(client, task_id, warmup, gap)
    await _wait_runs(url, [run_id for run_id, _ in warm], timeout=60)
    posted = await _post_run_nows(client, task_id, samples, gap)
    rows = await _wait_runs(url, [run_id for run_id, _ in posted], timeout=60)
    start, wall, busy = [], [], 0
    for i, (run_id, sent) in enumerate(posted):
        row = rows[run_id]
        start.append((row["started_at"] - row["scheduled_for"]).total_seconds())
        wall.append(row["started_at"].timestamp() - sent)
        if i and rows[posted[i - 1][0]]["finished_at"].timestamp() > sent:
            busy += 1
    return RunNowLatency(Distribution.of_seconds(start), Distribution.of_seconds(wall), gap, busy)


async def scheduled_delay(
    client: httpx.AsyncClient, url: str, *, tasks: int, spread: float, lead: float = 10.0
) -> ScheduledDelay:
    """``tasks`` once tasks due at evenly spaced instants over ``spread`` seconds, the first
    ``lead`` seconds after the creations begin (they all exist before the first is due)."""
    first = datetime.now(UTC) + timedelta(seconds=lead)
    step = spread / max(1, tasks - 1)
    documents = [
        {
            "title": "bench scheduled",
            "schedule_kind": "once",
            "schedule_expr": (first + timedelta(seconds=i * step)).isoformat(),
            "payload": PIPELINE,
            "max_retries": 0,
        }
        for i in range(tasks)
    ]
    semaphore = asyncio.Semaphore(8)

    async def create(document: dict[str, Any]) -> str:
        async with semaphore:
            return await _create(client, document)

    task_ids = await asyncio.gather(*(create(d) for d in documents))
    spare = (first - datetime.now(UTC)).total_seconds()
    if spare <= 0:
        raise RuntimeError(f"creating {tasks} tasks took longer than the {lead} s lead")
    await asyncio.sleep(spare + spread)
    conn = await connect(url)
    async with conn:
        deadline = time.monotonic() + 60
        while True:
            cursor = await conn.execute(
                "SELECT scheduled_for, started_at FROM runs "
                "WHERE task_id = ANY(%s::uuid[]) AND trigger = 'schedule' AND attempt = 1",
                (task_ids,),
            )
            rows = await cursor.fetchall()
            if len(rows) >= tasks or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    if len(rows) < tasks:
        raise RuntimeError(f"only {len(rows)} of {tasks} scheduled runs finished in time")
    delays = [(row["started_at"] - row["scheduled_for"]).total_seconds() for row in rows]
    return ScheduledDelay(tasks, spread, Distribution.of_seconds(delays), spare)


async def measure(
    server: BenchServer, *, samples: int, gap: float, tasks: int, spread: float
) -> tuple[RunNowLatency, ScheduledDelay]:
    """Both measurements, one after the other, on the same processes."""
    with (
        server.database("latency") as url,
        tempfile.TemporaryDirectory() as workdir,
        processes(url, Path(workdir)) as running,
    ):
        server.checkpoint()
        async with api_client(running.processes[0]) as client:
            run_now = await run_now_latency(client, url, samples=samples, gap=gap)
            scheduled = await scheduled_delay(client, url, tasks=tasks, spread=spread)
    return run_now, scheduled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between run_now calls")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--spread", type=float, default=20.0)
    args = parser.parse_args()
    with bench_server() as server:
        run_now, scheduled = asyncio.run(
            measure(
                server, samples=args.samples, gap=args.gap, tasks=args.tasks, spread=args.spread
            )
        )
    print(json.dumps({"run_now": asdict(run_now), "scheduled": asdict(scheduled)}, indent=1))


if __name__ == "__main__":
    main()
