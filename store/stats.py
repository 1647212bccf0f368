"""Cheap aggregate reads behind the scheduler's gauges (``ordinaut_due_work_*``,
``ordinaut_tasks``, ``ordinaut_workers_live``).

They run every few seconds in every scheduler, so each one is bounded: the queue reads use
a partial index of queued and failed rows and touch only those rows of the small hot table;
the task count reads the whole table and is therefore refreshed far less often (see
:mod:`scheduler.gauges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from store.db import Connection, Row

TASK_STATUSES = ("active", "paused", "canceled", "completed")


# The predicate implies the partial indexes' (``state IN ('queued', 'failed')``), so the
# planner reads ``due_work_next_due`` (or a fair-lease index with the same predicate, when
# costs tie) and never the leased rows.
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


async def ready_runs(conn: Connection, *, owner: UUID | None, cap: int) -> QueueStats:
    """:func:`queue_stats` for the console: one agent's ready runs (``owner``; None: all),
    the count stopping at ``cap`` (a backlog of millions is "at least ``cap``"). A run's
    owner is looked up by primary key, run by run: the ready runs are few, the tasks many."""
    cursor = await conn.execute(
        """
        SELECT (SELECT count(*) FROM (
                    SELECT 1 FROM due_work d
                     WHERE d.state IN ('queued', 'failed') AND d.run_at <= now()
                       AND (%(owner)s::uuid IS NULL OR %(owner)s::uuid = (
                            SELECT t.created_by FROM tasks t WHERE t.id = d.task_id))
                     LIMIT %(cap)s) capped) AS ready,
               COALESCE(EXTRACT(EPOCH FROM now() - (
                    SELECT min(d.run_at) FROM due_work d
                     WHERE d.state IN ('queued', 'failed') AND d.run_at <= now()
                       AND (%(owner)s::uuid IS NULL OR %(owner)s::uuid = (
                            SELECT t.created_by FROM tasks t WHERE t.id = d.task_id)))),
                        0)::float8 AS oldest_age
        """,
        {"owner": owner, "cap": cap},
        prepare=False,
    )
    row = await cursor.fetchone()
    assert row is not None
    return QueueStats(int(row["ready"]), max(0.0, float(row["oldest_age"])))


@dataclass(frozen=True)
class SchedulerHealth:
    """Schedulers heard from recently, and how long ago the freshest one ticked."""

    live: int
    tick_age_seconds: float | None  # None: no tick recorded by a live scheduler


async def scheduler_health(conn: Connection, *, silent_seconds: float) -> SchedulerHealth:
    cursor = await conn.execute(
        """
        SELECT count(*) AS live,
               EXTRACT(EPOCH FROM now() - max(last_tick_at))::float8 AS tick_age
          FROM schedulers
         WHERE last_seen_at >= now() - make_interval(secs => %s)
        """,
        (silent_seconds,),
    )
    row = await cursor.fetchone()
    assert row is not None
    age = row["tick_age"]
    return SchedulerHealth(int(row["live"]), None if age is None else max(0.0, float(age)))


async def list_schedulers(conn: Connection) -> list[Row]:
    """The scheduler registry (``id, host, pid, started_at, last_seen_at, last_tick_at``)."""
    cursor = await conn.execute(
        "SELECT id, host, pid, started_at, last_seen_at, last_tick_at FROM schedulers "
        "ORDER BY started_at"
    )
    return await cursor.fetchall()


async def runs_per_minute(conn: Connection, *, owner: UUID | None, minutes: int) -> list[Row]:
    """Finished runs per minute and status over the last ``minutes`` minutes (``minute``,
    ``status``, ``n``), the current minute included; minutes without runs are absent.
    ``date_bin`` rather than ``date_trunc``: no time zone to consult per row (half the time)."""
    cursor = await conn.execute(
        """
        SELECT date_bin('1 minute', finished_at, timestamptz '2000-01-01') AS minute, status,
               count(*) AS n
          FROM runs
         WHERE finished_at >= date_trunc('minute', now()) - make_interval(mins => %(back)s)
           AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
         GROUP BY 1, 2
        """,
        {"owner": owner, "back": minutes - 1},
        prepare=False,
    )
    return await cursor.fetchall()


async def dead_runs_since(
    conn: Connection, *, owner: UUID | None, seconds: float, cap: int, newest: int
) -> tuple[int, list[Row]]:
    """Runs that ended ``dead`` within the last ``seconds``: how many (stopping at ``cap``)
    and the ``newest`` of them (``id, task_id, finished_at, error``). Both read the partial
    index of runs that did not succeed."""
    params = {"owner": owner, "seconds": seconds, "cap": cap, "newest": newest}
    counted = await conn.execute(
        """
        SELECT count(*) AS n FROM (
            SELECT 1 FROM runs
             WHERE status = 'dead' AND status <> 'succeeded'
               AND finished_at >= now() - make_interval(secs => %(seconds)s)
               AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
             LIMIT %(cap)s) capped
        """,
        params,
        prepare=False,
    )
    count_row = await counted.fetchone()
    listed = await conn.execute(
        """
        SELECT id, task_id, finished_at, error FROM runs
         WHERE status = 'dead' AND status <> 'succeeded'
           AND finished_at >= now() - make_interval(secs => %(seconds)s)
           AND (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
         ORDER BY finished_at DESC LIMIT %(newest)s
        """,
        params,
        prepare=False,
    )
    return (int(count_row["n"]) if count_row else 0), await listed.fetchall()


# Per-task tables of the "Ordinaut tasks and tools" dashboard, run by Grafana's PostgreSQL
# data source (task ids are never metric labels: unbounded cardinality). ``$__timeFilter``
# is Grafana's macro for the dashboard's time range; ``runs_finished`` indexes it.
DEAD_RUNS_BY_TASK_SQL = """
SELECT r.task_id::text AS task_id, t.title,
       count(*) FILTER (WHERE r.status = 'dead') AS dead,
       count(*) AS finished,
       round(100.0 * count(*) FILTER (WHERE r.status = 'dead') / count(*), 1) AS dead_percent,
       max(r.finished_at) FILTER (WHERE r.status = 'dead') AS last_dead_at,
       (array_agg(r.error ->> 'message' ORDER BY r.finished_at DESC)
            FILTER (WHERE r.status = 'dead'))[1] AS last_error
  FROM runs r JOIN tasks t ON t.id = r.task_id
 WHERE $__timeFilter(r.finished_at)
 GROUP BY r.task_id, t.title
HAVING count(*) FILTER (WHERE r.status = 'dead') > 0
 ORDER BY dead DESC, finished DESC
 LIMIT 20
"""

RUN_DURATION_BY_TASK_SQL = """
SELECT r.task_id::text AS task_id, t.title, count(*) AS runs,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.duration_ms) AS p95_ms,
       max(r.duration_ms) AS max_ms,
       round(avg(EXTRACT(EPOCH FROM r.started_at - r.scheduled_for) * 1000)::numeric, 1)
           AS avg_start_delay_ms
  FROM runs r JOIN tasks t ON t.id = r.task_id
 WHERE $__timeFilter(r.finished_at) AND r.duration_ms IS NOT NULL
 GROUP BY r.task_id, t.title
 ORDER BY p95_ms DESC
 LIMIT 20
"""

READY_RUNS_BY_TASK_SQL = """
SELECT d.task_id::text AS task_id, t.title, count(*) AS ready,
       EXTRACT(EPOCH FROM now() - min(d.run_at))::float8 AS oldest_age_seconds,
       t.concurrency_key
  FROM due_work d JOIN tasks t ON t.id = d.task_id
 WHERE d.state IN ('queued', 'failed') AND d.run_at <= now()
 GROUP BY d.task_id, t.title, t.concurrency_key
 ORDER BY ready DESC, oldest_age_seconds DESC
 LIMIT 20
"""

GRAFANA_TABLES = {
    "Tasks with dead runs": DEAD_RUNS_BY_TASK_SQL,
    "Slowest tasks (run duration)": RUN_DURATION_BY_TASK_SQL,
    "Tasks with ready runs waiting (now)": READY_RUNS_BY_TASK_SQL,
}
