"""What per-agent quotas count (engine.quotas), and the lock that makes check-then-insert
race-safe: two requests of one agent serialise on it, so both cannot pass a check that only
one of them fits under. Call inside the transaction that inserts."""

from __future__ import annotations

from uuid import UUID

from store.db import Connection, Row

# The first key of the advisory lock: the namespace of quota locks (the second is the agent).
_QUOTA_LOCK = "ordinaut.quota"


async def lock_agent(conn: Connection, agent_id: UUID) -> None:
    """Serialise quota checks of ``agent_id`` until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s::text))",
        (_QUOTA_LOCK, agent_id),
    )


async def agent_quotas(conn: Connection, agent_id: UUID) -> Row:
    """The agent's own quotas (None: the default; an unknown agent has none of its own)."""
    cursor = await conn.execute(
        """
        SELECT q.quota_active_tasks, q.quota_queued_runs, q.quota_concurrent_runs,
               q.quota_event_fanout
          FROM (SELECT 1) one
          LEFT JOIN agents q ON q.id = %s
        """,
        (agent_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def count_active_tasks(conn: Connection, agent_id: UUID) -> int:
    """The agent's tasks that are active or paused (not deleted)."""
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM tasks WHERE created_by = %s AND deleted_at IS NULL "
        "AND status IN ('active', 'paused')",
        (agent_id,),
    )
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


async def count_queued_runs(conn: Connection, agent_id: UUID) -> int:
    """The agent's runs waiting in the queue (queued, or failed and waiting for a retry)."""
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM due_work WHERE agent_id = %s AND state IN ('queued', 'failed')",
        (agent_id,),
    )
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0
