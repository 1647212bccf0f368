"""Run history and the combined view of finished and unfinished runs (``run_view``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from store.db import Connection, Row
from store.paging import any_of, newest_first, page_params

_SELECT_RUN = """
SELECT id, task_id, agent_id, trigger, status, scheduled_for, queued_at, attempt,
       started_at, finished_at, duration_ms, worker_id, steps, error, event, retry_of,
       next_attempt_at, cancel_requested, attempts
  FROM run_view
"""


async def get_run(conn: Connection, run_id: UUID | str, *, owner: UUID | None) -> Row | None:
    """One run, finished or not; ``owner`` restricts to one agent's runs (None: any)."""
    cursor = await conn.execute(
        _SELECT_RUN
        + " WHERE id = %(id)s AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)",
        {"id": run_id, "owner": owner},
    )
    return await cursor.fetchone()


async def get_runs(conn: Connection, run_ids: Sequence[UUID | str]) -> list[Row]:
    """The runs among ``run_ids`` that exist (finished or not), in no particular order:
    one statement for a whole batch of notifications or deliveries."""
    if not run_ids:
        return []
    cursor = await conn.execute(_SELECT_RUN + " WHERE id = ANY(%s::uuid[])", (list(run_ids),))
    return await cursor.fetchall()


async def get_visible_runs(
    conn: Connection, run_ids: Sequence[UUID], *, owner: UUID | None
) -> list[Row]:
    """The runs among ``run_ids`` that exist and ``owner`` may see, newest first."""
    if not run_ids:
        return []
    cursor = await conn.execute(
        _SELECT_RUN
        + """
         WHERE id = ANY(%(ids)s::uuid[])
           AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
         ORDER BY queued_at DESC, id DESC
        """,
        {"ids": list(set(run_ids)), "owner": owner},
    )
    return await cursor.fetchall()


WAITING_STATUSES = ("queued", "running", "failed")
FINAL_STATUSES = ("succeeded", "dead", "canceled")
RUN_STATUSES = WAITING_STATUSES + FINAL_STATUSES

# Lists read the two homes of a run separately and merge them (a run is in exactly one):
# waiting runs from ``due_work``, finished ones from ``runs``. Through ``run_view`` the
# planner joins all of ``due_work`` with ``tasks`` (a hash join over every task) before it
# can order. Here an admin's page looks up the owners of its own rows only (by primary key),
# an agent's waiting runs are those of its live tasks (tasks_owner_recent) plus the running
# ones of tasks it deleted (a deletion removes the waiting ones), and finished runs walk the
# index that matches the filters. The columns are ``run_view``'s.
_WAITING = """
SELECT w.*, (SELECT t.created_by FROM tasks t WHERE t.id = w.task_id) AS agent_id FROM (
    SELECT d.id, d.task_id, d.trigger, d.state AS status, d.scheduled_for,
           d.created_at AS queued_at, d.attempt, d.started_at,
           NULL::timestamptz AS finished_at, NULL::integer AS duration_ms,
           d.leased_by AS worker_id, COALESCE(d.steps, '[]'::jsonb) AS steps,
           d.last_error AS error, COALESCE(event_document(d.event_id), d.event) AS event,
           d.retry_of,
           CASE WHEN d.state = 'running' THEN NULL ELSE d.run_at END AS next_attempt_at,
           d.cancel_requested, COALESCE(d.attempts, '[]'::jsonb) AS attempts
      FROM due_work d
     WHERE (%(owner)s::uuid IS NULL
            OR d.task_id IN (SELECT t.id FROM tasks t
                              WHERE t.created_by = %(owner)s::uuid AND t.deleted_at IS NULL)
            OR (d.state = 'running' AND %(owner)s::uuid = (
                    SELECT t.created_by FROM tasks t WHERE t.id = d.task_id)))
       AND (%(task_id)s::uuid IS NULL OR d.task_id = %(task_id)s::uuid)
       AND (%(status)s::text IS NULL OR d.state = %(status)s::text)
       AND (%(statuses)s::text[] IS NULL OR d.state = ANY(%(statuses)s::text[]))
       AND (%(trigger)s::text IS NULL OR d.trigger = %(trigger)s::text)
       AND (%(triggers)s::text[] IS NULL OR d.trigger = ANY(%(triggers)s::text[]))
       AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s::timestamptz)
       AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s::timestamptz)
       AND (%(after_at)s::timestamptz IS NULL
            OR (d.created_at, d.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
     ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s
) w
"""
_FINISHED = """
SELECT id, task_id, agent_id, trigger, status, scheduled_for, queued_at, attempt, started_at,
       finished_at, duration_ms, worker_id, steps, error,
       COALESCE(event_document(event_id), event) AS event, retry_of,
       NULL::timestamptz AS next_attempt_at, false AS cancel_requested,
       COALESCE(attempts, '[]'::jsonb) AS attempts
  FROM runs
 WHERE (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
   AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
   AND (%(trigger)s::text IS NULL OR trigger = %(trigger)s::text)
   AND (%(triggers)s::text[] IS NULL OR trigger = ANY(%(triggers)s::text[]))
   AND (%(since)s::timestamptz IS NULL OR queued_at >= %(since)s::timestamptz)
   AND (%(until)s::timestamptz IS NULL OR queued_at < %(until)s::timestamptz)
""" + newest_first("queued_at", "id")

# Status counts, capped: each final status counted up to %(cap)s on the index its status
# selects (the statuses are literals, so the partial indexes apply); the waiting runs, few,
# counted per state, up to %(waiting_cap)s in all. An agent's waiting runs are found through
# its live tasks (tasks_owner_recent): a deleted task keeps no waiting run.
_COUNT_FINISHED = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM runs
          WHERE status = 'succeeded' AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
          LIMIT %(cap)s) s) AS succeeded,
       (SELECT count(*) FROM (SELECT 1 FROM runs
          WHERE status = 'dead' AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
          LIMIT %(cap)s) s) AS dead,
       (SELECT count(*) FROM (SELECT 1 FROM runs
          WHERE status = 'canceled' AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
          LIMIT %(cap)s) s) AS canceled
"""
_COUNT_WAITING = """
SELECT state, count(*) AS n FROM (
    SELECT d.state FROM due_work d
     WHERE %(owner)s::uuid IS NULL
        OR d.task_id IN (SELECT t.id FROM tasks t
                          WHERE t.created_by = %(owner)s::uuid AND t.deleted_at IS NULL)
     LIMIT %(waiting_cap)s) capped
 GROUP BY state
"""


async def list_runs(
    conn: Connection,
    *,
    owner: UUID | None,
    task_id: UUID | None,
    statuses: Sequence[str] | None = None,
    triggers: Sequence[str] | None = None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Row]:
    """Runs newest first (by queue time); ``after`` is the previous page's last
    ``(queued_at, id)``. ``statuses``/``triggers``: any of these (None or empty: all);
    ``since``/``until`` bound the queue time.

    Sent unprepared: a plan made for the filters at hand folds the unused ones away and
    walks the index that matches (a cached generic plan cannot)."""
    params = {
        "owner": owner,
        "task_id": task_id,
        **_one_or_any("status", "statuses", statuses),
        **_one_or_any("trigger", "triggers", triggers),
        "since": since,
        "until": until,
        **page_params(after, limit),
    }
    wanted = set(statuses or RUN_STATUSES)
    found: list[Row] = []
    for statement, home in ((_WAITING, WAITING_STATUSES), (_FINISHED, FINAL_STATUSES)):
        if wanted & set(home):
            cursor = await conn.execute(statement, params, prepare=False)
            found += await cursor.fetchall()
    found.sort(key=lambda run: (run["queued_at"], run["id"]), reverse=True)
    return found[:limit]


def _one_or_any(name: str, plural: str, values: Sequence[str] | None) -> dict[str, Any]:
    """A list filter as ``<name> = value`` when it holds one value, else ``<name>s = ANY``:
    an index led by the column orders a single value's rows, not several values' (so a
    status or trigger alone walks its partial index newest first)."""
    if values and len(set(values)) == 1:
        return {name: str(values[0]), plural: None}
    return {name: None, plural: any_of(values)}


async def count_runs_by_status(
    conn: Connection, *, owner: UUID | None, cap: int, waiting_cap: int = 100_000
) -> dict[str, int]:
    """Runs per status within ``owner``'s reach (None: all), each final status counted up to
    ``cap`` (River UI's way: ``cap`` means "at least this many") and the waiting ones up to
    ``waiting_cap`` in all. Two bounded statements."""
    params = {"owner": owner, "cap": cap, "waiting_cap": waiting_cap}
    cursor = await conn.execute(_COUNT_FINISHED, params, prepare=False)
    counts: dict[str, int] = dict.fromkeys(RUN_STATUSES, 0)
    finished = await cursor.fetchone()
    if finished is not None:
        counts.update({status: int(finished[status]) for status in FINAL_STATUSES})
    cursor = await conn.execute(_COUNT_WAITING, params, prepare=False)
    counts.update({row["state"]: int(row["n"]) for row in await cursor.fetchall()})
    return counts
