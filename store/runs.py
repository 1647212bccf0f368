"""Run history and the combined view of finished and unfinished runs (``run_view``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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


_NEWEST_FIRST = newest_first("queued_at", "id")


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
    ``since``/``until`` bound the queue time."""
    cursor = await conn.execute(
        _SELECT_RUN
        + """
         WHERE (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
           AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
           AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
           AND (%(triggers)s::text[] IS NULL OR trigger = ANY(%(triggers)s::text[]))
           AND (%(since)s::timestamptz IS NULL OR queued_at >= %(since)s::timestamptz)
           AND (%(until)s::timestamptz IS NULL OR queued_at < %(until)s::timestamptz)
        """
        + _NEWEST_FIRST,
        {
            "owner": owner,
            "task_id": task_id,
            "statuses": any_of(statuses),
            "triggers": any_of(triggers),
            "since": since,
            "until": until,
            **page_params(after, limit),
        },
    )
    return await cursor.fetchall()
