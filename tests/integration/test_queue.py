"""The due_work queue on real Postgres: lease, fence, retry, reap, release, cancel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import due_work as q
from store import runs as runs_store
from store.db import connect
from store.notify import Notification, hold_listening
from tests.factories import event_task, make_agent, make_task


async def queue(conn, task, n=1):
    """Queue ``n`` manual runs; their ids as text, as the worker's queries return them."""
    return [
        str(
            (
                await q.insert_manual_run(
                    conn, run_id=uuid.uuid4(), task_id=task["id"], trigger="manual"
                )
            )["id"]
        )
        for _ in range(n)
    ]


async def owner_and_task(conn, **overrides):
    agent, _ = await make_agent(conn)
    return agent, await make_task(conn, agent["id"], **event_task(**overrides))


async def stored_run(conn, run_id):
    run = await runs_store.get_run(conn, run_id, owner=None)
    assert run is not None, f"run {run_id} is not stored"
    return run


def finished(row, status="succeeded", error=None):
    return q.Finished(
        run_id=row["id"],
        attempt=row["attempt"],
        agent_id=row["agent_id"],
        status=status,
        duration_ms=5,
        steps=[{"id": "echo", "status": status}],
        error=error,
    )


async def test_lease_query_uses_its_partial_index(conn):
    """The hot path's plan: index scans on due_work_agent_lease, never a sequential scan.

    Waiting rows belong to many agents; 500 run (a fleet's worth: running rows are bounded
    by the workers' slots, and the lease counts them per agent)."""
    tasks = [(await owner_and_task(conn))[1]["id"] for _ in range(20)]
    await conn.execute(
        """
        INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger, state,
                              attempt, leased_by, lease_expires_at, started_at)
        SELECT gen_random_uuid(), (%s::uuid[])[1 + g %% 20], now() - make_interval(secs => g),
               now(), 1 + g %% 9,
               'manual', CASE WHEN g %% 40 <> 0 THEN 'queued' ELSE 'running' END,
               1, CASE WHEN g %% 40 <> 0 THEN NULL ELSE 'w' END,
               CASE WHEN g %% 40 <> 0 THEN NULL ELSE now() END,
               CASE WHEN g %% 40 <> 0 THEN NULL ELSE now() END
          FROM generate_series(1, 20000) AS g
        """,
        (tasks,),
    )
    await conn.execute("ANALYZE due_work")
    cursor = await conn.execute(
        "EXPLAIN (FORMAT JSON) " + q._LEASE,
        q._lease_params("w1", 50, 30, 1000),
    )
    nodes = list(plan_nodes((await cursor.fetchone())["QUERY PLAN"][0]["Plan"]))
    assert any(node.get("Index Name") == "due_work_agent_lease" for node in nodes), nodes
    assert not [
        node
        for node in nodes
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "due_work"
    ]


def plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


async def test_lease_orders_by_priority_then_due_time(conn):
    agent, _ = await make_agent(conn)
    order = []
    for priority in (5, 1, 9, 1):
        task = await make_task(conn, agent["id"], **event_task(priority=priority))
        order.append((priority, (await queue(conn, task))[0]))
    leased = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    expected = [run_id for _, run_id in sorted(order, key=lambda pair: pair[0])]
    assert [row["id"] for row in leased] == expected
    assert all(row["attempt"] == 1 for row in leased)


async def test_a_leased_row_is_not_leased_again(conn):
    _, task = await owner_and_task(conn)
    await queue(conn, task, 3)
    first = await q.lease_batch(conn, worker_id="w1", limit=2, lease_seconds=30)
    second = await q.lease_batch(conn, worker_id="w2", limit=10, lease_seconds=30)
    assert len(first) == 2 and len(second) == 1
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert await q.lease_batch(conn, worker_id="w3", limit=10, lease_seconds=30) == []


async def test_one_running_run_per_concurrency_key(conn):
    agent, _ = await make_agent(conn)
    keyed = await make_task(conn, agent["id"], **event_task(concurrency_key="mailbox"))
    free = await make_task(conn, agent["id"], **event_task())
    await queue(conn, keyed, 3)
    await queue(conn, free, 2)
    leased = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    assert sorted(r["task_id"] == str(keyed["id"]) for r in leased) == [False, False, True]
    assert await q.lease_batch(conn, worker_id="w2", limit=10, lease_seconds=30) == []
    keyed_row = next(r for r in leased if r["task_id"] == str(keyed["id"]))
    await q.finish_runs(conn, worker_id="w1", runs=[finished(keyed_row)])
    next_keyed = await q.lease_batch(conn, worker_id="w2", limit=10, lease_seconds=30)
    assert [r["task_id"] for r in next_keyed] == [str(keyed["id"])]


async def test_a_concurrency_key_belongs_to_its_owner(conn):
    """Two agents that both say "mailbox" do not wait for each other; one agent's own tasks
    with that key still run one at a time, whichever way their runs were queued."""
    alice, _ = await make_agent(conn)
    bob, _ = await make_agent(conn)
    alices = [
        await make_task(conn, alice["id"], **event_task(concurrency_key="mailbox"))
        for _ in range(2)
    ]
    bobs = await make_task(conn, bob["id"], **event_task(concurrency_key="mailbox"))
    for task in (*alices, bobs):
        await queue(conn, task)
    leased = await q.lease_batch(conn, worker_id="w1", limit=10, lease_seconds=30)
    owners = sorted("bob" if row["task_id"] == str(bobs["id"]) else "alice" for row in leased)
    assert owners == ["alice", "bob"]
    assert await q.lease_batch(conn, worker_id="w2", limit=10, lease_seconds=30) == []


async def test_the_key_index_refuses_a_second_running_row(conn):
    agent, _ = await make_agent(conn)
    keyed = await make_task(conn, agent["id"], **event_task(concurrency_key="k"))
    _first, second = await queue(conn, keyed, 2)
    await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with conn.transaction():
            await conn.execute(
                "UPDATE due_work SET state = 'running', leased_by = 'w2', started_at = now(), "
                "lease_expires_at = now() WHERE id = %s",
                (second,),
            )


async def test_completion_is_fenced_on_the_lease_holder(conn):
    _, task = await owner_and_task(conn)
    await queue(conn, task)
    (row,) = await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    assert await q.finish_runs(conn, worker_id="intruder", runs=[finished(row)]) == []
    stale = dict(row, attempt=row["attempt"] + 1)
    assert await q.finish_runs(conn, worker_id="w1", runs=[finished(stale)]) == []
    written = await q.finish_runs(conn, worker_id="w1", runs=[finished(row)])
    assert [w["id"] for w in written] == [row["id"]]
    run = await stored_run(conn, row["id"])
    assert run["status"] == "succeeded" and run["worker_id"] == "w1"
    left = await (
        await conn.execute("SELECT count(*) AS n FROM due_work WHERE id = %s", (row["id"],))
    ).fetchone()
    assert left["n"] == 0, "a finished run leaves the hot table in the same statement"


async def test_a_failed_attempt_waits_for_its_retry(conn):
    _, task = await owner_and_task(conn)
    await queue(conn, task)
    (row,) = await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    error = {"step_id": "echo", "type": "tool_error", "message": "boom", "retryable": True}
    kept = await q.schedule_retries(
        conn,
        worker_id="w1",
        runs=[
            q.Retrying(
                run_id=row["id"],
                attempt=1,
                run_at=retry_at,
                duration_ms=7,
                steps=[],
                error=error,
            )
        ],
    )
    assert kept == [row["id"]]
    run = await stored_run(conn, row["id"])
    assert run["status"] == "failed" and run["error"]["message"] == "boom"
    assert run["next_attempt_at"] == retry_at
    assert await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30) == []
    assert await q.retry_failed_now(conn, row["id"])
    (again,) = await q.lease_batch(conn, worker_id="w2", limit=1, lease_seconds=30)
    assert again["id"] == row["id"] and again["attempt"] == 2


async def test_the_reaper_requeues_expired_leases_and_buries_exhausted_ones(conn):
    agent, _ = await make_agent(conn)
    retrying = await make_task(conn, agent["id"], **event_task(max_retries=1))
    exhausted = await make_task(conn, agent["id"], **event_task(max_retries=0))
    (first,) = await queue(conn, retrying)
    (second,) = await queue(conn, exhausted)
    await q.lease_batch(conn, worker_id="crashed", limit=2, lease_seconds=30)
    await conn.execute("UPDATE due_work SET lease_expires_at = now() - interval '1 second'")
    requeued, ended = await q.reap_expired_leases(conn)
    assert requeued == 1
    assert [(r["id"], r["status"]) for r in ended] == [(str(second), "dead")]
    back = await stored_run(conn, first)
    assert back["status"] == "queued" and back["error"]["type"] == "lease_expired"
    dead = await stored_run(conn, second)
    assert dead["status"] == "dead" and dead["error"]["type"] == "lease_expired"
    assert await q.reap_expired_leases(conn) == (0, [])


async def test_released_leases_are_ready_again_without_using_an_attempt(conn):
    _, task = await owner_and_task(conn)
    await queue(conn, task)
    (row,) = await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    assert await q.release_leases(conn, worker_id="w1", run_ids=[row["id"]]) == (1, [])
    (again,) = await q.lease_batch(conn, worker_id="w2", limit=1, lease_seconds=30)
    assert again["attempt"] == 1


async def test_cancel_of_waiting_and_running_runs(conn):
    _, task = await owner_and_task(conn)
    waiting, running = await queue(conn, task, 2)
    await conn.execute("UPDATE due_work SET priority = 1 WHERE id = %s", (running,))
    (row,) = await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    assert row["id"] == running
    error = {"step_id": None, "type": "canceled", "message": "by test", "retryable": False}
    canceled = await q.cancel_waiting_run(conn, waiting, error=error)
    assert canceled is not None and canceled["status"] == "canceled"
    assert await q.cancel_waiting_run(conn, running, error=error) is None
    assert await q.request_cancel(conn, running)
    held = await q.extend_leases(conn, worker_id="w1", run_ids=[running], lease_seconds=30)
    assert held == [{"id": running, "cancel_requested": True}]


async def test_a_dead_run_can_be_repeated_by_a_new_run(conn):
    _, task = await owner_and_task(conn, max_retries=0)
    await queue(conn, task)
    (row,) = await q.lease_batch(conn, worker_id="w1", limit=1, lease_seconds=30)
    error = {"step_id": "echo", "type": "tool_error", "message": "x", "retryable": False}
    await q.finish_runs(conn, worker_id="w1", runs=[finished(row, "dead", error)])
    queued = await q.queue_retry_of(conn, dead_run_id=row["id"], new_run_id=uuid.uuid4())
    assert queued is not None
    run = await stored_run(conn, queued["id"])
    assert run["trigger"] == "retry" and str(run["retry_of"]) == row["id"] and run["attempt"] == 0


@asynccontextmanager
async def listening(url: str, channels: list[str]) -> AsyncIterator[asyncio.Queue[Notification]]:
    """A held LISTEN (store.notify) whose notifications land in the queue yielded, once it
    is connected."""
    heard: asyncio.Queue[Notification] = asyncio.Queue()
    connected = asyncio.Event()
    holder = asyncio.create_task(
        hold_listening(
            url,
            name="test-listen",
            channels=channels,
            on_connect=connected.set,
            on_notify=heard.put_nowait,
            what="test listener",
        )
    )
    try:
        await asyncio.wait_for(connected.wait(), timeout=5)
        yield heard
    finally:
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)


async def test_notifications_wake_listeners(fresh_db):
    async with listening(fresh_db, [q.WAKE_CHANNEL, q.CANCEL_CHANNEL]) as heard:
        writer = await connect(fresh_db)
        async with writer:
            _, task = await owner_and_task(writer)
            await queue(writer, task)
        note = await asyncio.wait_for(heard.get(), timeout=5)
    assert note.channel == q.WAKE_CHANNEL


async def test_the_reaper_cancels_an_orphaned_run_whose_task_was_canceled(conn):
    _, task = await owner_and_task(conn, max_retries=3)
    (run_id,) = await queue(conn, task)
    await q.lease_batch(conn, worker_id="crashed", limit=1, lease_seconds=30)
    await conn.execute("UPDATE tasks SET status = 'canceled' WHERE id = %s", (task["id"],))
    await conn.execute("UPDATE due_work SET lease_expires_at = now() - interval '1 second'")
    requeued, ended = await q.reap_expired_leases(conn)
    assert (requeued, [r["status"] for r in ended]) == (0, ["canceled"])
    run = await stored_run(conn, run_id)
    assert run["status"] == "canceled" and run["error"]["type"] == "canceled"


async def test_the_worker_subscription_hears_both_channels(fresh_db):
    """The worker's subscription: new due work and cancel requests (by run id)."""
    async with listening(fresh_db, [q.WAKE_CHANNEL, q.CANCEL_CHANNEL]) as heard:
        sender = await connect(fresh_db)
        async with sender:
            await sender.execute(
                "SELECT pg_notify(%s, ''), pg_notify(%s, 'run-1')",
                (q.WAKE_CHANNEL, q.CANCEL_CHANNEL),
            )
        notes = [await asyncio.wait_for(heard.get(), timeout=5) for _ in range(2)]
    assert sorted((n.channel, n.payload) for n in notes) == sorted(
        [(q.WAKE_CHANNEL, ""), (q.CANCEL_CHANNEL, "run-1")]
    )


async def test_a_key_handed_over_inside_a_longer_transaction_starts_after_it_was_freed(fresh_db):
    """The worker leases in the transaction that records its finished runs, so the lease may
    run well after that transaction began. A run's start is stamped when it is leased: the
    next run of a concurrency key never appears to start before the previous one finished."""
    async with await connect(fresh_db) as setup:
        _, keyed = await owner_and_task(setup, concurrency_key="mailbox")
        await queue(setup, keyed, 2)
        (first,) = await q.lease_batch(setup, worker_id="w1", limit=1, lease_seconds=30)
        async with await connect(fresh_db) as other, other.transaction():
            await other.execute("SELECT now()")  # the other worker's transaction begins
            await asyncio.sleep(0.05)
            await q.finish_runs(setup, worker_id="w1", runs=[finished(first)])
            (second,) = await q.lease_batch(other, worker_id="w2", limit=1, lease_seconds=30)
        freed_at = (await stored_run(setup, first["id"]))["finished_at"]
    assert second["started_at"] >= freed_at, "the next run of the key started before it was free"
