"""Every statement that changes a run tells the API (``ordinaut_runs``), from inside itself,
and every one that makes a run final queues its completion webhook in the same statement;
failed attempts are kept on the run. Real Postgres, real LISTEN connections."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.runs import present_attempt
from store import due_work as q
from store import events as events_store
from store import runs as runs_store
from store import tasks as tasks_store
from store import webhooks as webhooks_store
from store.db import Connection, connect
from store.run_events import RUNS_CHANNEL, TOKENS_PER_NOTIFICATION, RunChange, parse_changes
from tests.factories import event_task, make_agent, make_task

ERROR = {"step_id": "s", "type": "tool_error", "message": "boom", "retryable": True}


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[Connection]:
    conn = await connect(fresh_db)
    async with conn:
        yield conn


@pytest.fixture
async def listener(fresh_db: str) -> AsyncIterator[Connection]:
    conn = await connect(fresh_db)
    async with conn:
        await conn.execute(f"LISTEN {RUNS_CHANNEL}")
        yield conn


async def heard(listener: Connection, quiet: float = 0.3) -> list[list[RunChange]]:
    """The notifications that arrive until ``quiet`` seconds pass without one."""
    batches = []
    async for notification in listener.notifies(timeout=quiet):
        batches.append(parse_changes(notification.payload))
    return batches


async def changes(listener: Connection) -> list[tuple[str, str, int]]:
    return [(c.kind, c.run_id, c.attempt) for batch in await heard(listener) for c in batch]


async def manual_run(db: Connection, task: dict) -> str:
    row = await q.insert_manual_run(db, run_id=uuid.uuid4(), task_id=task["id"], trigger="manual")
    return str(row["id"])


def finished(row: dict, status: str = "succeeded", error: dict | None = None) -> q.Finished:
    return q.Finished(
        run_id=row["id"],
        attempt=row["attempt"],
        agent_id=row["agent_id"],
        status=status,
        duration_ms=3,
        steps=[{"id": "s", "uses": "debug.echo", "status": status}],
        error=error,
    )


def retrying(row: dict, run_at: datetime) -> q.Retrying:
    return q.Retrying(
        run_id=row["id"],
        attempt=row["attempt"],
        run_at=run_at,
        duration_ms=4,
        steps=[{"id": "s", "uses": "debug.fail", "status": "failed"}],
        error=ERROR,
    )


async def test_a_run_is_heard_through_every_state_with_its_attempts_kept(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task(max_retries=3))
    run_id = await manual_run(db, task)
    assert await changes(listener) == [("q", run_id, 0)]

    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    assert await changes(listener) == [("r", run_id, 1)]
    await q.schedule_retries(db, worker_id="w1", runs=[retrying(row, datetime.now(UTC))])
    assert await changes(listener) == [("f", run_id, 1)]

    (row,) = await q.lease_batch(db, worker_id="w2", limit=5, lease_seconds=30)
    assert await changes(listener) == [("r", run_id, 2)]
    running = await runs_store.get_run(db, run_id, owner=None)
    assert running is not None and running["steps"] == [], "a new attempt starts with no steps"

    progress = q.Progress(run_id=run_id, attempt=2, steps=[{"id": "s", "status": "succeeded"}])
    await q.extend_leases(db, worker_id="w2", run_ids=[run_id], lease_seconds=30)
    assert await changes(listener) == [], "a heartbeat without progress is not a change"
    await q.extend_leases(
        db, worker_id="w2", run_ids=[run_id], lease_seconds=30, progress=[progress]
    )
    assert await changes(listener) == [("p", run_id, 2)]
    running = await runs_store.get_run(db, run_id, owner=None)
    assert running is not None and running["steps"] == progress.steps

    await q.finish_runs(db, worker_id="w2", runs=[finished(row)])
    assert await changes(listener) == [("s", run_id, 2)]
    run = await runs_store.get_run(db, run_id, owner=None)
    assert run is not None and run["status"] == "succeeded"
    (first,) = run["attempts"]
    assert first["number"] == 1 and first["worker_id"] == "w1"
    assert first["error"] == ERROR and first["duration_ms"] == 4
    started = datetime.fromisoformat(first["started_at"])
    assert started <= datetime.fromisoformat(first["finished_at"]) <= run["started_at"]
    assert run["finished_at"] >= run["started_at"], "finished_at is the database's clock"


async def test_a_dead_run_keeps_the_attempts_before_its_last(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task(max_retries=1))
    run_id = await manual_run(db, task)
    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await q.schedule_retries(db, worker_id="w1", runs=[retrying(row, datetime.now(UTC))])
    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await q.finish_runs(db, worker_id="w1", runs=[finished(row, "dead", ERROR)])
    assert [kind for kind, _, _ in await changes(listener)] == ["q", "r", "f", "r", "d"]
    run = await runs_store.get_run(db, run_id, owner=None)
    assert run is not None and run["attempt"] == 2
    assert [a["number"] for a in run["attempts"]] == [1]


async def test_the_cancel_paths_are_heard(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task())
    waiting = await manual_run(db, task)
    canceled = await q.cancel_waiting_run(db, uuid.UUID(waiting), error=ERROR)
    assert canceled is not None
    assert await changes(listener) == [("q", waiting, 0), ("c", waiting, 0)]

    manual = await manual_run(db, task)
    occurrence = uuid.uuid4()
    soon = datetime.now(UTC) + timedelta(hours=1)
    await q.insert_occurrences(
        db,
        [
            q.Occurrence(
                run_id=occurrence, task_id=task["id"], scheduled_for=soon, priority=5, lock_key=None
            )
        ],
    )
    await heard(listener)
    async with db.transaction():
        await tasks_store.remove_waiting_runs(db, task["id"], scope="all", reason="task canceled")
    # The manual run is recorded as canceled; the never-started occurrence vanishes.
    assert sorted(await changes(listener)) == sorted([("c", manual, 0), ("x", str(occurrence), 0)])


async def test_the_reaper_and_the_release_are_heard(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task(max_retries=1))
    retried, buried, released = [await manual_run(db, task) for _ in range(3)]
    await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await db.execute("UPDATE due_work SET attempt = 2 WHERE id = %s", (buried,))
    await db.execute(
        "UPDATE due_work SET lease_expires_at = now() - interval '1 second' WHERE id <> %s",
        (released,),
    )
    await heard(listener)
    requeued, ended = await q.reap_expired_leases(db)
    assert requeued == 1 and [r["id"] for r in ended] == [buried]
    assert sorted(await changes(listener)) == sorted([("q", retried, 1), ("d", buried, 2)])
    requeued_run = await runs_store.get_run(db, retried, owner=None)
    assert requeued_run is not None
    (expired,) = requeued_run["attempts"]
    assert expired["error"]["type"] == "lease_expired" and expired["worker_id"] == "w1"
    assert expired["duration_ms"] is None

    assert await q.release_leases(db, worker_id="w1", run_ids=[released]) == (1, [])
    assert await changes(listener) == [("q", released, 0)]


async def test_inserts_are_heard_in_chunks_under_the_payload_limit(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task())
    start = datetime.now(UTC) + timedelta(days=1)
    count = 2 * TOKENS_PER_NOTIFICATION + 7
    occurrences = [
        q.Occurrence(
            run_id=uuid.uuid4(),
            task_id=task["id"],
            scheduled_for=start + timedelta(minutes=i),
            priority=5,
            lock_key=None,
        )
        for i in range(count)
    ]
    assert await q.insert_occurrences(db, occurrences) == count
    batches = await heard(listener)
    assert [len(batch) for batch in batches] == [150, 150, 7]
    assert [c.run_id for batch in batches for c in batch] == [str(o.run_id) for o in occurrences]
    assert {c.kind for batch in batches for c in batch} == {"q"}


async def test_events_and_retries_of_dead_runs_are_heard(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task(schedule_expr="orders.created"))
    _, runs = await events_store.publish_event(
        db,
        topic="orders.created",
        payload={},
        published_by=agent["id"],
        owner_filter=None,
        fanout_limit=1000,
    )
    (published,) = runs
    assert await changes(listener) == [("q", str(published["run_id"]), 0)]
    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await q.finish_runs(db, worker_id="w1", runs=[finished(row, "dead", ERROR)])
    await heard(listener)
    again = uuid.uuid4()
    assert await q.queue_retry_of(db, dead_run_id=published["run_id"], new_run_id=again)
    assert await changes(listener) == [("q", str(again), 0)]
    assert task["id"] == published["task_id"]


async def test_nothing_is_heard_from_a_transaction_that_rolls_back(db, listener):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task())
    async with db.transaction(force_rollback=True):
        await manual_run(db, task)
    assert await heard(listener) == []


async def deliveries(db: Connection) -> list[dict]:
    cursor = await db.execute("SELECT * FROM webhook_deliveries ORDER BY created_at, url")
    return await cursor.fetchall()


async def test_webhooks_are_queued_by_the_statement_that_ends_a_run(db):
    quiet, _ = await make_agent(db)
    hooked, _ = await make_agent(db)
    await db.execute(
        "UPDATE agents SET webhook_url = 'https://hooks.example/agent' WHERE id = %s",
        (hooked["id"],),
    )
    plain = await make_task(db, quiet["id"], **event_task())
    overridden = await make_task(
        db, quiet["id"], **event_task(webhook_url="https://hooks.example/task")
    )
    agents_task = await make_task(db, hooked["id"], **event_task())
    for task in (plain, overridden, agents_task):
        await manual_run(db, task)
    leased = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    written = await q.finish_runs(db, worker_id="w1", runs=[finished(row) for row in leased])
    assert all(row["hooked"] == 2 for row in written), "one count per statement"
    queued = await deliveries(db)
    assert sorted((d["task_id"], d["url"]) for d in queued) == sorted(
        [
            (agents_task["id"], "https://hooks.example/agent"),
            (overridden["id"], "https://hooks.example/task"),
        ]
    )
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in queued)

    # Cancel of a waiting run and the lifecycle paths queue theirs too.
    waiting = await manual_run(db, agents_task)
    await q.cancel_waiting_run(db, uuid.UUID(waiting), error=ERROR)
    await manual_run(db, agents_task)
    async with db.transaction():
        await tasks_store.remove_waiting_runs(db, agents_task["id"], scope="all", reason="x")
    assert len(await deliveries(db)) == 4

    # A deleted agent's runs queue none.
    await db.execute("UPDATE agents SET deleted_at = now() WHERE id = %s", (hooked["id"],))
    await manual_run(db, agents_task)
    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await q.finish_runs(db, worker_id="w1", runs=[finished(row)])
    assert len(await deliveries(db)) == 4


async def test_without_any_webhook_the_completion_queues_nothing(db):
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task())
    await manual_run(db, task)
    (row,) = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    (written,) = await q.finish_runs(db, worker_id="w1", runs=[finished(row)])
    assert written["hooked"] == 0 and await deliveries(db) == []


async def test_jsonb_timestamps_of_attempts_read_back_as_the_runs_own(db):
    """Attempts carry PostgreSQL's JSON timestamps; the API shows them in Python's form."""
    cursor = await db.execute(
        "SELECT jsonb_build_object('number', 1, 'started_at', %s::timestamptz) AS a",
        (datetime(2026, 3, 29, 6, 30, 0, 120000, tzinfo=UTC),),
    )
    row = await cursor.fetchone()
    assert row is not None
    stored = row["a"]["started_at"]
    assert present_attempt(row["a"])["started_at"] == "2026-03-29T06:30:00.120000+00:00", stored


async def test_old_deliveries_are_pruned_with_the_history(db):
    hooked, _ = await make_agent(db)
    await db.execute(
        "UPDATE agents SET webhook_url = 'https://hooks.example/a' WHERE id = %s", (hooked["id"],)
    )
    task = await make_task(db, hooked["id"], **event_task())
    for _ in range(2):
        await manual_run(db, task)
    leased = await q.lease_batch(db, worker_id="w1", limit=5, lease_seconds=30)
    await q.finish_runs(db, worker_id="w1", runs=[finished(row) for row in leased])
    old, new = await deliveries(db)
    await db.execute(
        "UPDATE webhook_deliveries SET created_at = now() - interval '31 days' WHERE id = %s",
        (old["id"],),
    )
    assert await webhooks_store.prune_deliveries(db, older_than_days=30) == 1
    assert [d["id"] for d in await deliveries(db)] == [new["id"]]
