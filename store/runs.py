"""Run history and the combined view of finished and unfinished runs (``run_view``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from store.db import Connection, Row
from store.paging import newest_first, page_params

_SELECT_RUN = """
SELECT id, task_id, agent_id, trigger, status, scheduled_for, queued_at, attempt,
       started_at, finished_at, duration_ms, worker_id, steps, error, event, retry_of,
       next_attempt_at, cancel_requested
  FROM run_view
"""


async def get_run(conn: Connection, run_id: UUID, *, owner: UUID | None) -> Row | None:
    """One run, finished or not; ``owner`` restricts to one agent's runs (None: any)."""
    cursor = await conn.execute(
        _SELECT_RUN
        + " WHERE id = %(id)s AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)",
        {"id": run_id, "owner": owner},
    )
    return await cursor.fetchone()


async def get_runs(conn: Connection, run_ids: Sequence[UUID], *, owner: UUID | None) -> list[Row]:
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


_NEWEST_FIRST = newest_first("queued_at", "id")


async def list_runs(
    conn: Connection,
    *,
    owner: UUID | None,
    task_id: UUID | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
    trigger: str | None = None,
) -> list[Row]:
    """Runs newest first (by queue time); ``after`` is the previous page's last
    ``(queued_at, id)``. ``since``/``until`` bound the queue time.

    Sent unprepared: a plan made for the filters at hand excludes the half of ``run_view``
    the status rules out and walks the index that matches (a cached generic plan cannot)."""
    cursor = await conn.execute(
        _SELECT_RUN
        + """
         WHERE (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
           AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
           AND (%(status)s::text IS NULL OR status = %(status)s::text)
           AND (%(trigger)s::text IS NULL OR trigger = %(trigger)s::text)
           AND (%(since)s::timestamptz IS NULL OR queued_at >= %(since)s::timestamptz)
           AND (%(until)s::timestamptz IS NULL OR queued_at < %(until)s::timestamptz)
        """
        + _NEWEST_FIRST,
        {
            "owner": owner,
            "task_id": task_id,
            "status": status,
            "trigger": trigger,
            "since": since,
            "until": until,
            **page_params(after, limit),
        },
        prepare=False,
    )
    return await cursor.fetchall()


RUN_STATUSES = ("queued", "running", "failed", "succeeded", "dead", "canceled")


async def count_runs_by_status(
    conn: Connection, *, owner: UUID | None, task_id: UUID | None, cap: int
) -> dict[str, int]:
    """Runs per status, each count stopping at ``cap`` ("at least this many", as River UI
    counts): one bounded statement per status, each reading the half of ``run_view`` and the
    index its status selects."""
    counts: dict[str, int] = {}
    for status in RUN_STATUSES:
        cursor = await conn.execute(
            """
            SELECT count(*) AS n FROM (
                SELECT 1 FROM run_view
                 WHERE status = %(status)s
                   AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
                   AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
                 LIMIT %(cap)s) capped
            """,
            {"status": status, "owner": owner, "task_id": task_id, "cap": cap},
            prepare=False,
        )
        row = await cursor.fetchone()
        counts[status] = int(row["n"]) if row else 0
    return counts
