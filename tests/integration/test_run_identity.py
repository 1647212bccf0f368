"""Which runs the (task, occurrence) uniqueness is about (issue 17, defect 8).

Concurrent ``run_now`` calls on one task answered 500 when two of them drew the same
``clock_timestamp()``: ``due_work_one_per_occurrence`` applied to manual runs too. It exists
to make schedule expansion idempotent, so it covers scheduled occurrences only; a manual,
event or retry run is identified by its id. A scheduled occurrence is therefore never
skipped because a manual run happened to draw its instant.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from store import due_work as q
from tests.factories import event_task, make_agent, make_task

INSTANT = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


async def owned_task(conn):
    agent, _ = await make_agent(conn)
    return await make_task(conn, agent["id"], **event_task())


async def manual_run_at(conn, task, at: datetime, trigger: str = "manual") -> str:
    row = await q.insert_manual_run(conn, run_id=uuid.uuid4(), task_id=task["id"], trigger=trigger)
    # Stand in for two transactions drawing the same clock_timestamp().
    await conn.execute("UPDATE due_work SET scheduled_for = %s WHERE id = %s", (at, row["id"]))
    return str(row["id"])


async def test_requested_runs_may_share_an_instant(conn):
    task = await owned_task(conn)
    ids = {
        await manual_run_at(conn, task, INSTANT, trigger)
        for trigger in ("manual", "manual", "event", "retry")
    }
    assert len(ids) == 4
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM due_work WHERE task_id = %s AND scheduled_for = %s",
        (task["id"], INSTANT),
    )
    assert (await cursor.fetchone())["n"] == 4


async def test_an_occurrence_is_not_lost_to_a_manual_run_at_its_instant(conn):
    task = await owned_task(conn)
    await manual_run_at(conn, task, INSTANT)
    occurrence = q.Occurrence(
        run_id=uuid.uuid4(), task_id=task["id"], scheduled_for=INSTANT, priority=5, lock_key=None
    )
    assert await q.insert_occurrences(conn, [occurrence]) == 1
    again = q.Occurrence(
        run_id=uuid.uuid4(), task_id=task["id"], scheduled_for=INSTANT, priority=5, lock_key=None
    )
    assert await q.insert_occurrences(conn, [again]) == 0  # expansion stays idempotent
    later = INSTANT + timedelta(seconds=1)
    fresh = q.Occurrence(
        run_id=uuid.uuid4(), task_id=task["id"], scheduled_for=later, priority=5, lock_key=None
    )
    assert await q.insert_occurrences(conn, [fresh, again]) == 1
