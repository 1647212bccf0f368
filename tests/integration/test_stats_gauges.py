"""The database gauges: store/stats.py queries and the scheduler's GaugeRefresher."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from observability import metrics
from scheduler.gauges import GaugeRefresher
from store import agents as agents_store
from store import due_work as due_work_store
from store import stats
from store import workers as workers_store
from store.db import Connection, connect, create_pool
from tests.factories import make_task


async def add_task(conn: Connection, owner: Any) -> dict:
    """An event task: it never expands on its own, so the test controls its due_work."""
    return await make_task(conn, owner, schedule_kind="event", schedule_expr="tests.gauges")


async def add_due_work(conn: Connection, task_id: Any, *offsets_seconds: float) -> None:
    """One queued run per offset from now (negative: already due)."""
    now = datetime.now(UTC)
    await due_work_store.insert_occurrences(
        conn,
        [
            due_work_store.Occurrence(
                run_id=uuid.uuid4(),
                task_id=task_id,
                scheduled_for=now + timedelta(seconds=s),
                priority=5,
                lock_key=None,
            )
            for s in offsets_seconds
        ],
    )


async def seed(conn: Connection) -> None:
    agent = await agents_store.insert_agent(conn, name=f"gauges-{uuid.uuid4().hex[:6]}", scopes=[])
    first = await add_task(conn, agent["id"])
    second = await add_task(conn, agent["id"])
    await add_due_work(conn, first["id"], -30, -10, 3600)  # two ready, one in the future
    await add_due_work(conn, second["id"], -20)
    await workers_store.register_worker(
        conn, worker_id=f"w-{uuid.uuid4().hex[:6]}", host="h", pid=1, concurrency=4
    )


async def test_queue_stats_count_ready_runs_and_the_oldest_age(conn):
    before = await stats.queue_stats(conn)
    await seed(conn)
    after = await stats.queue_stats(conn)
    assert after.ready == before.ready + 3
    # now() is the transaction's start, a little before the rows were made.
    assert 25 < after.oldest_age_seconds < 45


async def test_queue_stats_on_an_empty_queue_are_zero(fresh_db):
    conn = await connect(fresh_db)
    async with conn:
        assert await stats.queue_stats(conn) == stats.QueueStats(0, 0.0)
        assert await stats.tasks_by_status(conn) == dict.fromkeys(stats.TASK_STATUSES, 0)
        assert await stats.live_workers(conn, silent_seconds=15) == 0


async def test_the_ready_count_reads_only_a_ready_runs_index(conn):
    """The queue query's predicate implies the partial indexes' (queued or failed rows): the
    planner answers it from one of them without touching rows that are not ready. Which one
    it picks (``due_work_next_due`` or a fair-lease index with the same predicate) is a
    costing tie on a small table, so any of them will do; a sequential scan will not."""
    await seed(conn)
    cursor = await conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'due_work'"
        " AND indexdef LIKE '%WHERE (state = ANY%'"
    )
    ready_indexes = {row["indexname"] for row in await cursor.fetchall()}
    assert "due_work_next_due" in ready_indexes
    await conn.execute("SET LOCAL enable_seqscan = off")
    cursor = await conn.execute("EXPLAIN " + stats.QUEUE_STATS_QUERY)
    plan = "\n".join(row["QUERY PLAN"] for row in await cursor.fetchall())
    # A plain, index-only or bitmap index scan: each reads only the index's (ready) rows.
    scans = re.findall(r"Index (?:Only )?Scan using (\w+) on due_work", plan)
    scans += re.findall(r"Bitmap Index Scan on (\w+)", plan)
    assert scans and set(scans) <= ready_indexes, plan
    assert "Seq Scan" not in plan, plan


async def test_tasks_by_status_counts_every_status(conn):
    before = await stats.tasks_by_status(conn)
    await seed(conn)
    after = await stats.tasks_by_status(conn)
    assert set(after) == set(stats.TASK_STATUSES)
    assert after["active"] == before["active"] + 2
    assert {k: v for k, v in after.items() if k != "active"} == {
        k: v for k, v in before.items() if k != "active"
    }


async def test_live_workers_ignores_silent_ones(conn):
    before = await stats.live_workers(conn, silent_seconds=15)
    await seed(conn)
    assert await stats.live_workers(conn, silent_seconds=15) == before + 1


async def test_the_refresher_sets_the_scheduler_gauges(fresh_db):
    conn = await connect(fresh_db)
    async with conn:
        await seed(conn)
    registry = CollectorRegistry()
    metrics.register("scheduler", registry)
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    try:
        await GaugeRefresher(pool).refresh_all()
    finally:
        await pool.close()
    value = registry.get_sample_value
    assert value("ordinaut_due_work_ready") == 3
    age = value("ordinaut_due_work_oldest_age_seconds")
    assert age is not None and 29 < age < 60
    assert value("ordinaut_workers_live") == 1
    assert value("ordinaut_tasks", {"status": "active"}) == 2
    assert value("ordinaut_tasks", {"status": "paused"}) == 0


async def test_a_failed_refresh_keeps_the_last_values(caplog):
    registry = CollectorRegistry()
    metrics.register("scheduler", registry)
    metrics.DUE_WORK_READY.set(7)
    metrics.TASKS.labels("active").set(5)
    never_opened = create_pool("postgresql://127.0.0.1:1/none")
    await GaugeRefresher(never_opened).refresh_all()
    assert registry.get_sample_value("ordinaut_due_work_ready") == 7
    assert registry.get_sample_value("ordinaut_tasks", {"status": "active"}) == 5
    assert "not refreshed" in caplog.text
