"""Start precision: how late does a scheduled run start when workers are idle?

Run: ``python -m tests.load.start_precision [--seconds 60]``. Starts real processes (API,
one scheduler, two workers of concurrency 50) on a fresh database and creates RRULE tasks
firing every few seconds, then reads ``started_at - scheduled_for`` of every scheduled run
from the database. Two shapes:

- *spread*: 100 tasks, ten per second (``FREQ=SECONDLY;INTERVAL=10`` with staggered DTSTARTs);
- *burst*: 100 tasks due at the same instant every 5 seconds.

The scheduler materialises runs ``ORDINAUT_SCHEDULER_HORIZON_SECONDS`` ahead; an idle worker
sleeps until the earliest ``run_at`` (woken by NOTIFY when new work lands) and leases it then.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from store.db import connect
from tests.load.scheduling_db import bench_database
from tests.support import api_client, cluster

PIPELINE = {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def delays(url: str, tag: str) -> list[float]:
    conn = await connect(url)
    async with conn:
        cursor = await conn.execute(
            """
            SELECT extract(epoch FROM r.started_at - r.scheduled_for) AS delay
              FROM runs r JOIN tasks t ON t.id = r.task_id
             WHERE r.trigger = 'schedule' AND r.attempt = 1 AND t.title = %s
            """,
            (tag,),
        )
        return [float(row["delay"]) for row in await cursor.fetchall()]


async def scenario(client: Any, url: str, tag: str, seconds: float, *, burst: bool) -> None:
    base = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
    created = []
    for i in range(100):
        start = base if burst else base + timedelta(seconds=i % 10)
        rule = "FREQ=SECONDLY;INTERVAL=5" if burst else "FREQ=SECONDLY;INTERVAL=10"
        response = await client.post(
            "/tasks",
            json={
                "title": tag,
                "schedule_kind": "rrule",
                "schedule_expr": f"DTSTART:{start:%Y%m%dT%H%M%SZ}\nRRULE:{rule}",
                "payload": PIPELINE,
            },
        )
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    await asyncio.sleep(15 + seconds)  # a benchmark: let the schedule run
    for task_id in created:
        await client.post(f"/tasks/{task_id}/pause")
    samples = await delays(url, tag)
    ms = [d * 1000 for d in samples]
    print(
        f"{tag:>6}: {len(ms)} runs; start delay p50 {percentile(ms, 0.5):.1f} ms, "
        f"p90 {percentile(ms, 0.9):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms; "
        f"{sum(1 for d in ms if d > 100)} over 100 ms"
    )


async def run(seconds: float) -> None:
    async with bench_database() as url:
        with tempfile.TemporaryDirectory() as workdir, cluster(url, Path(workdir)) as running:
            api = running.api(ORDINAUT_RATE_LIMIT_PER_MINUTE="0")
            running.scheduler()
            # the production poll interval (the test cluster's default is shorter)
            running.worker(concurrency=50, ORDINAUT_POLL_SECONDS="1")
            running.worker(concurrency=50, ORDINAUT_POLL_SECONDS="1")
            async with api_client(api) as client:
                await scenario(client, url, "spread", seconds, burst=False)
                await scenario(client, url, "burst", seconds, burst=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per scenario")
    asyncio.run(run(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
