"""Tasks: create, read, list, and the scheduler's expansion state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from store.db import Connection, Row

# ``next_run_at`` is derived, never stored: the earliest pending run of the task, or its
# next not-yet-materialised occurrence. Paused, canceled and completed tasks have none.
_SELECT_TASK = """
SELECT t.id, t.created_by, t.title, t.description, t.schedule_kind, t.schedule_expr,
       t.timezone, t.payload, t.priority, t.max_retries, t.backoff_strategy,
       t.timeout_seconds, t.concurrency_key, t.dedupe_key, t.dedupe_window_seconds,
       t.catch_up, t.status, t.created_at, t.updated_at,
       CASE WHEN t.status = 'active' THEN LEAST(
           (SELECT min(d.run_at) FROM due_work d
             WHERE d.task_id = t.id AND d.state IN ('queued', 'failed')),
           t.next_expand_at)
       END AS next_run_at
  FROM tasks t
"""


async def insert_task(
    conn: Connection,
    *,
    document: dict[str, Any],
    created_by: UUID,
    anchor_at: datetime,
    expanded_until: datetime | None,
    next_expand_at: datetime | None,
) -> Row:
    """Insert a validated task document; returns the task as :func:`get_task` shows it."""
    cursor = await conn.execute(
        """
        INSERT INTO tasks (created_by, title, description, schedule_kind, schedule_expr,
                           timezone, payload, priority, max_retries, backoff_strategy,
                           timeout_seconds, concurrency_key, dedupe_key,
                           dedupe_window_seconds, catch_up, anchor_at, expanded_until,
                           next_expand_at)
        VALUES (%(created_by)s, %(title)s, %(description)s, %(schedule_kind)s,
                %(schedule_expr)s, %(timezone)s, %(payload)s, %(priority)s, %(max_retries)s,
                %(backoff_strategy)s, %(timeout_seconds)s, %(concurrency_key)s,
                %(dedupe_key)s, %(dedupe_window_seconds)s, %(catch_up)s, %(anchor_at)s,
                %(expanded_until)s, %(next_expand_at)s)
        RETURNING id
        """,
        {
            **document,
            "payload": Jsonb(document["payload"]),
            "created_by": created_by,
            "anchor_at": anchor_at,
            "expanded_until": expanded_until,
            "next_expand_at": next_expand_at,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    task = await get_task(conn, row["id"], owner=None)
    assert task is not None
    return task


async def get_task(conn: Connection, task_id: UUID, *, owner: UUID | None) -> Row | None:
    """A visible (not deleted) task; ``owner`` restricts to one agent's tasks (None: any)."""
    cursor = await conn.execute(
        _SELECT_TASK
        + " WHERE t.id = %(id)s AND t.deleted_at IS NULL"
        + " AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)",
        {"id": task_id, "owner": owner},
    )
    return await cursor.fetchone()


async def list_tasks(
    conn: Connection,
    *,
    owner: UUID | None,
    status: str | None,
    schedule_kind: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Row]:
    """Visible tasks, newest first; ``after`` is the (created_at, id) of the previous page's
    last row."""
    cursor = await conn.execute(
        _SELECT_TASK
        + """
         WHERE t.deleted_at IS NULL
           AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
           AND (%(status)s::text IS NULL OR t.status = %(status)s::text)
           AND (%(kind)s::text IS NULL OR t.schedule_kind = %(kind)s::text)
           AND (%(after_at)s::timestamptz IS NULL
                OR (t.created_at, t.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
         ORDER BY t.created_at DESC, t.id DESC
         LIMIT %(limit)s
        """,
        {
            "owner": owner,
            "status": status,
            "kind": schedule_kind,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return await cursor.fetchall()


async def lock_tasks_due_for_expansion(
    conn: Connection, *, horizon_end: datetime, limit: int
) -> list[Row]:
    """Lock up to ``limit`` active tasks whose next occurrence is at or before
    ``horizon_end``. SKIP LOCKED lets several schedulers split the work without waiting;
    call inside a transaction that also writes the expansion."""
    cursor = await conn.execute(
        """
        SELECT id, schedule_kind, schedule_expr, timezone, anchor_at, expanded_until,
               next_expand_at, catch_up, priority, concurrency_key, updated_at
          FROM tasks
         WHERE status = 'active' AND next_expand_at IS NOT NULL
           AND next_expand_at <= %(horizon_end)s
         ORDER BY next_expand_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
        """,
        {"horizon_end": horizon_end, "limit": limit},
    )
    return await cursor.fetchall()


async def save_expansion_state(
    conn: Connection,
    updates: Sequence[tuple[UUID, datetime | None, datetime | None]],
) -> None:
    """Move each task's high-water mark forward: ``(task_id, expanded_until,
    next_expand_at)``. ``GREATEST`` keeps the mark from ever moving backwards."""
    if not updates:
        return
    ids, marks, nexts = zip(*updates, strict=True)
    await conn.execute(
        """
        UPDATE tasks t
           SET expanded_until = GREATEST(t.expanded_until, u.expanded_until),
               next_expand_at = u.next_expand_at
          FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[])
               AS u(id, expanded_until, next_expand_at)
         WHERE t.id = u.id
        """,
        (list(ids), list(marks), list(nexts)),
    )


async def complete_finished_tasks(conn: Connection, task_ids: Sequence[UUID]) -> list[UUID]:
    """Mark ``completed`` every active, non-event task among ``task_ids`` that has no
    occurrence left to expand and no pending run. Returns the ids completed."""
    if not task_ids:
        return []
    cursor = await conn.execute(
        """
        UPDATE tasks t SET status = 'completed', updated_at = now()
         WHERE t.id = ANY(%s::uuid[]) AND t.status = 'active'
           AND t.schedule_kind <> 'event' AND t.next_expand_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM due_work d WHERE d.task_id = t.id)
        RETURNING t.id
        """,
        (list(set(task_ids)),),
    )
    return [row["id"] for row in await cursor.fetchall()]
