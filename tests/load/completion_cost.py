"""What results cost the worker's completion statement: batches of 100 finished runs moved
from ``due_work`` to ``runs``, timed statement by statement (commit excluded), for:

- ``before``: the statement as it was before results existed (no attempts, no
  notification, no webhook outbox);
- ``shipped``: as it is now, with nobody having configured a webhook;
- ``no outbox call`` / ``no notify``: ``shipped`` without one of its two additions;
- ``other agent hooked``: one unrelated agent has a webhook URL (the join runs, nothing is
  queued);
- ``owner hooked``: the runs' owner has one (a delivery is queued per run).

    python -m tests.load.completion_cost [--batches 200]

Variants are interleaved batch by batch, in a shuffled order, so that drift (other work on
the machine) hits them alike; the medians are printed in µs per run. Uses ``DATABASE_URL``
when set, else a private PostgreSQL with fsync on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from ops.embedded_pg import EmbeddedPostgres
from store import due_work as q
from store import migrate
from store.db import connect

BATCH = 100

# The completion statement of the commit before results (24d51c2), for comparison.
_BEFORE = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(items)s::jsonb)
        AS x(id uuid, attempt int, agent_id uuid, status text, finished_at timestamptz,
             duration_ms int, steps jsonb, error jsonb)
), done AS (
    DELETE FROM due_work d USING input i
     WHERE d.id = i.id AND d.attempt = i.attempt AND d.leased_by = %(worker)s
       AND d.state = 'running'
    RETURNING d.id, d.task_id, d.trigger, d.scheduled_for, d.created_at, d.attempt,
              d.started_at, d.event, d.retry_of
)
INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at, attempt,
                  started_at, finished_at, duration_ms, worker_id, steps, error, event,
                  retry_of)
SELECT done.id, done.task_id, i.agent_id, done.trigger, i.status, done.scheduled_for,
       done.created_at, done.attempt, done.started_at, i.finished_at, i.duration_ms,
       %(worker)s, i.steps, i.error, done.event, done.retry_of
  FROM done JOIN input i ON i.id = done.id
RETURNING id::text AS id, status, trigger
"""
_OUTBOX_CALL = (
    "(SELECT queue_run_webhooks(array_agg(id), array_agg(task_id), array_agg(agent_id))\n"
    "          FROM written)"
)
_NOTIFY_CALL = (
    "(SELECT notify_run_changes(\n"
    "                   string_agg(run_change(left(status, 1), id, attempt), ' '))\n"
    "          FROM written)"
)
assert _OUTBOX_CALL in q._FINISH and _NOTIFY_CALL in q._FINISH

STATEMENTS = {
    "before": _BEFORE,
    "shipped": q._FINISH,
    "no outbox call": q._FINISH.replace(_OUTBOX_CALL, "0"),
    "no notify": q._FINISH.replace(_NOTIFY_CALL, "0"),
    "other agent hooked": q._FINISH,
    "owner hooked": q._FINISH,
}


@contextmanager
def database() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory() as home:
        cluster = EmbeddedPostgres(Path(home), fast=False)
        cluster.start()
        try:
            url = cluster.url()
            assert url is not None
            yield url
        finally:
            cluster.destroy()


async def _migrate(url: str) -> None:
    async with await connect(url) as conn:
        await migrate.migrate(conn)


def prepare(conn: psycopg.Connection[dict]) -> tuple[str, str, str]:
    """Agents (the runs' owner, another) and the owner's event task."""
    owner = conn.execute(
        "INSERT INTO agents (name) VALUES (%s) RETURNING id::text", (f"o-{uuid.uuid4()}",)
    ).fetchone()
    other = conn.execute(
        "INSERT INTO agents (name) VALUES (%s) RETURNING id::text", (f"x-{uuid.uuid4()}",)
    ).fetchone()
    assert owner and other
    task = conn.execute(
        """
        INSERT INTO tasks (created_by, title, schedule_kind, schedule_expr, timezone, payload)
        VALUES (%s, 'cost', 'event', 'cost.x', 'UTC', '{"pipeline": []}') RETURNING id::text
        """,
        (owner["id"],),
    ).fetchone()
    assert task
    return owner["id"], other["id"], task["id"]


def leased_batch(conn: psycopg.Connection[dict], task_id: str) -> list[str]:
    rows = conn.execute(
        """
        INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger, state,
                              attempt, leased_by, lease_expires_at, started_at)
        SELECT gen_random_uuid(), %s, clock_timestamp(), now(), 5, 'manual', 'running', 1,
               'w', now() + interval '1 minute', now()
          FROM generate_series(1, %s)
        RETURNING id::text
        """,
        (task_id, BATCH),
    ).fetchall()
    return [row["id"] for row in rows]


def items(ids: list[str], owner: str) -> str:
    step = [{"id": "echo", "uses": "debug.echo", "status": "succeeded", "output": {"n": 1}}]
    return json.dumps(
        [
            {
                "id": run_id,
                "attempt": 1,
                "agent_id": owner,
                "status": "succeeded",
                "finished_at": datetime.now(UTC).isoformat(),  # read by "before" only
                "duration_ms": 1,
                "steps": step,
                "error": None,
            }
            for run_id in ids
        ]
    )


def timed(conn: psycopg.Connection[dict], statement: str, payload: str) -> float:
    with conn.transaction():
        started = time.perf_counter()
        conn.execute(statement, {"items": payload, "worker": "w"}).fetchall()
        return time.perf_counter() - started


def configure(conn: psycopg.Connection[dict], name: str, owner: str, other: str) -> None:
    """Give the variant's agent a webhook URL and nobody else (rows that already say so are
    not touched: churn would leave dead index entries that no real deployment has)."""
    hooked = {"other agent hooked": other, "owner hooked": owner}.get(name)
    conn.execute(
        """
        UPDATE agents
           SET webhook_url = CASE WHEN id::text = %(hooked)s THEN 'https://hooks.example/x' END
         WHERE webhook_url IS DISTINCT FROM
               CASE WHEN id::text = %(hooked)s THEN 'https://hooks.example/x' END
        """,
        {"hooked": hooked},
    )


def measure(url: str, batches: int) -> dict[str, float]:
    per_run: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    asyncio.run(_migrate(url))
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        owner, other, task = prepare(conn)
        order = list(STATEMENTS.items())
        shuffle = random.Random(20261204).shuffle
        for batch in range(batches):
            shuffle(order)  # no variant always follows the same one
            for name, statement in order:
                configure(conn, name, owner, other)
                ids = leased_batch(conn, task)
                seconds = timed(conn, statement, items(ids, owner))
                if batch >= 5:  # warm-up: plans cached, buffers loaded
                    per_run[name].append(seconds / BATCH * 1e6)
            if batch % 50 == 49:
                conn.execute("VACUUM due_work")
                conn.execute("VACUUM agents")
        queued = conn.execute("SELECT count(*) AS n FROM webhook_deliveries").fetchone()
    assert queued and queued["n"] == batches * BATCH, "owner hooked queues one per run"
    return {name: statistics.median(values) for name, values in per_run.items()}


def main(argv: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args(argv)
    with database() as url:
        medians = measure(url, args.batches)
    base = medians["before"]
    for name, value in medians.items():
        report(f"{name:>20}: {value:6.1f} µs per run ({value - base:+5.1f} vs before)")


if __name__ == "__main__":
    main()
