"""Completion webhooks: the outbox (``webhook_deliveries``), the workers' lease of due
deliveries, their outcomes, the listings, and the agents' signing secrets.

A delivery is queued by the very statement that makes a run final: it calls the SQL function
``queue_run_webhooks(run_ids, task_ids, agent_ids)`` (migration 0009) once with those runs,
so a run is final exactly when its webhook is queued. With no webhook configured anywhere,
the function costs two probes of empty partial indexes per statement. Workers take due
deliveries with ``FOR UPDATE SKIP LOCKED``, pushing ``next_attempt_at`` past their timeout
(the lease: a delivery whose worker died is taken again later), and record each outcome
fenced on the attempt number they took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from store.db import Connection, Row
from store.paging import newest_first, page_params


@dataclass(frozen=True, kw_only=True)
class DueDelivery:
    """A delivery a worker took: where to, for which run, signed with which key."""

    id: str
    run_id: UUID
    agent_id: UUID
    url: str
    attempts: int  # including this one
    created_at: datetime
    # None: the agent has no signing secret (yet). Kept out of repr: never in a log line.
    secret: bytes | None = field(repr=False)
    # The key it rotated away from, while it still signs too (``keep_previous``).
    previous_secret: bytes | None = field(default=None, repr=False)


async def lease_due_deliveries(
    conn: Connection, *, limit: int, lease_seconds: float
) -> list[DueDelivery]:
    """Take up to ``limit`` due deliveries, oldest due first, counting this attempt; each
    comes due again after ``lease_seconds`` unless its outcome is recorded first."""
    cursor = await conn.execute(
        """
        WITH due AS (
            SELECT id, agent_id FROM webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at
             LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED
        )
        UPDATE webhook_deliveries w
           SET attempts = w.attempts + 1, last_attempt_at = now(),
               next_attempt_at = now() + make_interval(secs => %(lease_seconds)s)
          FROM due LEFT JOIN webhook_secrets s ON s.agent_id = due.agent_id
         WHERE w.id = due.id
        RETURNING w.id::text AS id, w.run_id, w.agent_id, w.url, w.attempts, w.created_at,
                  s.secret,
                  CASE WHEN s.previous_until > now() THEN s.previous_secret END
                      AS previous_secret
        """,
        {"limit": limit, "lease_seconds": lease_seconds},
    )
    return [
        DueDelivery(
            id=row["id"],
            run_id=row["run_id"],
            agent_id=row["agent_id"],
            url=row["url"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            secret=_key(row["secret"]),
            previous_secret=_key(row["previous_secret"]),
        )
        for row in await cursor.fetchall()
    ]


async def record_outcome(
    conn: Connection,
    *,
    delivery_id: str,
    attempts: int,
    status: str,
    retry_at: datetime | None,
    http_status: int | None,
    error: str | None,
) -> bool:
    """Record a try: ``delivered``, ``failed`` (given up) or ``pending`` again at
    ``retry_at``. Fenced on ``attempts``: when the lease ran out and another worker took the
    delivery meanwhile, this outcome is dropped (False)."""
    cursor = await conn.execute(
        """
        UPDATE webhook_deliveries
           SET status = %(status)s, last_status = %(http_status)s, last_error = %(error)s,
               next_attempt_at = COALESCE(%(retry_at)s, next_attempt_at),
               delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() END
         WHERE id = %(id)s AND attempts = %(attempts)s AND status = 'pending'
        """,
        {
            "id": delivery_id,
            "attempts": attempts,
            "status": status,
            "retry_at": retry_at,
            "http_status": http_status,
            "error": error,
        },
    )
    return cursor.rowcount == 1


_DELIVERY_COLUMNS = """
SELECT id, run_id, task_id, agent_id, url, status, attempts, next_attempt_at, last_attempt_at,
       last_status, last_error, delivered_at, created_at
  FROM webhook_deliveries
"""


async def deliveries_of_runs(conn: Connection, run_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
    """The deliveries of each run, oldest first (runs without any map to ``[]``)."""
    found: dict[UUID, list[Row]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    cursor = await conn.execute(
        _DELIVERY_COLUMNS + " WHERE run_id = ANY(%s::uuid[]) ORDER BY created_at, id",
        (list(run_ids),),
    )
    for row in await cursor.fetchall():
        found.setdefault(row["run_id"], []).append(row)
    return found


_NEWEST_FIRST = newest_first("created_at", "id")


async def list_deliveries(
    conn: Connection,
    *,
    owner: UUID | None,
    statuses: Sequence[str],
    run_id: UUID | None,
    task_id: UUID | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Row]:
    """Deliveries newest first, in ``statuses``; ``owner`` restricts to one agent's."""
    cursor = await conn.execute(
        _DELIVERY_COLUMNS
        + """
         WHERE (%(owner)s::uuid IS NULL OR agent_id = %(owner)s::uuid)
           AND status = ANY(%(statuses)s::text[])
           AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s::uuid)
           AND (%(task_id)s::uuid IS NULL OR task_id = %(task_id)s::uuid)
        """
        + _NEWEST_FIRST,
        {
            "owner": owner,
            "statuses": list(statuses),
            "run_id": run_id,
            "task_id": task_id,
            **page_params(after, limit),
        },
    )
    return await cursor.fetchall()


async def prune_deliveries(conn: Connection, *, older_than_days: int, batch: int = 5000) -> int:
    """Delete up to ``batch`` deliveries queued more than ``older_than_days`` ago."""
    cursor = await conn.execute(
        """
        DELETE FROM webhook_deliveries WHERE id IN (
            SELECT id FROM webhook_deliveries
             WHERE created_at < now() - make_interval(days => %s)
             LIMIT %s)
        """,
        (older_than_days, batch),
    )
    return cursor.rowcount


async def replace_secret(
    conn: Connection, agent_id: UUID, secret: bytes, *, keep_previous_seconds: float = 0.0
) -> Row:
    """Give the agent a new signing key; returns ``created_at`` and ``previous_until``.

    The old key stops signing at once, or, with ``keep_previous_seconds``, signs too until
    then (a previous key still in its window is dropped: at most two keys sign).
    """
    cursor = await conn.execute(
        """
        INSERT INTO webhook_secrets AS s (agent_id, secret) VALUES (%(agent)s, %(secret)s)
        ON CONFLICT (agent_id) DO UPDATE
           SET secret = EXCLUDED.secret, created_at = now(),
               previous_secret = CASE WHEN %(keep)s > 0 THEN s.secret END,
               previous_until = CASE WHEN %(keep)s > 0
                                     THEN now() + make_interval(secs => %(keep)s) END
        RETURNING created_at, previous_until
        """,
        {"agent": agent_id, "secret": secret, "keep": keep_previous_seconds},
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def forget_previous_secrets(conn: Connection) -> int:
    """Erase the previous keys whose signing window has passed (they sign nothing any more;
    kept, they would only be one more secret to leak); how many."""
    cursor = await conn.execute(
        """
        UPDATE webhook_secrets SET previous_secret = NULL, previous_until = NULL
         WHERE previous_until <= now()
        """
    )
    return cursor.rowcount


def _key(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)
