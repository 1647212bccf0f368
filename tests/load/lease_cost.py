"""What the lease statement costs, before and after fair leasing (issue 17): leases of 50
timed statement by statement, as a worker runs them: each lease commits, and the oldest runs
beyond 100 running (two workers x 50) are then completed (deleted), so the indexes carry the
dead entries a drain leaves. Scenarios:

- ``1 agent``: one agent with a backlog of ready runs;
- ``100 agents``: a hundred agents, each with a backlog;
- ``100 agents, 1 ready``: a hundred agents with runs materialised ahead (not yet due), one
  of them with a ready backlog (the scheduler's usual picture).

and two statements: ``before`` (the global (priority, run_at) lease of main, on its index)
and ``after`` (:data:`store.due_work._LEASE`).

    python -m tests.load.lease_cost [--leases 150] [--backlog 20000]

The two statements alternate lease by lease on the same queue, in a shuffled order, so that
drift (other work on the machine, the queue emptying) hits them alike. Prints the median
and p99 in ms. Uses ``DATABASE_URL`` when set, else a private PostgreSQL with fsync on.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from store import due_work as q
from store.db import SESSION_OPTIONS
from tests.load.completion_cost import _migrate, database

LIMIT = 50

# The lease of main before fair leasing, for comparison; it needs main's index, created
# here (no statement of the new code reads it).
_BEFORE = """
WITH locked AS (
    SELECT d.id, d.concurrency_key, d.priority, d.run_at
      FROM due_work d
     WHERE d.state IN ('queued', 'failed') AND d.run_at <= now()
       AND d.priority = ANY('{1,2,3,4,5,6,7,8,9}'::smallint[])
       AND (d.concurrency_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM due_work r
              WHERE r.state = 'running' AND r.concurrency_key IS NOT NULL
                AND r.concurrency_key = d.concurrency_key))
     ORDER BY d.priority, d.run_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id FROM (
        SELECT id, concurrency_key,
               row_number() OVER (PARTITION BY concurrency_key ORDER BY priority, run_at) AS nth
          FROM locked) ranked
     WHERE concurrency_key IS NULL OR nth = 1
), leased AS (
    UPDATE due_work d
       SET state = 'running', leased_by = %(worker)s,
           lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
           attempt = d.attempt + 1, started_at = now(),
           first_started_at = COALESCE(d.first_started_at, now()), steps = NULL
      FROM picked p, tasks t
     WHERE d.id = p.id AND t.id = d.task_id
    RETURNING d.id, d.task_id, d.scheduled_for, d.trigger, d.attempt, d.event, d.started_at,
              d.created_at AS queued_at, t.created_by, t.payload, t.timeout_seconds,
              t.max_retries, t.backoff_strategy, t.status = 'canceled' AS task_canceled
)
SELECT id::text AS id, task_id::text AS task_id, scheduled_for, trigger, attempt, event,
       started_at, queued_at, created_by::text AS agent_id, payload::text AS payload,
       timeout_seconds, max_retries, backoff_strategy, task_canceled,
       (SELECT notify_run_changes(string_agg(run_change('r', id, attempt), ' '))
          FROM leased) AS notified
  FROM leased
"""
_OLD_INDEX = (
    "CREATE INDEX IF NOT EXISTS due_work_lease ON due_work (priority, run_at) "
    "WHERE state IN ('queued', 'failed')"
)
STATEMENTS = {"before": _BEFORE, "after": q._LEASE}


def agents_with_tasks(conn: psycopg.Connection[dict[str, Any]], n: int) -> list[str]:
    """``n`` agents with one event task each; the tasks' ids."""
    tasks = []
    for _ in range(n):
        agent = conn.execute(
            "INSERT INTO agents (name) VALUES (%s) RETURNING id", (f"a-{uuid.uuid4()}",)
        ).fetchone()
        assert agent
        task = conn.execute(
            """
            INSERT INTO tasks (created_by, title, schedule_kind, schedule_expr, timezone,
                               payload, priority)
            VALUES (%s, 'cost', 'event', 'cost.x', 'UTC', '{"pipeline": []}', %s)
            RETURNING id::text
            """,
            (agent["id"], random.randint(1, 9)),
        ).fetchone()
        assert task
        tasks.append(task["id"])
    return tasks


def backlog(conn: psycopg.Connection[dict[str, Any]], task_id: str, n: int, *, later: bool) -> None:
    conn.execute(
        """
        INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
        SELECT gen_random_uuid(), t.id, now() + make_interval(secs => g),
               CASE WHEN %s THEN now() + make_interval(secs => 60 + g)
                    ELSE now() - make_interval(secs => g) END,
               t.priority, 'manual'
          FROM tasks t, generate_series(1, %s) AS g
         WHERE t.id = %s
        """,
        (later, n, task_id),
    )


def scenario(conn: psycopg.Connection[dict[str, Any]], name: str, total: int) -> None:
    conn.execute("TRUNCATE due_work")
    if name == "1 agent":
        (task,) = agents_with_tasks(conn, 1)
        backlog(conn, task, total, later=False)
    elif name == "100 agents":
        for task in agents_with_tasks(conn, 100):
            backlog(conn, task, total // 100, later=False)
    else:
        tasks = agents_with_tasks(conn, 100)
        for task in tasks[1:]:
            backlog(conn, task, total // 100, later=True)
        backlog(conn, tasks[0], total, later=False)
    conn.execute("VACUUM ANALYZE due_work")


def time_lease(conn: psycopg.Connection[dict[str, Any]], statement: str) -> tuple[float, int]:
    params = q._lease_params("bench", LIMIT, 30, q.DEFAULT_CONCURRENT_RUNS)
    with conn.transaction():  # the commit (a WAL flush) is not the statement's cost
        start = time.perf_counter()
        rows = conn.execute(statement, params).fetchall()
        elapsed = (time.perf_counter() - start) * 1000
    conn.execute(_COMPLETE_OLDEST)
    return elapsed, len(rows)


# What completion does to the queue: the runs leave it (100 stay running, as with two
# workers of 50).
_COMPLETE_OLDEST = """
DELETE FROM due_work WHERE id IN (
    SELECT id FROM due_work WHERE state = 'running'
     ORDER BY started_at, id OFFSET 100)
"""


def measure(url: str, leases: int, total: int) -> None:
    with psycopg.connect(
        url, autocommit=True, row_factory=dict_row, options=SESSION_OPTIONS
    ) as conn:
        conn.execute(_OLD_INDEX)
        for name in ("1 agent", "100 agents", "100 agents, 1 ready"):
            scenario(conn, name, total)
            times: dict[str, list[float]] = {label: [] for label in STATEMENTS}
            sizes: dict[str, set[int]] = {label: set() for label in STATEMENTS}
            for label in STATEMENTS:  # warm-up (plans, caches)
                time_lease(conn, STATEMENTS[label])
            for _ in range(leases):
                order = list(STATEMENTS)
                random.shuffle(order)
                for label in order:
                    ms, n = time_lease(conn, STATEMENTS[label])
                    times[label].append(ms)
                    sizes[label].add(n)
            for label, values in times.items():
                p99 = statistics.quantiles(values, n=100)[98]
                print(
                    f"{name:22} {label:7} median {statistics.median(values):6.3f} ms"
                    f"  p99 {p99:6.3f} ms  rows {sorted(sizes[label])}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=150)
    parser.add_argument("--backlog", type=int, default=20000, help="ready runs in all")
    args = parser.parse_args()
    with database() as url:
        asyncio.run(_migrate(url))
        measure(url, args.leases, args.backlog)


if __name__ == "__main__":
    main()
