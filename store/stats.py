"""Cheap aggregate reads behind the scheduler's gauges (``ordinaut_due_work_*``,
``ordinaut_tasks``, ``ordinaut_workers_live``).

They run every few seconds in every scheduler, so each one is bounded: the queue reads use
the partial index ``due_work_next_due`` and touch only ready rows of the small hot table;
the task count reads the whole table and is therefore refreshed far less often (see
:mod:`scheduler.gauges`).
"""

from __future__ import annotations

from dataclasses import dataclass

from store.db import Connection

TASK_STATUSES = ("active", "paused", "canceled", "completed")


# The predicate is the partial index's (``state IN ('queued', 'failed')`` on ``run_at``),
# so the planner walks only the ready prefix of ``due_work_next_due``.
QUEUE_STATS_QUERY = """
SELECT count(*) AS ready,
       COALESCE(EXTRACT(EPOCH FROM now() - min(run_at)), 0)::float8 AS oldest_age
  FROM due_work
 WHERE state IN ('queued', 'failed') AND run_at <= now()
"""


@dataclass(frozen=True)
class QueueStats:
    """Ready runs (due now, not leased) and how long the oldest of them has waited."""

    ready: int
    oldest_age_seconds: float


async def queue_stats(conn: Connection) -> QueueStats:
    """Ready = waiting (queued, or failed and waiting for its retry) with ``run_at`` passed.

    Age is measured on the database clock, like ``run_at`` itself.
    """
    cursor = await conn.execute(QUEUE_STATS_QUERY)
    row = await cursor.fetchone()
    assert row is not None
    return QueueStats(int(row["ready"]), max(0.0, float(row["oldest_age"])))


async def tasks_by_status(conn: Connection) -> dict[str, int]:
    """Live (not deleted) tasks per status; every known status is present, zeros included.

    A sequential scan with a hash aggregate: ~10 ms per 100k tasks, which is why callers
    refresh it every 15 s rather than every tick.
    """
    cursor = await conn.execute(
        "SELECT status, count(*) AS n FROM tasks WHERE deleted_at IS NULL GROUP BY status"
    )
    counts = dict.fromkeys(TASK_STATUSES, 0)
    for row in await cursor.fetchall():
        counts[row["status"]] = int(row["n"])
    return counts


async def live_workers(conn: Connection, *, silent_seconds: float) -> int:
    """Workers whose registry row was refreshed within ``silent_seconds``."""
    cursor = await conn.execute(
        "SELECT count(*) AS live FROM workers"
        " WHERE last_seen_at >= now() - make_interval(secs => %s)",
        (silent_seconds,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row["live"])
