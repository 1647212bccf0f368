"""The scheduler against real Postgres, with a controlled clock: horizon, idempotence across
schedulers, restarts under each catch-up policy, completion, and the indexed tick query."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from engine.schedules import parse_schedule
from engine.settings import Settings
from scheduler.tick import Scheduler
from store import agents as agents_store
from store import due_work as due_work_store
from store import tasks as tasks_store
from store.db import Connection, connect, create_pool
from tests.factories import make_task

SETTINGS = Settings(scheduler_horizon_seconds=10, catch_up_grace_seconds=60)
# Whole minutes in the past, so every occurrence is also "due" for the database's now().
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[AsyncConnectionPool[Connection]]:
    pool = create_pool(fresh_db, max_size=8)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


async def owner(conn: Connection) -> Any:
    agent = await agents_store.insert_agent(
        conn, name=f"a-{uuid.uuid4().hex[:8]}", scopes=["admin"]
    )
    return agent["id"]


async def add_task(
    conn: Connection,
    owner_id: Any,
    kind: str,
    expr: str,
    *,
    created: datetime = T0,
    catch_up: str = "latest",
    timezone: str = "UTC",
    concurrency_key: str | None = None,
) -> Any:
    document = {
        "title": "t",
        "schedule_kind": kind,
        "schedule_expr": expr,
        "timezone": timezone,
        "catch_up": catch_up,
        "concurrency_key": concurrency_key,
        "payload": {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]},
    }
    task = await make_task(conn, owner_id, now=created, **document)
    return task["id"]


async def occurrences(conn: Connection, task_id: Any) -> list[datetime]:
    cursor = await conn.execute(
        """
        SELECT scheduled_for FROM due_work WHERE task_id = %s AND trigger = 'schedule'
        UNION ALL
        SELECT scheduled_for FROM runs WHERE task_id = %s AND trigger = 'schedule'
        ORDER BY 1
        """,
        (task_id, task_id),
    )
    return [row["scheduled_for"] for row in await cursor.fetchall()]


async def task_row(conn: Connection, task_id: Any) -> dict[str, Any]:
    cursor = await conn.execute(
        "SELECT status, expanded_until, next_expand_at FROM tasks WHERE id = %s", (task_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


def minutes(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


async def test_a_tick_materialises_what_falls_within_the_horizon(pool) -> None:
    async with pool.connection() as conn:
        owner_id = await owner(conn)
        task = await add_task(conn, owner_id, "cron", "* * * * *", concurrency_key="k")
    clock = Clock(T0 + timedelta(seconds=45))
    scheduler = Scheduler(SETTINGS, pool, clock=clock)
    assert (await scheduler.tick()).occurrences == 0  # 00:55 is beyond the horizon
    clock.now = T0 + timedelta(seconds=52)
    result = await scheduler.tick()
    assert (result.tasks, result.occurrences) == (1, 1)
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == minutes(1)
        state = await task_row(conn, task)
    assert state["expanded_until"] == clock.now + timedelta(seconds=10)
    assert state["next_expand_at"] == T0 + timedelta(minutes=2)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT concurrency_key FROM due_work WHERE task_id = %s", (task,)
        )
        assert await cursor.fetchall() == [{"concurrency_key": f"{owner_id}/k"}]  # the owner's


async def test_three_schedulers_never_duplicate_an_occurrence(pool) -> None:
    async with pool.connection() as conn:
        agent = await owner(conn)
        tasks = [await add_task(conn, agent, "cron", "* * * * *") for _ in range(120)]
        tasks += [
            await add_task(conn, agent, "rrule", "FREQ=MINUTELY;INTERVAL=2") for _ in range(60)
        ]
    clock = Clock(T0)
    schedulers = [Scheduler(SETTINGS, pool, clock=clock, batch_size=25) for _ in range(3)]
    for step in range(1, 31):  # ten minutes in 20-second steps, all three ticking at once
        clock.now = T0 + timedelta(seconds=20 * step)
        await asyncio.gather(*(s.tick() for s in schedulers))
    async with pool.connection() as conn:
        for task in tasks[:120]:
            assert await occurrences(conn, task) == minutes(*range(1, 11))
        for task in tasks[120:]:
            assert await occurrences(conn, task) == minutes(2, 4, 6, 8, 10)


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        # down from 00:05 to 10:00; the grace is 60 s, so 09:00 is late but not missed
        ("latest", [1, 8, 9, 10]),
        ("all", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        ("none", [1, 9, 10]),
    ],
)
async def test_a_restart_follows_catch_up(pool, catch_up: str, expected: list[int]) -> None:
    async with pool.connection() as conn:
        task = await add_task(conn, await owner(conn), "cron", "* * * * *", catch_up=catch_up)
    before = Scheduler(SETTINGS, pool, clock=Clock(T0 + timedelta(seconds=55)))
    await before.tick()  # materialises 00:01, then "crashes"
    after = Scheduler(SETTINGS, pool, clock=Clock(T0 + timedelta(minutes=10)))
    await after.tick()
    await after.tick()  # a second tick changes nothing
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == minutes(*expected)


async def test_catch_up_all_works_through_a_long_backlog_in_batches(pool) -> None:
    async with pool.connection() as conn:
        task = await add_task(conn, await owner(conn), "cron", "* * * * *", catch_up="all")
    scheduler = Scheduler(SETTINGS, pool, clock=Clock(T0 + timedelta(hours=1, seconds=5)))
    await scheduler.tick()
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == minutes(*range(1, 61))


async def _finish_all(conn: Connection, task: Any) -> None:
    """Run every waiting occurrence to success, as a worker would."""
    async with conn.transaction():
        leased = await due_work_store.lease_batch(conn, worker_id="w", limit=100, lease_seconds=30)
    done = [
        due_work_store.Finished(
            run_id=row["id"],
            attempt=row["attempt"],
            agent_id=row["agent_id"],
            status="succeeded",
            duration_ms=1,
            steps=[],
            error=None,
        )
        for row in leased
        if row["task_id"] == str(task)
    ]
    async with conn.transaction():
        await due_work_store.finish_runs(conn, worker_id="w", runs=done)
        await tasks_store.complete_finished_tasks(conn, [task])


async def test_count_exhausted_completes_once_the_last_run_ends(pool) -> None:
    start = (T0 + timedelta(minutes=1)).strftime("%Y%m%dT%H%M%SZ")
    async with pool.connection() as conn:
        task = await add_task(
            conn, await owner(conn), "rrule", f"DTSTART:{start}\nRRULE:FREQ=MINUTELY;COUNT=2"
        )
    await Scheduler(SETTINGS, pool, clock=Clock(T0 + timedelta(minutes=1, seconds=55))).tick()
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == minutes(1, 2)
        state = await task_row(conn, task)
        assert (state["status"], state["next_expand_at"]) == ("active", None)
        await _finish_all(conn, task)
        assert (await task_row(conn, task))["status"] == "completed"


async def test_until_passed_with_nothing_to_run_completes_at_the_tick(pool) -> None:
    until = (T0 + timedelta(minutes=3)).strftime("%Y%m%dT%H%M%SZ")
    async with pool.connection() as conn:
        task = await add_task(
            conn, await owner(conn), "rrule", f"FREQ=MINUTELY;UNTIL={until}", catch_up="none"
        )
    await Scheduler(SETTINGS, pool, clock=Clock(T0 + timedelta(minutes=30))).tick()
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == []
        assert (await task_row(conn, task))["status"] == "completed"


async def test_dst_gap_in_the_scheduler(pool) -> None:
    """Cron 02:30 New York on the spring-forward night runs once, at 03:00 EDT."""
    created = datetime(2026, 3, 7, 12, tzinfo=UTC)
    async with pool.connection() as conn:
        task = await add_task(
            conn,
            await owner(conn),
            "cron",
            "30 2 * * *",
            created=created,
            timezone="America/New_York",
            catch_up="all",
        )
    await Scheduler(SETTINGS, pool, clock=Clock(datetime(2026, 3, 9, 12, tzinfo=UTC))).tick()
    async with pool.connection() as conn:
        assert await occurrences(conn, task) == [
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT, the end of the gap
            datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
        ]


async def test_the_tick_query_uses_its_partial_index(fresh_db: str) -> None:
    conn = await connect(fresh_db)
    try:
        agent = await owner(conn)
        # 3000 tasks far in the future and a few due: the plan must not scan them all.
        await conn.execute(
            """
            INSERT INTO tasks (created_by, title, schedule_kind, schedule_expr, timezone,
                               payload, expanded_until, next_expand_at)
            SELECT %s, 't', 'cron', '0 0 1 1 *', 'UTC', '{"pipeline": []}',
                   now(), now() + make_interval(days => g)
              FROM generate_series(1, 3000) g
            """,
            (agent,),
        )
        await conn.execute("ANALYZE tasks")
        cursor = await conn.execute(
            "EXPLAIN " + tasks_store.LOCK_DUE_FOR_EXPANSION,
            {
                "horizon_end": datetime.now(UTC),
                "limit": 500,
                "after_at": datetime.now(UTC) - timedelta(days=1),
                "after_id": uuid.uuid4(),
            },
        )
        plan = "\n".join(row["QUERY PLAN"] for row in await cursor.fetchall())
    finally:
        await conn.close()
    assert "tasks_due_for_expansion" in plan, plan
    assert "Seq Scan" not in plan, plan


# DTSTART-less RRULEs created at many minutes (they share parsed schedules by signature),
# cron in a few zones, several priorities and concurrency keys: grouped, planned and
# written together, each task still gets exactly its own schedule's occurrences.
GROUPED_SCHEDULES = [
    ("rrule", "FREQ=MINUTELY;INTERVAL=7", "Europe/Chisinau"),
    ("rrule", "FREQ=HOURLY;BYMINUTE=0,20,40", "UTC"),
    ("rrule", "FREQ=DAILY", "America/New_York"),
    ("rrule", "FREQ=MINUTELY;INTERVAL=3;COUNT=500", "UTC"),
    ("cron", "*/5 * * * *", "Asia/Kolkata"),
    ("cron", "*/5 * * * *", "UTC"),
]


async def test_grouped_batches_give_every_task_its_own_occurrences(pool) -> None:
    now = T0
    horizon = timedelta(minutes=40)
    settings = Settings(scheduler_horizon_seconds=horizon.total_seconds())
    expected: dict[Any, list[datetime]] = {}
    inherited: dict[Any, tuple[int, str | None]] = {}
    async with pool.connection() as conn:
        owner_id = await owner(conn)
        for n in range(120):
            kind, expr, zone = GROUPED_SCHEDULES[n % len(GROUPED_SCHEDULES)]
            created = now - timedelta(days=3, minutes=n * 37)
            task = await add_task(conn, owner_id, kind, expr, created=created, timezone=zone)
            key = f"k{n % 3}" if n % 4 else None
            priority = 1 + n % 9
            await conn.execute(
                """
                UPDATE tasks SET priority = %s, concurrency_key = %s,
                       expanded_until = %s, next_expand_at = %s
                 WHERE id = %s
                """,
                (priority, key, now - timedelta(seconds=1), now, task),
            )
            schedule = parse_schedule(kind, expr, zone, anchor=created.replace(second=0))
            assert schedule is not None
            expected[task] = list(
                takewhile(
                    lambda at: at <= now + horizon,
                    schedule.occurrences_after(now - timedelta(seconds=1)),
                )
            )
            inherited[task] = (priority, f"{owner_id}/{key}" if key else None)
    scheduler = Scheduler(settings, pool, clock=Clock(now), batch_size=25)
    result = await scheduler.tick()
    assert result.tasks == 120
    assert result.occurrences == sum(len(at) for at in expected.values())
    # Three RRULEs shared by signature (the INTERVAL=7 one by its phase, DAILY by its time
    # of day), the COUNT one per anchor (20 tasks), two cron schedules.
    assert len(scheduler._schedules) < 20 + 2 + 3 * 7 + 20
    async with pool.connection() as conn:
        for task, times in expected.items():
            assert await occurrences(conn, task) == times, task
        cursor = await conn.execute(
            "SELECT DISTINCT task_id, priority, concurrency_key FROM due_work"
        )
        assert cursor.rowcount == sum(1 for times in expected.values() if times)
        for row in await cursor.fetchall():
            assert (row["priority"], row["concurrency_key"]) == inherited[row["task_id"]]
