"""Tasks: create, read, list, and the scheduler's expansion state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from engine.expansion import ExpansionStart
from store.db import Connection, Row
from store.paging import any_of, newest_first, page_params
from store.stats import TASK_STATUSES

# ``next_run_at`` is derived, never stored: the earliest pending run of the task, or its
# next not-yet-materialised occurrence. Paused, canceled and completed tasks have none.
_SELECT_TASK = """
SELECT t.id, t.created_by, t.title, t.description, t.schedule_kind, t.schedule_expr,
       t.timezone, t.payload, t.priority, t.max_retries, t.backoff_strategy,
       t.timeout_seconds, t.concurrency_key, t.dedupe_key, t.dedupe_window_seconds,
       t.catch_up, t.webhook_url, t.status, t.created_at, t.updated_at,
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
    start: ExpansionStart,
) -> Row:
    """Insert a validated task document; returns the task as :func:`get_task` shows it."""
    cursor = await conn.execute(
        """
        INSERT INTO tasks (created_by, title, description, schedule_kind, schedule_expr,
                           timezone, payload, priority, max_retries, backoff_strategy,
                           timeout_seconds, concurrency_key, dedupe_key,
                           dedupe_window_seconds, catch_up, webhook_url, anchor_at,
                           expanded_until, next_expand_at)
        VALUES (%(created_by)s, %(title)s, %(description)s, %(schedule_kind)s,
                %(schedule_expr)s, %(timezone)s, %(payload)s, %(priority)s, %(max_retries)s,
                %(backoff_strategy)s, %(timeout_seconds)s, %(concurrency_key)s,
                %(dedupe_key)s, %(dedupe_window_seconds)s, %(catch_up)s, %(webhook_url)s,
                %(anchor_at)s, %(expanded_until)s, %(next_expand_at)s)
        RETURNING id
        """,
        {
            **document,
            "payload": Jsonb(document["payload"]),
            "created_by": created_by,
            **start._asdict(),
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


_NEWEST_FIRST = newest_first("t.created_at", "t.id")


# List statements are sent unprepared (``prepare=False``): their optional filters ("x IS
# NULL OR col = x") would make a cached generic plan walk the wrong index, while a plan made
# for the values at hand folds the unused filters away and picks the index that matches.


async def list_tasks(
    conn: Connection,
    *,
    owner: UUID | None,
    statuses: Sequence[str] | None = None,
    schedule_kinds: Sequence[str] | None = None,
    limit: int,
    after: tuple[datetime, UUID] | None,
    created_by: UUID | None = None,
    text: str | None = None,
) -> list[Row]:
    """Visible tasks, newest first; ``after`` is the (created_at, id) of the previous page's
    last row. ``created_by`` narrows to one agent's tasks (within ``owner``'s reach);
    ``text`` matches a task id exactly or a part of the title (case-insensitive)."""
    cursor = await conn.execute(
        _SELECT_TASK
        + """
         WHERE t.deleted_at IS NULL
           AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
           AND (%(created_by)s::uuid IS NULL OR t.created_by = %(created_by)s::uuid)
           AND (%(statuses)s::text[] IS NULL OR t.status = ANY(%(statuses)s::text[]))
           AND (%(kinds)s::text[] IS NULL OR t.schedule_kind = ANY(%(kinds)s::text[]))
           AND (%(id)s::uuid IS NULL OR t.id = %(id)s::uuid)
           AND (%(pattern)s::text IS NULL OR t.title ILIKE %(pattern)s::text)
        """
        + _NEWEST_FIRST,
        {
            "owner": owner,
            "created_by": created_by,
            "statuses": any_of(statuses),
            "kinds": any_of(schedule_kinds),
            **_text_filter(text),
            **page_params(after, limit),
        },
        prepare=False,
    )
    return await cursor.fetchall()


def _text_filter(text: str | None) -> dict[str, Any]:
    """``text``: a task id (exact match) or a piece of the title (ILIKE, wildcards escaped)."""
    if not text:
        return {"id": None, "pattern": None}
    try:
        return {"id": UUID(text.strip()), "pattern": None}
    except ValueError:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return {"id": None, "pattern": f"%{escaped}%"}


@dataclass(frozen=True)
class TitleSearch:
    """Tasks whose title matched, newest first, and where the search stopped."""

    rows: list[Row]
    # The oldest task looked at when the scan budget ran out (search on from there), or None
    # when every task in reach was looked at.
    stopped_at: tuple[datetime, UUID] | None


# A title search reads at most %(budget)s tasks (newest first, within the other filters) per
# call: a word that matches nothing would otherwise read every task. The scan is pipelined:
# it stops at the page's last match, or at the budget's last task, which it returns too
# (``hit`` false) as the place to search on from. The caller offers to.
_SEARCH_TITLES = """
SELECT s.id, s.created_at, s.hit, s.n FROM (
    SELECT t.id, t.created_at, t.title ILIKE %(pattern)s::text AS hit,
           row_number() OVER (ORDER BY t.created_at DESC, t.id DESC) AS n
      FROM tasks t
     WHERE t.deleted_at IS NULL
       AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
       AND (%(created_by)s::uuid IS NULL OR t.created_by = %(created_by)s::uuid)
       AND (%(status)s::text IS NULL OR t.status = %(status)s::text)
       AND (%(kind)s::text IS NULL OR t.schedule_kind = %(kind)s::text)
       AND (%(after_at)s::timestamptz IS NULL
            OR (t.created_at, t.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
     ORDER BY t.created_at DESC, t.id DESC
     LIMIT %(budget)s
) s
 WHERE s.hit OR s.n = %(budget)s
 ORDER BY s.created_at DESC, s.id DESC
 LIMIT %(limit)s
"""


async def search_titles(
    conn: Connection,
    *,
    owner: UUID | None,
    created_by: UUID | None,
    status: str | None,
    schedule_kind: str | None,
    text: str,
    limit: int,
    after: tuple[datetime, UUID] | None,
    budget: int,
) -> TitleSearch:
    """Visible tasks whose title contains ``text`` (case-insensitive), newest first, up to
    ``limit``, among at most ``budget`` tasks after the keyset ``after``."""
    cursor = await conn.execute(
        _SEARCH_TITLES,
        {
            "owner": owner,
            "created_by": created_by,
            "status": status,
            "kind": schedule_kind,
            "pattern": _text_filter(text)["pattern"],
            "budget": budget,
            **page_params(after, limit),
        },
        prepare=False,
    )
    scanned = await cursor.fetchall()
    hits = [row["id"] for row in scanned if row["hit"]]
    last = scanned[-1] if scanned else None
    stopped_at = None
    if last is not None and len(hits) < limit and last["n"] == budget:
        stopped_at = (last["created_at"], last["id"])  # nothing after the budget's last read
    rows: list[Row] = []
    if hits:
        listed = await conn.execute(
            _SELECT_TASK + " WHERE t.id = ANY(%s::uuid[]) ORDER BY t.created_at DESC, t.id DESC",
            (hits,),
        )
        rows = await listed.fetchall()
    return TitleSearch(rows=rows, stopped_at=stopped_at)


# One capped count per status, each on the index its status selects (tasks_status_recent,
# or tasks_owner_status_recent for one agent): statuses are literals so the planner sees them.
_COUNT_BY_STATUS = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM tasks t
               WHERE t.status = 'active' AND t.deleted_at IS NULL
                 AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
               LIMIT %(cap)s) s) AS active,
       (SELECT count(*) FROM (SELECT 1 FROM tasks t
               WHERE t.status = 'paused' AND t.deleted_at IS NULL
                 AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
               LIMIT %(cap)s) s) AS paused,
       (SELECT count(*) FROM (SELECT 1 FROM tasks t
               WHERE t.status = 'canceled' AND t.deleted_at IS NULL
                 AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
               LIMIT %(cap)s) s) AS canceled,
       (SELECT count(*) FROM (SELECT 1 FROM tasks t
               WHERE t.status = 'completed' AND t.deleted_at IS NULL
                 AND (%(owner)s::uuid IS NULL OR t.created_by = %(owner)s::uuid)
               LIMIT %(cap)s) s) AS completed
"""


async def count_tasks_by_status(
    conn: Connection, *, owner: UUID | None, cap: int
) -> dict[str, int]:
    """Visible tasks per status within ``owner``'s reach (None: all), each count stopping at
    ``cap`` (River UI's way of keeping counts cheap on big tables: ``cap`` means "at least
    this many"). One statement."""
    cursor = await conn.execute(_COUNT_BY_STATUS, {"owner": owner, "cap": cap}, prepare=False)
    row = await cursor.fetchone()
    assert row is not None
    return {status: int(row[status]) for status in TASK_STATUSES}


async def last_finished_runs(conn: Connection, task_ids: Sequence[UUID]) -> dict[UUID, Row]:
    """The newest finished run (``status, finished_at, id``) of each task that has one."""
    if not task_ids:
        return {}
    cursor = await conn.execute(
        """
        SELECT t.id AS task_id, r.id, r.status, r.finished_at
          FROM unnest(%s::uuid[]) AS t(id)
          CROSS JOIN LATERAL (
              SELECT r.id, r.status, r.finished_at FROM runs r
               WHERE r.task_id = t.id
               ORDER BY r.queued_at DESC, r.id DESC
               LIMIT 1) r
        """,
        (list(task_ids),),
    )
    return {row.pop("task_id"): row for row in await cursor.fetchall()}


async def schedule_anchors(conn: Connection, task_ids: Sequence[UUID]) -> dict[UUID, datetime]:
    """Each task's schedule anchor (the start of an RRULE without DTSTART)."""
    if not task_ids:
        return {}
    cursor = await conn.execute(
        "SELECT id, anchor_at FROM tasks WHERE id = ANY(%s::uuid[])", (list(set(task_ids)),)
    )
    return {row["id"]: row["anchor_at"] for row in await cursor.fetchall()}


async def task_titles(conn: Connection, task_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Titles of tasks by id (deleted tasks too: their runs are still shown)."""
    if not task_ids:
        return {}
    cursor = await conn.execute(
        "SELECT id, title FROM tasks WHERE id = ANY(%s::uuid[])", (list(set(task_ids)),)
    )
    return {row["id"]: row["title"] for row in await cursor.fetchall()}


# The scheduler's batch: active tasks whose next occurrence falls within the horizon, in
# (next_expand_at, id) order after a keyset cursor (the previous batch's last task). The
# partial index ``tasks_due_for_expansion`` (next_expand_at, id WHERE status = 'active' AND
# next_expand_at IS NOT NULL) matches the WHERE and ORDER BY, so tasks that are not due are
# never read, and neither are the dead index entries the tick's earlier batches left behind.
# SKIP LOCKED lets several schedulers split the work.
#
# The locked tasks come back grouped by everything their expansion depends on (schedule,
# mark, catch-up policy) and their runs inherit (priority, concurrency key): a herd of tasks
# sharing ``0 * * * *`` is one row with its ids as text (no per-task Python objects), planned
# once. The anchor only matters to an RRULE. Every row repeats the batch's keyset cursor.
LOCK_DUE_FOR_EXPANSION = """
WITH locked AS (
    SELECT id, schedule_kind, schedule_expr, timezone, anchor_at, expanded_until,
           next_expand_at, catch_up, priority, run_lock_key
      FROM tasks
     WHERE status = 'active' AND next_expand_at IS NOT NULL
       AND next_expand_at <= %(horizon_end)s
       AND (next_expand_at, id) > (%(after_at)s::timestamptz, %(after_id)s::uuid)
     ORDER BY next_expand_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), last AS (
    SELECT next_expand_at, id FROM locked ORDER BY next_expand_at DESC, id DESC LIMIT 1
)
SELECT l.schedule_kind, l.schedule_expr, l.timezone,
       CASE WHEN l.schedule_kind = 'rrule' THEN l.anchor_at END AS anchor_at,
       l.expanded_until, l.catch_up, l.priority, l.run_lock_key,
       array_agg(l.id::text) AS task_ids,
       (SELECT next_expand_at FROM last) AS last_at, (SELECT id FROM last) AS last_id
  FROM locked l
 GROUP BY l.schedule_kind, l.schedule_expr, l.timezone, 4, l.expanded_until, l.catch_up,
          l.priority, l.run_lock_key
"""
_NO_CURSOR = ("-infinity", "00000000-0000-0000-0000-000000000000")


async def lock_due_groups(
    conn: Connection,
    *,
    horizon_end: datetime,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
) -> list[Row]:
    """Lock up to ``limit`` active tasks whose next occurrence is at or before
    ``horizon_end``, after the keyset cursor ``after`` = ``(next_expand_at, id)`` of the
    previous batch (call inside the transaction that also writes the expansion).

    One row per group of tasks that expand alike: ``schedule_kind, schedule_expr,
    timezone, anchor_at`` (RRULEs only), ``expanded_until, catch_up, priority,
    run_lock_key``, their ``task_ids`` (text) and the batch's cursor ``last_at, last_id``.
    """
    after_at, after_id = after if after is not None else _NO_CURSOR
    cursor = await conn.execute(
        LOCK_DUE_FOR_EXPANSION,
        {"horizon_end": horizon_end, "limit": limit, "after_at": after_at, "after_id": after_id},
    )
    return await cursor.fetchall()


async def complete_finished_tasks(conn: Connection, task_ids: Sequence[UUID | str]) -> list[UUID]:
    """Mark ``completed`` every active, non-event task among ``task_ids`` that has no
    occurrence left to expand and no pending run. Returns the ids completed."""
    if not task_ids:
        return []
    cursor = await conn.execute(COMPLETE_FINISHED_TASKS, (list(set(task_ids)),))
    return [row["id"] for row in await cursor.fetchall()]


# Also sent by the worker's pipelined completion (store.due_work.complete_and_lease).
COMPLETE_FINISHED_TASKS = """
UPDATE tasks t SET status = 'completed', updated_at = now()
 WHERE t.id = ANY(%s::uuid[]) AND t.status = 'active'
   AND t.schedule_kind <> 'event' AND t.next_expand_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM due_work d WHERE d.task_id = t.id)
RETURNING t.id
"""


# The columns a lifecycle change needs. ``FOR UPDATE`` serialises changes of one task and
# waits for a scheduler tick that holds the row (its ``SKIP LOCKED`` skips us in turn).
_LOCK_TASK = """
SELECT id, created_by, title, description, schedule_kind, schedule_expr, timezone, payload,
       priority, max_retries, backoff_strategy, timeout_seconds, concurrency_key, run_lock_key,
       dedupe_key, dedupe_window_seconds, catch_up, webhook_url, status, anchor_at,
       expanded_until, next_expand_at
  FROM tasks
 WHERE id = %(id)s AND deleted_at IS NULL
   AND (%(owner)s::uuid IS NULL OR created_by = %(owner)s::uuid)
   FOR UPDATE
"""


async def lock_task(conn: Connection, task_id: UUID, *, owner: UUID | None) -> Row | None:
    """Lock a visible task for a state change (call inside a transaction)."""
    cursor = await conn.execute(_LOCK_TASK, {"id": task_id, "owner": owner})
    return await cursor.fetchone()


async def set_task_status(conn: Connection, task_id: UUID, status: str) -> None:
    """Move a task to ``status`` (the caller checked that the transition is legal)."""
    await conn.execute(
        "UPDATE tasks SET status = %s, updated_at = now() WHERE id = %s", (status, task_id)
    )


async def hide_task(conn: Connection, task_id: UUID) -> None:
    """DELETE /tasks/{id}: canceled and hidden from every read (the row stays for history)."""
    await conn.execute(
        """
        UPDATE tasks SET status = 'canceled', deleted_at = now(), updated_at = now()
         WHERE id = %s
        """,
        (task_id,),
    )


async def reset_expansion(
    conn: Connection,
    task_id: UUID,
    *,
    expanded_until: datetime | None,
    next_expand_at: datetime | None,
) -> None:
    """Restart expansion from a new mark (resume). Unlike the
    scheduler's :func:`store.expansion.apply_plans` this may move the mark backwards: the work it
    covered was removed by the same transaction."""
    await conn.execute(
        """
        UPDATE tasks
           SET expanded_until = %(expanded_until)s, next_expand_at = %(next_expand_at)s,
               updated_at = now()
         WHERE id = %(id)s
        """,
        {"id": task_id, "expanded_until": expanded_until, "next_expand_at": next_expand_at},
    )


async def update_task_document(
    conn: Connection,
    task_id: UUID,
    document: dict[str, Any],
    *,
    restart: ExpansionStart | None = None,
) -> None:
    """Store a validated, merged task document (PATCH). ``restart`` restarts expansion for a
    new schedule in the same statement
    (a change to or from ``event`` must move both at once: ``tasks_event_never_expands``)."""
    await conn.execute(
        """
        UPDATE tasks
           SET title = %(title)s, description = %(description)s,
               schedule_kind = %(schedule_kind)s, schedule_expr = %(schedule_expr)s,
               timezone = %(timezone)s, payload = %(payload)s, priority = %(priority)s,
               max_retries = %(max_retries)s, backoff_strategy = %(backoff_strategy)s,
               timeout_seconds = %(timeout_seconds)s, concurrency_key = %(concurrency_key)s,
               dedupe_key = %(dedupe_key)s, dedupe_window_seconds = %(dedupe_window_seconds)s,
               catch_up = %(catch_up)s, webhook_url = %(webhook_url)s, updated_at = now(),
               expanded_until = CASE WHEN %(restart)s THEN %(expanded_until)s
                                     ELSE expanded_until END,
               next_expand_at = CASE WHEN %(restart)s THEN %(next_expand_at)s
                                     ELSE next_expand_at END,
               anchor_at = CASE WHEN %(restart)s THEN %(anchor_at)s ELSE anchor_at END
         WHERE id = %(id)s
        """,
        {
            **document,
            "payload": Jsonb(document["payload"]),
            "id": task_id,
            "restart": restart is not None,
            "expanded_until": restart.expanded_until if restart else None,
            "next_expand_at": restart.next_expand_at if restart else None,
            "anchor_at": restart.anchor_at if restart else None,
        },
    )


async def update_waiting_runs(conn: Connection, task_id: UUID) -> None:
    """Carry the task's (PATCHed) priority and concurrency key to its runs that still wait."""
    await conn.execute(
        """
        UPDATE due_work d SET priority = t.priority, concurrency_key = t.run_lock_key
          FROM tasks t
         WHERE t.id = %s AND d.task_id = t.id AND d.state IN ('queued', 'failed')
           AND (d.priority <> t.priority OR d.concurrency_key IS DISTINCT FROM t.run_lock_key)
        """,
        (task_id,),
    )


# Which waiting (queued, or failed and waiting for a retry) runs a lifecycle change removes:
#   unstarted_scheduled: materialised occurrences no worker has touched (PATCH of the schedule)
#   scheduled:           every waiting scheduled run (pause)
#   all:                 every waiting run, whatever its trigger (cancel, DELETE)
# Occurrences that never started simply disappear; runs that were asked for explicitly
# (run_now, events, retries) or already attempted are recorded in the history as canceled.
_WAITING_SCOPES = {
    "unstarted_scheduled": "d.state = 'queued' AND d.attempt = 0 AND d.trigger = 'schedule'",
    "scheduled": "d.trigger = 'schedule'",
    "all": "true",
}

# Waiters and streams hear ``c`` for the runs recorded as canceled and ``x`` for the ones
# that vanish; the recorded ones queue their completion webhook.
_REMOVE_WAITING = """
WITH removed AS (
    DELETE FROM due_work d USING tasks t
     WHERE d.task_id = %(task_id)s AND t.id = d.task_id AND d.state IN ('queued', 'failed')
       AND ({scope})
    RETURNING d.id, d.task_id, t.created_by AS agent_id, d.trigger, d.scheduled_for,
              d.created_at, d.attempt, d.started_at, d.steps, d.event, d.event_id,
              d.retry_of, d.attempts, d.attempt > 0 OR d.trigger <> 'schedule' AS kept
), recorded AS (
    INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                      attempt, started_at, finished_at, steps, error, event, event_id,
                      retry_of, attempts)
    SELECT id, task_id, agent_id, trigger, 'canceled', scheduled_for, created_at, attempt,
           started_at, statement_timestamp(), COALESCE(steps, '[]'::jsonb), %(error)s, event,
           event_id, retry_of, attempts
      FROM removed
     WHERE kept
    RETURNING id, task_id, agent_id
)
SELECT (SELECT count(*) FROM removed) AS removed, (SELECT count(*) FROM recorded) AS recorded,
       (SELECT queue_run_webhooks(array_agg(id), array_agg(task_id), array_agg(agent_id))
          FROM recorded) AS hooked,
       (SELECT notify_run_changes(string_agg(
                   run_change(CASE WHEN kept THEN 'c' ELSE 'x' END, id, attempt), ' '))
          FROM removed) AS notified
"""


async def remove_waiting_runs(
    conn: Connection, task_id: UUID, *, scope: str, reason: str
) -> tuple[int, int]:
    """Remove the task's waiting runs in ``scope`` (see ``_WAITING_SCOPES``). Returns
    ``(removed, recorded_as_canceled)``."""
    statement = _REMOVE_WAITING.format(scope=_WAITING_SCOPES[scope])
    error = {"step_id": None, "type": "canceled", "message": reason, "retryable": False}
    cursor = await conn.execute(statement, {"task_id": task_id, "error": Jsonb(error)})
    row = await cursor.fetchone()
    assert row is not None
    return int(row["removed"]), int(row["recorded"])


async def snooze_next_run(conn: Connection, task_id: UUID, *, delay_seconds: float) -> Row | None:
    """Delay the task's earliest waiting run: its ``run_at`` becomes ``max(run_at, now) +
    delay`` (``scheduled_for``, the occurrence's identity, stays). None when nothing waits.
    A run a worker is leasing right now is skipped, not waited for."""
    cursor = await conn.execute(
        """
        WITH earliest AS (
            SELECT id FROM due_work
             WHERE task_id = %(task_id)s AND state IN ('queued', 'failed')
             ORDER BY run_at
             LIMIT 1
               FOR UPDATE SKIP LOCKED
        )
        UPDATE due_work d
           SET run_at = GREATEST(d.run_at, now()) + make_interval(secs => %(delay)s)
          FROM earliest
         WHERE d.id = earliest.id
        RETURNING d.id, d.scheduled_for, d.run_at
        """,
        {"task_id": task_id, "delay": delay_seconds},
    )
    return await cursor.fetchone()


async def get_task_schedule(conn: Connection, task_id: UUID, *, owner: UUID | None) -> Row | None:
    """A visible task's schedule fields and anchor (what a preview needs)."""
    cursor = await conn.execute(
        """
        SELECT id, schedule_kind, schedule_expr, timezone, anchor_at
          FROM tasks
         WHERE id = %(id)s AND deleted_at IS NULL
           AND (%(owner)s::uuid IS NULL OR created_by = %(owner)s::uuid)
        """,
        {"id": task_id, "owner": owner},
    )
    return await cursor.fetchone()


async def earliest_waiting_run_at(conn: Connection, task_id: UUID) -> datetime | None:
    """When the task's earliest waiting run is due (None: nothing waits)."""
    cursor = await conn.execute(
        """
        SELECT min(run_at) AS at FROM due_work
         WHERE task_id = %s AND state IN ('queued', 'failed')
        """,
        (task_id,),
    )
    row = await cursor.fetchone()
    return row["at"] if row else None


async def has_scheduled_run(conn: Connection, task_id: UUID) -> bool:
    """Whether an occurrence of the task has run or is running (a ``once`` task that did
    its work)."""
    cursor = await conn.execute(
        """
        SELECT EXISTS (SELECT 1 FROM runs WHERE task_id = %(id)s AND trigger = 'schedule')
            OR EXISTS (SELECT 1 FROM due_work
                        WHERE task_id = %(id)s AND trigger = 'schedule' AND state = 'running')
               AS ran
        """,
        {"id": task_id},
    )
    row = await cursor.fetchone()
    return bool(row and row["ran"])
