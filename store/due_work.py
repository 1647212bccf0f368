"""The ``due_work`` queue: materialise, lease, heartbeat, complete, retry, reap.

Rows are inserted by the scheduler (occurrences), the API (run_now, events, retry) and
workers (``events.publish``). A statement-level trigger is not used for wake-ups: every
insert here calls ``pg_notify`` itself, and Postgres folds identical notifications of one
transaction into one. Every statement that changes a run's state also tells the API's
waiters and streams, from inside itself (:mod:`store.run_events`), and every one that makes
a run final queues its completion webhook in the same statement (:mod:`store.webhooks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from store.db import Connection, Row
from store.jsonb import storable_json
from store.tasks import COMPLETE_FINISHED_TASKS

WAKE_CHANNEL = "ordinaut_due_work"
# The unique index that keeps two runs of one concurrency key from running at once.
ONE_RUNNING_PER_KEY = "due_work_one_running_per_key"
# The payload is the id of a run whose cancel was requested.
CANCEL_CHANNEL = "ordinaut_cancel"


@dataclass(frozen=True, kw_only=True)
class Occurrence:
    """One scheduled run to materialise."""

    run_id: UUID
    task_id: UUID
    scheduled_for: datetime
    priority: int
    lock_key: str | None  # the task's run_lock_key: its concurrency key, owner-qualified


async def insert_occurrences(conn: Connection, occurrences: Sequence[Occurrence]) -> int:
    """Insert scheduled runs; an occurrence already present is skipped (idempotent).

    Returns how many rows were new.
    """
    if not occurrences:
        return 0
    cursor = await conn.execute(
        """
        WITH inserted AS (
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority,
                                  concurrency_key, trigger)
            SELECT o.id, o.task_id, o.scheduled_for, o.scheduled_for, o.priority,
                   o.concurrency_key, 'schedule'
              FROM unnest(%s::uuid[], %s::uuid[], %s::timestamptz[], %s::smallint[],
                          %s::text[]) AS o(id, task_id, scheduled_for, priority,
                                           concurrency_key)
            ON CONFLICT (task_id, scheduled_for, due_work_occurrence(trigger, id)) DO NOTHING
            RETURNING id, attempt
        )
        SELECT count(*) AS inserted, pg_notify(%s, ''),
               notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
          FROM inserted
        """,
        (
            [o.run_id for o in occurrences],
            [o.task_id for o in occurrences],
            [o.scheduled_for for o in occurrences],
            [o.priority for o in occurrences],
            [o.lock_key for o in occurrences],
            WAKE_CHANNEL,
        ),
    )
    row = await cursor.fetchone()
    return int(row["inserted"]) if row else 0


async def insert_manual_run(
    conn: Connection,
    *,
    run_id: UUID,
    task_id: UUID,
    trigger: str,
) -> Row:
    """Queue a run now (``run_now``: trigger ``manual``) and wake the workers. Events and the
    retry of a dead run queue theirs with :func:`store.events.publish_event` and
    :func:`queue_retry_of`.

    ``scheduled_for`` is the statement's clock time. Two requests may draw the same one:
    that is fine, a requested run is identified by its id (the (task, occurrence)
    uniqueness covers scheduled occurrences only, see migration 0010).
    """
    cursor = await conn.execute(
        """
        WITH inserted AS (
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority,
                                  concurrency_key, trigger)
            SELECT %(id)s, t.id, clock_timestamp(), now(), t.priority,
                   t.run_lock_key, %(trigger)s
              FROM tasks t WHERE t.id = %(task_id)s
            RETURNING id, attempt
        )
        SELECT id, pg_notify(%(channel)s, ''),
               notify_run_changes(run_change('q', id, attempt))
          FROM inserted
        """,
        {
            "id": run_id,
            "task_id": task_id,
            "trigger": trigger,
            "channel": WAKE_CHANNEL,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


# The lease is fair between agents. Agents choose their own priority, so priority orders
# runs only WITHIN an agent: comparing it across agents is what let one agent's backlog at
# priority 1 starve every other agent. Between agents, each agent with ready work takes turns:
# a run's turn is its agent's running runs plus its rank within the agent by (priority,
# run_at); the lowest turns win, the oldest run_at breaking ties, so an agent with nothing
# running goes first, and one at its concurrent-runs quota gets nothing (the count is this
# statement's snapshot: leases of several workers at the same moment may overshoot it a
# little, so the quota is soft).
#
# ``running`` counts every running run by agent: they are bounded by the fleet's slots, and
# reading them costs less than an (agent_id) index on running rows, which every lease would
# write into one hot key range (with it, two workers draining one agent measured 8 % below
# the old lease).
# ``waiting`` is a loose index scan (one probe of ``due_work_agent_ready`` per agent) that
# yields each agent with waiting work and its earliest run_at, so agents whose runs are all
# in the future cost one probe and take no share. Each ready agent offers its share, its
# first rows by (priority, run_at) from ``due_work_agent_lease``. That scan passes over the
# agent's rows not yet due at a better priority than its ready ones (the scheduler
# materialises at most its horizon ahead); one range scan per priority would skip them, but
# then the planner, seeing one priority in the statistics, prefers the agent's (run_at)
# order and filters: 0.04 ms became 6 ms per lease with one agent. The rows are locked
# there (SKIP LOCKED, so concurrent leases take different rows) and ranked after: window
# functions cannot share a level with FOR UPDATE. Rows locked but not picked (a second row
# of one concurrency key, turns beyond the limit) are released when the statement's
# transaction ends. An agent's share is what it would take if every ready agent had a long
# backlog: up to the turn that the limit reaches when shared out (``level``), at least one
# row, at most its quota room. So few rows are locked beyond the limit, but a batch may
# come back short when an agent has fewer ready runs than its share; the worker then leases
# again at once.
#
# At most one run per concurrency key, none whose key already runs; the redundant
# ``r.concurrency_key IS NOT NULL`` lets the key check use the partial unique index even
# when the planner hashes the subquery. A new attempt starts with no steps (a running run
# shows the steps this attempt finished). A run whose task was canceled meanwhile is leased
# like any other but marked ``task_canceled``: the worker records it as canceled without
# starting it (filtering it out here would leave it queued, to be locked and skipped by
# every lease; the join with tasks is there anyway).
#
# A run starts at the lease's own clock, read once after the statement's snapshot, not at
# ``now()``: the worker leases at the end of the transaction that records its finished runs,
# which may have begun before another worker freed a concurrency key this lease takes, and a
# start stamped at that beginning would precede the previous run's ``finished_at``.
_LEASE = """
WITH RECURSIVE waiting AS (
    (SELECT d.agent_id, d.run_at FROM due_work d
      WHERE d.state IN ('queued', 'failed')
      ORDER BY d.agent_id, d.run_at LIMIT 1)
    UNION ALL
    SELECT nxt.agent_id, nxt.run_at
      FROM waiting w CROSS JOIN LATERAL (
          SELECT d.agent_id, d.run_at FROM due_work d
           WHERE d.state IN ('queued', 'failed') AND d.agent_id > w.agent_id
           ORDER BY d.agent_id, d.run_at LIMIT 1) nxt
), running AS (
    SELECT r.agent_id, count(*) AS n FROM due_work r WHERE r.state = 'running'
     GROUP BY r.agent_id
), ready AS (
    SELECT w.agent_id, COALESCE(c.n, 0) AS running,
           COALESCE((SELECT a.quota_concurrent_runs FROM agents a WHERE a.id = w.agent_id),
                    %(concurrent_runs)s) AS quota
      FROM waiting w LEFT JOIN running c ON c.agent_id = w.agent_id
     WHERE w.run_at <= now()
), level AS (
    SELECT ceil((%(limit)s + sum(running)) / count(*)) AS turns FROM ready
), offer AS (
    SELECT r.agent_id, r.running,
           least(%(limit)s, greatest(l.turns - r.running, 1),
                 greatest(r.quota - r.running, 0))::int AS share
      FROM ready r, level l
), locked AS (
    SELECT c.id, c.agent_id, c.concurrency_key, c.priority, c.run_at, c.scheduled_for,
           o.running
      FROM offer o CROSS JOIN LATERAL (
          SELECT d.id, d.agent_id, d.concurrency_key, d.priority, d.run_at, d.scheduled_for
            FROM due_work d
           WHERE d.agent_id = o.agent_id AND d.state IN ('queued', 'failed')
             AND d.run_at <= now()
             AND (d.concurrency_key IS NULL OR NOT EXISTS (
                   SELECT 1 FROM due_work r
                    WHERE r.state = 'running' AND r.concurrency_key IS NOT NULL
                      AND r.concurrency_key = d.concurrency_key))
           ORDER BY d.priority, d.run_at
           LIMIT o.share
             FOR UPDATE SKIP LOCKED) c
     WHERE o.share > 0
), keyed AS (
    SELECT id, agent_id, priority, run_at, scheduled_for, running, concurrency_key,
           row_number() OVER (PARTITION BY concurrency_key
                              ORDER BY priority, run_at, scheduled_for) AS nth
      FROM locked
), picked AS (
    SELECT id, turn, run_at FROM (
        SELECT id, run_at,
               running + row_number() OVER (PARTITION BY agent_id
                                            ORDER BY priority, run_at, scheduled_for) AS turn
          FROM keyed
         WHERE concurrency_key IS NULL OR nth = 1) ranked
     ORDER BY turn, run_at
     LIMIT %(limit)s
), clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now
), leased AS (
    UPDATE due_work d
       SET state = 'running', leased_by = %(worker)s,
           lease_expires_at = c.now + make_interval(secs => %(lease_seconds)s),
           attempt = d.attempt + 1, started_at = c.now,
           first_started_at = COALESCE(d.first_started_at, c.now), steps = NULL
      FROM picked p, tasks t, clock c
     WHERE d.id = p.id AND t.id = d.task_id
    RETURNING d.id, d.task_id, d.scheduled_for, d.trigger, d.attempt,
              COALESCE(event_document(d.event_id), d.event) AS event, d.started_at,
              d.created_at AS queued_at, t.created_by, t.payload, t.timeout_seconds,
              t.max_retries, t.backoff_strategy, t.status = 'canceled' AS task_canceled
)
SELECT l.id::text AS id, task_id::text AS task_id, scheduled_for, trigger, attempt, event,
       started_at, queued_at, created_by::text AS agent_id, payload::text AS payload,
       timeout_seconds, max_retries, backoff_strategy, task_canceled,
       (SELECT notify_run_changes(string_agg(run_change('r', id, attempt), ' '))
          FROM leased) AS notified
  FROM leased l JOIN picked p ON p.id = l.id
 ORDER BY p.turn, p.run_at
"""

# The concurrent-runs quota of an agent without its own (ORDINAUT_QUOTA_CONCURRENT_RUNS).
DEFAULT_CONCURRENT_RUNS = 1000


def _lease_params(
    worker_id: str, limit: int, lease_seconds: float, concurrent_runs: int
) -> dict[str, Any]:
    return {
        "limit": limit,
        "worker": worker_id,
        "lease_seconds": lease_seconds,
        "concurrent_runs": concurrent_runs,
    }


async def lease_batch(
    conn: Connection,
    *,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    concurrent_runs: int = DEFAULT_CONCURRENT_RUNS,
) -> list[Row]:
    """Lease up to ``limit`` ready runs for ``worker_id``; returns them with their task's
    pipeline and retry policy.

    Ids come back as text and the task's payload as JSON text: the worker only passes ids
    on (as text) and parses each distinct payload once, which keeps the per-run cost of the
    hot path low (no UUID objects, no JSON parse per run). ``concurrent_runs`` is the
    concurrent-runs quota of agents without their own."""
    try:
        cursor = await conn.execute(
            _LEASE, _lease_params(worker_id, limit, lease_seconds, concurrent_runs)
        )
        return await cursor.fetchall()
    except psycopg.errors.UniqueViolation as exc:
        if not _lost_key_race(exc):
            raise
        # Another worker leased a run of the same concurrency key at the same moment and the
        # key's unique index refused ours; the key now shows as running: nothing to lease.
        return []


async def next_due_at(conn: Connection) -> datetime | None:
    """When the earliest waiting row becomes ready (None: nothing is waiting)."""
    cursor = await conn.execute(
        "SELECT min(run_at) AS at FROM due_work WHERE state IN ('queued', 'failed')"
    )
    row = await cursor.fetchone()
    return row["at"] if row else None


@dataclass(frozen=True, kw_only=True)
class Progress:
    """The steps a running attempt has finished so far."""

    run_id: str
    attempt: int
    steps: list[dict[str, Any]]


# The heartbeat also carries progress: the finished steps of the runs that have new ones
# replace the row's ``steps`` (fenced on the attempt), and those runs are notified.
_HEARTBEAT = """
WITH progress AS (
    SELECT * FROM jsonb_to_recordset(%(progress)s::jsonb) AS p(id uuid, attempt int, steps jsonb)
), extended AS (
    UPDATE due_work d
       SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
           steps = CASE WHEN p.attempt = d.attempt THEN p.steps ELSE d.steps END
      FROM unnest(%(ids)s::uuid[]) AS u(id) LEFT JOIN progress p ON p.id = u.id
     WHERE d.id = u.id AND d.leased_by = %(worker)s AND d.state = 'running'
    RETURNING d.id, d.attempt, d.cancel_requested, p.attempt = d.attempt AS progressed
)
SELECT id::text AS id, cancel_requested,
       (SELECT notify_run_changes(string_agg(run_change('p', id, attempt), ' '))
          FROM extended WHERE progressed) AS notified
  FROM extended
"""


async def extend_leases(
    conn: Connection,
    *,
    worker_id: str,
    run_ids: Sequence[str],
    lease_seconds: float,
    progress: Sequence[Progress] = (),
) -> list[Row]:
    """Heartbeat: push the leases this worker still holds forward, and write the steps of
    ``progress`` (runs among ``run_ids``). Rows missing from the result were lost (reaped);
    ``cancel_requested`` asks the worker to stop the run. Ids are text, as
    :func:`lease_batch` returns them."""
    if not run_ids:
        return []
    items = [{"id": p.run_id, "attempt": p.attempt, "steps": p.steps} for p in progress]
    cursor = await conn.execute(
        _HEARTBEAT,
        {
            "progress": _json(items),
            "lease_seconds": lease_seconds,
            "ids": list(run_ids),
            "worker": worker_id,
        },
    )
    return [
        {"id": row["id"], "cancel_requested": row["cancel_requested"]}
        for row in await cursor.fetchall()
    ]


@dataclass(frozen=True, kw_only=True)
class Finished:
    """A run that ended for good: ``succeeded``, ``dead`` or ``canceled``."""

    run_id: str
    attempt: int
    agent_id: str
    status: str
    duration_ms: int
    steps: list[dict[str, Any]]
    error: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class Retrying:
    """A run whose attempt failed and that runs again at ``run_at``."""

    run_id: str
    attempt: int
    run_at: datetime
    duration_ms: int
    steps: list[dict[str, Any]]
    error: dict[str, Any]


# Completion is fenced on the lease holder and the attempt: a run whose lease was reaped
# (and perhaps re-leased) is not touched, and its result is dropped. ``finished_at`` is the
# database's clock, like ``started_at`` (the lease's): the run's timing never mixes clocks.
# The failed attempts before the last one move along (``attempts``); the last one is the run.
_FINISH = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(items)s::jsonb)
        AS x(id uuid, attempt int, agent_id uuid, status text, duration_ms int, steps jsonb,
             error jsonb)
), done AS (
    DELETE FROM due_work d USING input i
     WHERE d.id = i.id AND d.attempt = i.attempt AND d.leased_by = %(worker)s
       AND d.state = 'running'
    RETURNING d.id, d.task_id, d.trigger, d.scheduled_for, d.created_at, d.attempt,
              d.started_at, d.event, d.event_id, d.retry_of, d.attempts
), written AS (
    INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at, attempt,
                      started_at, finished_at, duration_ms, worker_id, steps, error, event,
                      event_id, retry_of, attempts)
    SELECT done.id, done.task_id, i.agent_id, done.trigger, i.status, done.scheduled_for,
           done.created_at, done.attempt, done.started_at, statement_timestamp(), i.duration_ms,
           %(worker)s, i.steps, i.error, done.event, done.event_id, done.retry_of,
           done.attempts
      FROM done JOIN input i ON i.id = done.id
    RETURNING id, task_id, agent_id, status, trigger, attempt
)
SELECT id::text AS id, status, trigger,
       (SELECT queue_run_webhooks(array_agg(id), array_agg(task_id), array_agg(agent_id))
          FROM written) AS hooked,
       (SELECT notify_run_changes(
                   string_agg(run_change(left(status, 1), id, attempt), ' '))
          FROM written) AS notified
  FROM written
"""

# A failed attempt that will be retried: back to the queue, and kept in ``attempts``.
_RETRY = """
WITH retried AS (
    UPDATE due_work d
       SET state = 'failed', run_at = i.run_at, leased_by = NULL, lease_expires_at = NULL,
           steps = i.steps, last_error = i.error,
           attempts = COALESCE(d.attempts, '[]'::jsonb) || jsonb_build_array(
               jsonb_build_object('number', d.attempt, 'worker_id', d.leased_by,
                                  'started_at', d.started_at, 'finished_at', statement_timestamp(),
                                  'duration_ms', i.duration_ms, 'error', i.error))
      FROM jsonb_to_recordset(%(items)s::jsonb)
           AS i(id uuid, attempt int, run_at timestamptz, duration_ms int, steps jsonb,
                error jsonb)
     WHERE d.id = i.id AND d.attempt = i.attempt AND d.leased_by = %(worker)s
       AND d.state = 'running'
    RETURNING d.id, d.attempt
)
SELECT id::text AS id,
       (SELECT notify_run_changes(string_agg(run_change('f', id, attempt), ' '))
          FROM retried) AS notified
  FROM retried
"""


async def finish_runs(conn: Connection, *, worker_id: str, runs: Sequence[Finished]) -> list[Row]:
    """Move finished runs from the queue to the history, in one statement. Returns the rows
    written (a run whose lease was lost is absent)."""
    if not runs:
        return []
    cursor = await conn.execute(_FINISH, _finish_params(worker_id, runs))
    return await cursor.fetchall()


async def schedule_retries(
    conn: Connection, *, worker_id: str, runs: Sequence[Retrying]
) -> list[str]:
    """Put failed attempts back in the queue for their retry time. Returns the ids kept."""
    if not runs:
        return []
    cursor = await conn.execute(_RETRY, _retry_params(worker_id, runs))
    return [row["id"] for row in await cursor.fetchall()]


@dataclass
class CompletionResult:
    written: list[Row]  # finished runs recorded (see finish_runs)
    kept: list[str]  # ids of the retries scheduled
    leased: list[Row]  # the next batch (see lease_batch)

    @property
    def webhooks_queued(self) -> bool:
        """Whether recording these runs queued completion webhooks."""
        return any(row["hooked"] for row in self.written)


async def complete_and_lease(
    conn: Connection,
    *,
    worker_id: str,
    finished: Sequence[Finished],
    retrying: Sequence[Retrying],
    task_ids: Sequence[UUID],
    lease_limit: int,
    lease_seconds: float,
    concurrent_runs: int = DEFAULT_CONCURRENT_RUNS,
) -> CompletionResult:
    """The worker's hot path in one transaction and one network round trip (pipeline mode):
    record finished runs, schedule retries, complete tasks with nothing left (``task_ids``:
    the tasks of the batch) and lease the next batch for the slots this frees. One commit,
    so one WAL flush, per batch instead of one for completing and one for leasing.

    When the lease loses a concurrency-key race (the whole transaction is then rolled
    back), the batch is written again without leasing."""
    try:
        return await _complete_and_lease(
            conn,
            worker_id,
            finished,
            retrying,
            task_ids,
            _lease_params(worker_id, lease_limit, lease_seconds, concurrent_runs),
        )
    except psycopg.errors.UniqueViolation as exc:
        if not (lease_limit and _lost_key_race(exc)):
            raise
    return await _complete_and_lease(conn, worker_id, finished, retrying, task_ids, None)


def _lost_key_race(exc: psycopg.errors.UniqueViolation) -> bool:
    return exc.diag.constraint_name == ONE_RUNNING_PER_KEY


async def _complete_and_lease(
    conn: Connection,
    worker_id: str,
    finished: Sequence[Finished],
    retrying: Sequence[Retrying],
    task_ids: Sequence[UUID],
    lease: dict[str, Any] | None,
) -> CompletionResult:
    """``lease``: the lease's parameters (see :func:`_lease_params`); None leases nothing."""
    async with conn.pipeline(), conn.transaction():
        fin = await conn.execute(_FINISH, _finish_params(worker_id, finished)) if finished else None
        ret = await conn.execute(_RETRY, _retry_params(worker_id, retrying)) if retrying else None
        if task_ids:
            await conn.execute(COMPLETE_FINISHED_TASKS, (list(set(task_ids)),))
        leasing = await conn.execute(_LEASE, lease) if lease and lease["limit"] > 0 else None
    return CompletionResult(
        written=await fin.fetchall() if fin else [],
        kept=[row["id"] for row in await ret.fetchall()] if ret else [],
        leased=await leasing.fetchall() if leasing else [],
    )


def _finish_params(worker_id: str, runs: Sequence[Finished]) -> dict[str, Any]:
    items = [
        {
            "id": r.run_id,
            "attempt": r.attempt,
            "agent_id": r.agent_id,
            "status": r.status,
            "duration_ms": r.duration_ms,
            "steps": r.steps,
            "error": r.error,
        }
        for r in runs
    ]
    return {"items": _json(items), "worker": worker_id}


def _retry_params(worker_id: str, runs: Sequence[Retrying]) -> dict[str, Any]:
    items = [
        {
            "id": r.run_id,
            "attempt": r.attempt,
            "run_at": r.run_at.isoformat(),
            "duration_ms": r.duration_ms,
            "steps": r.steps,
            "error": r.error,
        }
        for r in runs
    ]
    return {"items": _json(items), "worker": worker_id}


def _json(value: Any) -> str:
    # One JSON document per batch: a single parameter instead of eight arrays, and
    # jsonb_to_recordset turns it back into typed rows on the server. Storable: a tool's
    # NUL character or NaN must not make PostgreSQL refuse the whole batch.
    return storable_json(value)


# Expired leases (a crashed or partitioned worker): attempts left → back to the queue at
# once; attempts exhausted → the run is dead; a cancel pending (the run's, or its task was
# canceled meanwhile) → the run is canceled. One statement, so a reaper that dies halfway
# leaves nothing inconsistent; SKIP LOCKED lets several reapers run at once.
_REAP = """
WITH expired AS (
    SELECT d.id, d.attempt, t.max_retries, t.created_by AS agent_id,
           d.cancel_requested OR t.status = 'canceled' AS canceled
      FROM due_work d JOIN tasks t ON t.id = d.task_id
     WHERE d.state = 'running' AND d.lease_expires_at < now()
     ORDER BY d.lease_expires_at
     LIMIT %(limit)s
       FOR UPDATE OF d SKIP LOCKED
), requeued AS (
    UPDATE due_work d
       SET state = 'queued', leased_by = NULL, lease_expires_at = NULL, run_at = now(),
           cancel_requested = false, last_error = %(error)s,
           attempts = COALESCE(d.attempts, '[]'::jsonb) || jsonb_build_array(
               jsonb_build_object('number', d.attempt, 'worker_id', d.leased_by,
                                  'started_at', d.started_at, 'finished_at', statement_timestamp(),
                                  'duration_ms', NULL, 'error', %(error)s))
      FROM expired e
     WHERE d.id = e.id AND e.attempt <= e.max_retries AND NOT e.canceled
    RETURNING d.id, d.attempt
), removed AS (
    DELETE FROM due_work d USING expired e
     WHERE d.id = e.id AND (e.attempt > e.max_retries OR e.canceled)
    RETURNING d.id, d.task_id, d.trigger, d.scheduled_for, d.created_at, d.attempt,
              d.started_at, d.event, d.event_id, d.retry_of, d.steps, d.attempts, e.canceled,
              e.agent_id
), buried AS (
    INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                      attempt, started_at, finished_at, duration_ms, worker_id, steps, error,
                      event, event_id, retry_of, attempts)
    SELECT id, task_id, agent_id, trigger,
           CASE WHEN canceled THEN 'canceled' ELSE 'dead' END,
           scheduled_for, created_at, attempt, started_at, statement_timestamp(),
           (extract(epoch FROM statement_timestamp() - started_at) * 1000)::integer, NULL,
           COALESCE(steps, '[]'::jsonb),
           CASE WHEN canceled THEN %(canceled_error)s ELSE %(error)s END, event, event_id,
           retry_of, attempts
      FROM removed
    RETURNING id, task_id, agent_id, status, trigger, attempt
)
SELECT (SELECT count(*) FROM requeued) AS requeued,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'task_id', task_id,
                                                     'status', status, 'trigger', trigger)),
                        '[]'::jsonb) FROM buried) AS finished,
       (SELECT queue_run_webhooks(array_agg(id), array_agg(task_id), array_agg(agent_id))
          FROM buried) AS hooked,
       pg_notify(%(channel)s, ''),
       (SELECT notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
          FROM requeued) AS requeued_notified,
       (SELECT notify_run_changes(
                   string_agg(run_change(left(status, 1), id, attempt), ' '))
          FROM buried) AS buried_notified
"""

LEASE_EXPIRED_ERROR = {
    "step_id": None,
    "type": "lease_expired",
    "message": "the worker running this attempt stopped heartbeating (crashed or cut off)",
    "retryable": True,
}


CANCELED_ON_EXPIRY_ERROR = {
    "step_id": None,
    "type": "canceled",
    "message": "canceled while its worker was gone (the lease expired)",
    "retryable": False,
}


async def reap_expired_leases(conn: Connection, *, limit: int = 1000) -> tuple[int, list[Row]]:
    """Return expired leases to the queue (or bury them when out of attempts).

    Returns ``(requeued, finished)`` where ``finished`` lists the runs that ended (dead, or
    canceled when a cancel was pending)."""
    cursor = await conn.execute(
        _REAP,
        {
            "limit": limit,
            "error": Jsonb(LEASE_EXPIRED_ERROR),
            "canceled_error": Jsonb(CANCELED_ON_EXPIRY_ERROR),
            "channel": WAKE_CHANNEL,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row["requeued"]), list(row["finished"])


# Graceful shutdown gives unfinished runs back: queued again at once, the attempt that was
# cut short not counted — unless the run's task was canceled (its running runs were to
# finish, not to run again) or its own cancel was requested: those go to the history as
# canceled, in the same statement.
_RELEASE = """
WITH mine AS (
    SELECT d.id, t.created_by AS agent_id,
           d.cancel_requested OR t.status = 'canceled' AS canceled
      FROM due_work d JOIN tasks t ON t.id = d.task_id
     WHERE d.id = ANY(%(ids)s::uuid[]) AND d.leased_by = %(worker)s AND d.state = 'running'
       FOR UPDATE OF d
), requeued AS (
    UPDATE due_work d
       SET state = 'queued', leased_by = NULL, lease_expires_at = NULL, run_at = now(),
           attempt = d.attempt - 1
      FROM mine m
     WHERE d.id = m.id AND NOT m.canceled
    RETURNING d.id, d.attempt
), removed AS (
    DELETE FROM due_work d USING mine m
     WHERE d.id = m.id AND m.canceled
    RETURNING d.id, d.task_id, d.trigger, d.scheduled_for, d.created_at, d.attempt,
              d.started_at, d.event, d.event_id, d.retry_of, d.steps, d.attempts, m.agent_id
), buried AS (
    INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for, queued_at,
                      attempt, started_at, finished_at, duration_ms, worker_id, steps, error,
                      event, event_id, retry_of, attempts)
    SELECT id, task_id, agent_id, trigger, 'canceled', scheduled_for, created_at, attempt,
           started_at, statement_timestamp(),
           (extract(epoch FROM statement_timestamp() - started_at) * 1000)::integer,
           %(worker)s, COALESCE(steps, '[]'::jsonb), %(error)s, event, event_id, retry_of,
           attempts
      FROM removed
    RETURNING id, task_id, agent_id, status, trigger, attempt
)
SELECT (SELECT count(*) FROM requeued) AS released,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'task_id', task_id,
                                                     'status', status, 'trigger', trigger)),
                        '[]'::jsonb) FROM buried) AS finished,
       (SELECT queue_run_webhooks(array_agg(id), array_agg(task_id), array_agg(agent_id))
          FROM buried) AS hooked,
       pg_notify(%(channel)s, ''),
       (SELECT notify_run_changes(string_agg(run_change('q', id, attempt), ' '))
          FROM requeued) AS requeued_notified,
       (SELECT notify_run_changes(string_agg(run_change('c', id, attempt), ' '))
          FROM buried) AS buried_notified
"""

CANCELED_AT_SHUTDOWN_ERROR = {
    "step_id": None,
    "type": "canceled",
    "message": "task canceled: its run was stopped by a worker shutting down",
    "retryable": False,
}


async def release_leases(
    conn: Connection, *, worker_id: str, run_ids: Sequence[str]
) -> tuple[int, list[Row]]:
    """Give unfinished runs back at shutdown (see ``_RELEASE``). Returns ``(released,
    finished)``: how many were queued again, and the runs recorded as canceled."""
    if not run_ids:
        return 0, []
    cursor = await conn.execute(
        _RELEASE,
        {
            "ids": list(run_ids),
            "worker": worker_id,
            "error": Jsonb(CANCELED_AT_SHUTDOWN_ERROR),
            "channel": WAKE_CHANNEL,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row["released"]), list(row["finished"])


async def cancel_waiting_run(
    conn: Connection, run_id: UUID, *, error: dict[str, Any]
) -> Row | None:
    """Cancel a run that is not running (queued, or failed and waiting for its retry): it
    moves to the history as ``canceled``. None when the run is not waiting."""
    cursor = await conn.execute(
        """
        WITH gone AS (
            DELETE FROM due_work d USING tasks t
             WHERE d.id = %(id)s AND t.id = d.task_id AND d.state IN ('queued', 'failed')
            RETURNING d.id, d.task_id, t.created_by AS agent_id, d.trigger, d.scheduled_for,
                      d.created_at, d.attempt, d.started_at, d.steps, d.event, d.event_id,
                      d.retry_of, d.attempts
        ), written AS (
            INSERT INTO runs (id, task_id, agent_id, trigger, status, scheduled_for,
                              queued_at, attempt, started_at, finished_at, steps, error, event,
                              event_id, retry_of, attempts)
            SELECT id, task_id, agent_id, trigger, 'canceled', scheduled_for, created_at,
                   attempt, started_at, statement_timestamp(), COALESCE(steps, '[]'::jsonb),
                   %(error)s, event, event_id, retry_of, attempts
              FROM gone
            RETURNING id, task_id, agent_id, status, trigger, attempt
        )
        SELECT id, task_id, status, trigger,
               queue_run_webhooks(ARRAY[id], ARRAY[task_id], ARRAY[agent_id]) AS hooked,
               notify_run_changes(run_change('c', id, attempt)) AS notified
          FROM written
        """,
        {"id": run_id, "error": Jsonb(error)},
    )
    return await cursor.fetchone()


async def request_cancel(conn: Connection, run_id: UUID) -> bool:
    """Ask the worker running ``run_id`` to stop it (it is told through NOTIFY at once and
    through its heartbeat otherwise). False when the run is not running."""
    cursor = await conn.execute(
        """
        WITH flagged AS (
            UPDATE due_work SET cancel_requested = true
             WHERE id = %s AND state = 'running'
            RETURNING id
        )
        SELECT id, pg_notify(%s, id::text) FROM flagged
        """,
        (run_id, CANCEL_CHANNEL),
    )
    return await cursor.fetchone() is not None


async def retry_failed_now(conn: Connection, run_id: UUID) -> bool:
    """A run waiting for its retry becomes ready now. False when it is not waiting."""
    cursor = await conn.execute(
        """
        WITH ready AS (
            UPDATE due_work SET run_at = now() WHERE id = %s AND state = 'failed' RETURNING id
        )
        SELECT id, pg_notify(%s, '') FROM ready
        """,
        (run_id, WAKE_CHANNEL),
    )
    return await cursor.fetchone() is not None


async def queue_retry_of(conn: Connection, *, dead_run_id: UUID, new_run_id: UUID) -> Row | None:
    """Queue a new run (trigger ``retry``) repeating a dead run of an active or paused task.
    None when there is no such dead run."""
    cursor = await conn.execute(
        """
        WITH inserted AS (
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority,
                                  concurrency_key, trigger, event, event_id, retry_of)
            SELECT %(new_id)s, r.task_id, clock_timestamp(), now(), t.priority,
                   t.run_lock_key, 'retry', r.event, r.event_id, r.id
              FROM runs r JOIN tasks t ON t.id = r.task_id
             WHERE r.id = %(dead_id)s AND r.status = 'dead'
               AND t.status <> 'canceled'
            RETURNING id, attempt
        )
        SELECT id, pg_notify(%(channel)s, ''),
               notify_run_changes(run_change('q', id, attempt))
          FROM inserted
        """,
        {"new_id": new_run_id, "dead_id": dead_run_id, "channel": WAKE_CHANNEL},
    )
    return await cursor.fetchone()
