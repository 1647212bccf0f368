"""Fair leasing between agents (issue 17): priority orders runs within an agent only; agents
with ready work take turns, the one with fewest running runs first; the concurrent-runs quota
caps an agent's leases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from store import due_work as q
from tests.factories import event_task, make_agent, make_task


async def agent_task(conn, priority=5):
    agent, _ = await make_agent(conn)
    task = await make_task(conn, agent["id"], **event_task(priority=priority))
    return agent, task


async def queue(conn, task, n=1):
    """Queue ``n`` manual runs of ``task``; their ids as text."""
    ids = []
    for _ in range(n):
        row = await q.insert_manual_run(
            conn, run_id=uuid.uuid4(), task_id=task["id"], trigger="manual"
        )
        ids.append(str(row["id"]))
    return ids


async def queue_many(conn, task, n, *, run_at=None):
    """``n`` ready runs in one statement (a flood)."""
    await conn.execute(
        """
        INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
        SELECT gen_random_uuid(), t.id, now() - make_interval(secs => g),
               COALESCE(%s, now() - make_interval(secs => g)), t.priority, 'manual'
          FROM tasks t, generate_series(1, %s) AS g
         WHERE t.id = %s
        """,
        (run_at, n, task["id"]),
    )


async def test_the_agent_column_is_the_tasks_owner(conn):
    agent, task = await agent_task(conn)
    (run_id,) = await queue(conn, task)
    cursor = await conn.execute("SELECT agent_id FROM due_work WHERE id = %s", (run_id,))
    assert (await cursor.fetchone())["agent_id"] == agent["id"]


async def test_a_quiet_agents_run_is_in_the_first_lease_despite_a_flood(conn):
    """One agent floods 500 runs at priority 1; another queues one at priority 9 after."""
    _, flood = await agent_task(conn, priority=1)
    await queue_many(conn, flood, 500)
    _, quiet = await agent_task(conn, priority=9)
    (quiet_run,) = await queue(conn, quiet)
    leased = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    assert quiet_run in [row["id"] for row in leased]
    assert len(leased) >= 2


async def test_priority_still_orders_runs_within_an_agent(conn):
    agent, _ = await make_agent(conn)
    _, other = await agent_task(conn, priority=1)
    order = []
    for priority in (5, 1, 9, 1):
        task = await make_task(conn, agent["id"], **event_task(priority=priority))
        order.append((priority, (await queue(conn, task))[0]))
    await queue(conn, other, 4)
    mine = {run_id for _, run_id in order}
    leased = await q.lease_batch(conn, worker_id="w1", limit=8, lease_seconds=30)
    expected = [run_id for _, run_id in sorted(order, key=lambda pair: pair[0])]
    assert [row["id"] for row in leased if row["id"] in mine] == expected
    assert len(leased) == 8


async def test_the_agent_with_fewest_running_runs_goes_first(conn):
    _, busy = await agent_task(conn, priority=1)
    _, idle = await agent_task(conn, priority=9)
    await queue_many(conn, busy, 3)
    assert len(await q.lease_batch(conn, worker_id="w1", limit=3, lease_seconds=30)) == 3
    await queue_many(conn, busy, 5)
    idle_runs = set(await queue(conn, idle, 2))
    leased = await q.lease_batch(conn, worker_id="w1", limit=2, lease_seconds=30)
    assert {row["id"] for row in leased} == idle_runs


async def test_agents_whose_runs_are_all_later_do_not_shrink_the_batch(conn):
    _, later = await agent_task(conn)
    await queue_many(conn, later, 5, run_at=datetime.now(UTC) + timedelta(hours=1))
    _, ready = await agent_task(conn)
    await queue_many(conn, ready, 20)
    leased = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    assert len(leased) == 10


async def test_the_concurrent_runs_quota_caps_leasing(conn):
    capped, task = await agent_task(conn)
    await conn.execute("UPDATE agents SET quota_concurrent_runs = 2 WHERE id = %s", (capped["id"],))
    await queue_many(conn, task, 5)
    first = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    assert len(first) == 2
    assert await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30) == []
    await q.finish_runs(conn, worker_id="w1", runs=[finished(first[0])])
    assert len(await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)) == 1


async def test_the_default_concurrent_runs_quota_applies_without_an_override(conn):
    _, task = await agent_task(conn)
    await queue_many(conn, task, 5)
    leased = await q.lease_batch(
        conn, worker_id="w1", limit=10, lease_seconds=30, concurrent_runs=3
    )
    assert len(leased) == 3


def finished(row):
    return q.Finished(
        run_id=row["id"],
        attempt=row["attempt"],
        agent_id=row["agent_id"],
        status="succeeded",
        duration_ms=1,
        steps=[],
        error=None,
    )
