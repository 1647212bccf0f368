"""An event's payload is stored once (issue 17, defect 4): runs reference the ``events`` row
instead of carrying a copy, yet show and lease the same ``event`` document as before; retention
keeps referenced events; ``events.publish`` publishes no more than ``POST /events`` accepts.
Real Postgres."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from psycopg.types.json import Jsonb

from engine.errors import StepError
from engine.pipeline import CallContext
from store import due_work as q
from store import events as events_store
from store import retention
from store import runs as runs_store
from store.db import Connection, connect, create_pool
from tests.factories import event_task, make_agent, make_task
from workers.tools.events import events_publisher

FAN_OUT_LIMIT = 1000  # the default event_fanout quota
FAN_OUT = 300
PAYLOAD_BYTES = 930_000  # the 0.93 MB event
# Measured 292 MB before the fix (one copy per queued run and one per finished run).
GROWTH_LIMIT = 5 * 1024 * 1024
STORAGE = "pg_total_relation_size('due_work') + pg_total_relation_size('runs') + " + (
    "pg_total_relation_size('events')"
)


@pytest.fixture
async def db(fresh_db: str) -> AsyncIterator[Connection]:
    conn = await connect(fresh_db)
    async with conn:
        yield conn


def incompressible_payload(size: int) -> dict[str, Any]:
    """A payload of about ``size`` bytes of JSON that TOAST compression cannot shrink much (so
    each stored copy costs its full size, like real-world JSON with ids and text)."""
    noise = random.Random(17).randbytes(size * 3 // 4)
    return {"blob": base64.b64encode(noise).decode(), "x": "marker"}


async def storage(db: Connection) -> int:
    cursor = await db.execute(f"SELECT {STORAGE} AS bytes")
    row = await cursor.fetchone()
    assert row is not None
    return int(row["bytes"])


async def publish(
    db: Connection, agent_id: UUID, topic: str, payload: Any
) -> tuple[UUID, list[dict[str, UUID]]]:
    """Publish as ``agent_id`` to every agent's matching tasks, under the default fan-out."""
    return await events_store.publish_event(
        db,
        topic=topic,
        payload=payload,
        published_by=agent_id,
        owner_filter=None,
        fanout_limit=FAN_OUT_LIMIT,
    )


def finished(row: dict, status: str = "succeeded") -> q.Finished:
    error = None if status == "succeeded" else {"step_id": "s", "type": "x", "message": "m"}
    return q.Finished(
        run_id=row["id"],
        attempt=row["attempt"],
        agent_id=row["agent_id"],
        status=status,
        duration_ms=1,
        steps=[{"id": "s", "uses": "debug.echo", "status": status}],
        error=error,
    )


async def drain(db: Connection, *, status: str = "succeeded") -> list[dict]:
    """Lease and finish every queued run, 50 at a time (a worker's batch); the leased rows."""
    leased: list[dict] = []
    while batch := await q.lease_batch(db, worker_id="w1", limit=50, lease_seconds=30):
        await q.finish_runs(db, worker_id="w1", runs=[finished(row, status) for row in batch])
        leased.extend(batch)
    return leased


async def test_a_big_event_fanned_out_to_300_tasks_is_stored_once(db: Connection) -> None:
    agent, _ = await make_agent(db)
    for _ in range(FAN_OUT):
        await make_task(db, agent["id"], **event_task(schedule_expr="storage.big"))
    payload = incompressible_payload(PAYLOAD_BYTES)
    before = await storage(db)

    event_id, runs = await publish(db, agent["id"], "storage.big", payload)
    assert len(runs) == FAN_OUT
    queued = await storage(db) - before
    leased = await drain(db)
    grown = await storage(db) - before

    assert len(leased) == FAN_OUT
    assert all(row["event"]["payload"] == payload for row in leased), "pipelines read it"
    assert all(row["event"]["id"] == str(event_id) for row in leased)
    assert queued < GROWTH_LIMIT, f"queueing grew the database by {queued} bytes"
    assert grown < GROWTH_LIMIT, f"the event and its runs grew the database by {grown} bytes"


async def test_a_run_shows_the_same_event_document_queued_and_finished(db: Connection) -> None:
    agent, _ = await make_agent(db)
    await make_task(db, agent["id"], **event_task(schedule_expr="orders.created"))
    event_id, (ref,) = await publish(db, agent["id"], "orders.created", {"x": 1})
    queued = await runs_store.get_run(db, ref["run_id"], owner=None)
    assert queued is not None
    document = queued["event"]
    assert set(document) == {"id", "topic", "payload", "published_at"}
    assert document["id"] == str(event_id) and document["topic"] == "orders.created"
    assert document["payload"] == {"x": 1}
    (listed,) = await list_runs(db)
    assert listed["event"] == document

    (row,) = await drain(db)
    assert row["event"] == document
    done = await runs_store.get_run(db, ref["run_id"], owner=None)
    assert done is not None and done["status"] == "succeeded"
    assert done["event"] == document
    (listed,) = await list_runs(db)
    assert listed["event"] == document
    cursor = await db.execute("SELECT count(*) AS n FROM runs WHERE event IS NOT NULL")
    assert await cursor.fetchone() == {"n": 0}, "the run holds only the event's id"


async def test_a_retried_dead_event_run_keeps_its_event(db: Connection) -> None:
    agent, _ = await make_agent(db)
    await make_task(db, agent["id"], **event_task(schedule_expr="orders.failed"))
    _, (ref,) = await publish(db, agent["id"], "orders.failed", {"y": 2})
    (dead,) = await drain(db, status="dead")
    again = uuid.uuid4()
    assert await q.queue_retry_of(db, dead_run_id=ref["run_id"], new_run_id=again)

    retry = await runs_store.get_run(db, again, owner=None)
    assert retry is not None and retry["trigger"] == "retry"
    assert retry["event"] == dead["event"]
    (leased,) = await drain(db)
    assert leased["event"]["payload"] == {"y": 2}


async def test_a_run_queued_before_the_migration_keeps_its_copy(db: Connection) -> None:
    agent, _ = await make_agent(db)
    task = await make_task(db, agent["id"], **event_task())
    legacy = {"id": str(uuid.uuid4()), "topic": "old.one", "payload": {"z": 3}}
    row = await q.insert_manual_run(db, run_id=uuid.uuid4(), task_id=task["id"], trigger="event")
    # What a run queued before migration 0012 looks like: its own copy, no event_id.
    await db.execute("UPDATE due_work SET event = %s WHERE id = %s", (Jsonb(legacy), row["id"]))
    run = await runs_store.get_run(db, row["id"], owner=None)
    assert run is not None and run["event"] == legacy
    (leased,) = await drain(db)
    assert leased["event"] == legacy
    done = await runs_store.get_run(db, row["id"], owner=None)
    assert done is not None and done["event"] == legacy


async def test_pruning_keeps_the_events_runs_still_reference(db: Connection) -> None:
    agent, _ = await make_agent(db)
    await make_task(db, agent["id"], **event_task(schedule_expr="old.referenced"))
    referenced, _ = await publish(db, agent["id"], "old.referenced", {})
    waiting, _ = await publish(db, agent["id"], "old.referenced", {})
    orphan, _ = await publish(db, agent["id"], "nobody.listens", {})
    await db.execute("UPDATE events SET created_at = now() - interval '40 days'")
    await db.execute(
        "UPDATE due_work SET run_at = now() + interval '1 hour' WHERE event_id = %s", (waiting,)
    )
    await drain(db)  # the first event's run is finished, the second's still queued

    assert await retention.prune_events(db, older_than_days=30) == 1
    assert await event_ids(db) == {referenced, waiting}, "the unreferenced one went"

    await db.execute(  # the whole run 40 days back (its timestamps stay in order)
        """UPDATE runs SET scheduled_for = scheduled_for - interval '40 days',
                          queued_at = queued_at - interval '40 days',
                          started_at = started_at - interval '40 days',
                          finished_at = finished_at - interval '40 days'"""
    )
    assert await retention.prune_runs(db, older_than_days=30) == 1
    assert await retention.prune_events(db, older_than_days=30) == 1
    assert await event_ids(db) == {waiting}, "an event goes with its last run"
    assert orphan not in await event_ids(db)


async def event_ids(db: Connection) -> set[uuid.UUID]:
    cursor = await db.execute("SELECT id FROM events")
    return {row["id"] for row in await cursor.fetchall()}


async def list_runs(db: Connection) -> list[dict]:
    return await runs_store.list_runs(
        db, owner=None, task_id=None, since=None, until=None, limit=10, after=None
    )


async def test_events_publish_refuses_a_payload_over_the_body_limit(fresh_db: str) -> None:
    conn = await connect(fresh_db)
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    try:
        agent, _ = await make_agent(conn, "tasks:write", "events:publish")
        await make_task(conn, agent["id"], **event_task(schedule_expr="bound.check"))
        publish = events_publisher(pool, max_payload_bytes=1000, fanout_limit=1000)
        with pytest.raises(StepError) as caught:
            await publish({"topic": "bound.check", "payload": {"a": "x" * 1000}}, context(agent))
        assert caught.value.retryable is False
        assert "1000 bytes" in caught.value.message
        assert "ORDINAUT_MAX_BODY_BYTES" in caught.value.message
        cursor = await conn.execute("SELECT count(*) AS n FROM events")
        assert await cursor.fetchone() == {"n": 0}, "nothing was published"

        answer = await publish(
            {"topic": "bound.check", "payload": {"a": "x" * 900}}, context(agent)
        )
        assert len(answer["runs"]) == 1, "a payload within the limit is published"
    finally:
        await pool.close()
        await conn.close()


def context(agent: dict) -> CallContext:
    return CallContext(
        run_id=str(uuid.uuid4()),
        task_id=str(uuid.uuid4()),
        step_id="publish",
        run_attempt=1,
        step_attempt=1,
        agent_id=str(agent["id"]),
        timeout_seconds=5.0,
    )
