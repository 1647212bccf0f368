"""The worker registry and history retention on real Postgres."""

from __future__ import annotations

import uuid

from engine.settings import Settings
from store import retention, workers
from store.db import connect, create_pool
from tests.factories import event_task, make_agent, make_task
from workers.maintenance import Maintenance


async def test_registry_heartbeat_and_stale_cleanup(conn):
    await workers.register_worker(conn, worker_id="w-1", host="h", pid=1, concurrency=4)
    await workers.register_worker(conn, worker_id="w-2", host="h", pid=2, concurrency=4)
    assert await workers.heartbeat_worker(conn, worker_id="w-1", inflight=3, processed=10)
    await conn.execute(
        "UPDATE workers SET last_seen_at = now() - interval '10 minutes' WHERE id = 'w-2'"
    )
    assert await workers.delete_stale_workers(conn, silent_seconds=60) == 1
    (row,) = await workers.list_workers(conn)
    assert (row["id"], row["inflight"], row["processed"]) == ("w-1", 3, 10)
    assert not await workers.heartbeat_worker(conn, worker_id="w-2", inflight=0, processed=0)
    await workers.unregister_worker(conn, "w-1")
    assert await workers.list_workers(conn) == []


async def test_runs_older_than_the_retention_are_pruned(conn):
    agent, _ = await make_agent(conn)
    task = await make_task(conn, agent["id"], **event_task())
    for age_days in (40, 31, 2):
        await conn.execute(
            """
            INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                              attempt, finished_at)
            VALUES (%s, %s, %s, 'manual', 'succeeded', now(), now(), 1,
                    now() - make_interval(days => %s))
            """,
            (uuid.uuid4(), task["id"], agent["id"], age_days),
        )
    assert await retention.prune_runs(conn, older_than_days=30, batch=1) == 1
    assert await retention.prune_runs(conn, older_than_days=30) == 1
    assert await retention.prune_runs(conn, older_than_days=30) == 0
    left = await (await conn.execute("SELECT count(*) AS n FROM runs")).fetchone()
    assert left["n"] == 1


async def test_the_workers_cleanup_prunes_audit_entries_and_idempotency_answers(fresh_db):
    """Everything past its retention goes in one cleanup pass; what is recent stays."""
    setup = await connect(fresh_db)
    async with setup:
        agent, _ = await make_agent(setup)
        await setup.execute(
            "INSERT INTO audit_log (at, action) VALUES"
            " (now() - interval '91 days', 'old'), (now() - interval '1 day', 'recent')"
        )
        await setup.execute(
            """
            INSERT INTO idempotency_keys (agent_id, route, key, request_hash, response_status,
                                          response_body, created_at)
            VALUES (%(a)s, 'POST /tasks', 'old', '\\x00', 201, '{}', now() - interval '25 hours'),
                   (%(a)s, 'POST /tasks', 'recent', '\\x00', 201, '{}', now())
            """,
            {"a": agent["id"]},
        )
        pool = create_pool(fresh_db, max_size=1)
        await pool.open()
        try:
            settings = Settings(database_url=fresh_db, audit_retention_days=90)
            await Maintenance(settings, pool, "w", 1, lambda: (0, 0))._clean()
        finally:
            await pool.close()
        actions = await (await setup.execute("SELECT action FROM audit_log")).fetchall()
        keys = await (await setup.execute("SELECT key FROM idempotency_keys")).fetchall()
    assert [row["action"] for row in actions if row["action"] in ("old", "recent")] == ["recent"]
    assert [row["key"] for row in keys] == ["recent"]
