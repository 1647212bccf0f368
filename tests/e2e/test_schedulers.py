"""Real processes: three schedulers at once (and one killed and restarted) never duplicate
or skip an occurrence; events run pipelines that read the payload."""

from __future__ import annotations

import itertools
import signal
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from store.db import connect
from tests.support import api_client, cluster, eventually

pytestmark = pytest.mark.e2e

PIPELINE = {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": "${run.scheduled_for}"}}]}
FAST = {
    "ORDINAUT_SCHEDULER_TICK_SECONDS": "0.2",
    "ORDINAUT_SCHEDULER_HORIZON_SECONDS": "2",
    "ORDINAUT_CATCH_UP_GRACE_SECONDS": "60",
}


async def occurrences(database_url: str) -> dict[Any, list[Any]]:
    """Every scheduled occurrence per task, finished or not (duplicates kept)."""
    conn = await connect(database_url)
    try:
        cursor = await conn.execute(
            """
            SELECT task_id, scheduled_for FROM due_work WHERE trigger = 'schedule'
            UNION ALL
            SELECT task_id, scheduled_for FROM runs WHERE trigger = 'schedule'
            ORDER BY 1, 2
            """
        )
        found: dict[Any, list[Any]] = {}
        for row in await cursor.fetchall():
            found.setdefault(row["task_id"], []).append(row["scheduled_for"])
        return found
    finally:
        await conn.close()


async def succeeded(database_url: str) -> int:
    conn = await connect(database_url)
    try:
        cursor = await conn.execute("SELECT count(*) AS n FROM runs WHERE status = 'succeeded'")
        row = await cursor.fetchone()
        return int(row["n"]) if row else 0
    finally:
        await conn.close()


async def test_three_schedulers_and_a_restart_never_duplicate_or_skip(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, **FAST) as running:
        api = running.api()
        schedulers = [running.scheduler() for _ in range(3)]
        running.worker(concurrency=20)
        every_two_seconds: list[str] = []
        async with api_client(api) as client:
            for kind, expr in [("rrule", "FREQ=SECONDLY;INTERVAL=2")] * 30 + [
                ("cron", "* * * * *")
            ] * 10:
                created = await client.post(
                    "/tasks",
                    json={
                        "title": "tick",
                        "schedule_kind": kind,
                        "schedule_expr": expr,
                        "catch_up": "all",
                        "payload": PIPELINE,
                    },
                )
                assert created.status_code == 201, created.text
                if kind == "rrule":
                    every_two_seconds.append(created.json()["id"])
        await eventually(lambda: succeeded(fresh_db), until=lambda n: n >= 90, timeout=30)
        # kill -9 one scheduler mid-flight, start a fresh one, and keep going
        schedulers[0].signal(signal.SIGKILL)
        schedulers[0].popen.wait(timeout=10)
        schedulers.append(running.scheduler())
        await eventually(lambda: succeeded(fresh_db), until=lambda n: n >= 240, timeout=40)
        for process in schedulers[1:]:
            assert process.stop() == 0, process.output()[-2000:]
            assert "Traceback" not in process.output(), process.output()[-3000:]

    found = await occurrences(fresh_db)
    for times in found.values():
        assert [t for t, n in Counter(times).items() if n > 1] == [], "a duplicate occurrence"
    for task_id in every_two_seconds:
        times = found[uuid.UUID(task_id)]
        assert len(times) >= 5
        gaps = {b - a for a, b in itertools.pairwise(times)}
        assert gaps == {timedelta(seconds=2)}, "an occurrence was skipped"


async def test_an_event_runs_a_pipeline_that_reads_its_payload(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        running.worker(concurrency=4)
        async with api_client(api) as client:
            created = await client.post(
                "/tasks",
                json={
                    "title": "on order",
                    "schedule_kind": "event",
                    "schedule_expr": "orders.*.created",
                    "payload": {
                        "pipeline": [
                            {
                                "id": "e",
                                "uses": "debug.echo",
                                "with": {
                                    "order": "${event.payload.order_id}",
                                    "topic": "${event.topic}",
                                },
                            }
                        ]
                    },
                },
            )
            assert created.status_code == 201, created.text
            published = await client.post(
                "/events", json={"topic": "orders.eu.created", "payload": {"order_id": 42}}
            )
            assert published.status_code == 202
            run_id = published.json()["runs"][0]["run_id"]

            async def run() -> dict:
                return (await client.get(f"/runs/{run_id}")).json()

            finished = await eventually(run, until=lambda r: r["status"] == "succeeded")
            assert finished["trigger"] == "event"
            assert finished["steps"][0]["output"] == {"order": 42, "topic": "orders.eu.created"}
            task = (await client.get(f"/tasks/{created.json()['id']}")).json()
            assert task["status"] == "active"  # event tasks never complete
