"""Idempotent creation: ``Idempotency-Key`` records and ``dedupe_key`` look-ups.

An ``idempotency_keys`` row is first a *claim* (``response_status = 0``) taken before the
request runs, then holds the stored answer. Claims and answers are per (agent, route, key).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from store.db import Connection, Row

IN_PROGRESS = 0

# How long an Idempotency-Key answer is kept (and replayed).
TTL_SECONDS = 24 * 3600


async def claim_key(
    conn: Connection,
    *,
    agent_id: UUID,
    route: str,
    key: str,
    request_hash: bytes,
    ttl_seconds: float,
    stale_seconds: float,
) -> Row | None:
    """Claim ``key`` for a request about to run: None when claimed, else the existing row
    (``request_hash, response_status, response_body``).

    An expired record (older than ``ttl_seconds``) and a claim abandoned by a crashed
    request (in progress for over ``stale_seconds``) are taken over. The unique key makes
    two concurrent claims of one key serialise: exactly one of them wins.
    """
    params = {
        "agent": agent_id,
        "route": route,
        "key": key,
        "hash": request_hash,
        "ttl": ttl_seconds,
        "stale": stale_seconds,
        "in_progress": IN_PROGRESS,
    }
    for _ in range(3):
        cursor = await conn.execute(
            """
            INSERT INTO idempotency_keys AS k
                   (agent_id, route, key, request_hash, response_status, response_body)
            VALUES (%(agent)s, %(route)s, %(key)s, %(hash)s, %(in_progress)s, 'null')
            ON CONFLICT ON CONSTRAINT idempotency_keys_pk DO UPDATE
               SET request_hash = EXCLUDED.request_hash, response_status = %(in_progress)s,
                   response_body = 'null', created_at = now()
             WHERE k.created_at < now() - make_interval(secs => %(ttl)s)
                OR (k.response_status = %(in_progress)s
                    AND k.created_at < now() - make_interval(secs => %(stale)s))
            RETURNING 1 AS claimed
            """,
            params,
        )
        if await cursor.fetchone() is not None:
            return None
        cursor = await conn.execute(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys "
            "WHERE agent_id = %(agent)s AND route = %(route)s AND key = %(key)s",
            params,
        )
        existing = await cursor.fetchone()
        if existing is not None:
            return existing
        # Released between our two statements: try to claim it again.
    raise RuntimeError("idempotency key kept changing hands")  # pragma: no cover


async def save_response(
    conn: Connection, *, agent_id: UUID, route: str, key: str, status: int, body: Any
) -> None:
    """Store the answer to replay for a claimed key."""
    await conn.execute(
        "UPDATE idempotency_keys SET response_status = %s, response_body = %s "
        "WHERE agent_id = %s AND route = %s AND key = %s",
        (status, Jsonb(body), agent_id, route, key),
    )


async def release_key(conn: Connection, *, agent_id: UUID, route: str, key: str) -> None:
    """Drop a claim whose request failed, so that the key can be used again."""
    await conn.execute(
        "DELETE FROM idempotency_keys "
        "WHERE agent_id = %s AND route = %s AND key = %s AND response_status = %s",
        (agent_id, route, key, IN_PROGRESS),
    )


async def prune_keys(conn: Connection, *, older_than_seconds: float, batch: int = 5000) -> int:
    """Delete up to ``batch`` records older than ``older_than_seconds``."""
    cursor = await conn.execute(
        """
        DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys
             WHERE created_at < now() - make_interval(secs => %s) LIMIT %s)
        """,
        (older_than_seconds, batch),
    )
    return cursor.rowcount


async def lock_dedupe_key(conn: Connection, *, owner: UUID, key: str) -> None:
    """Serialise creates of one (owner, dedupe_key) until the transaction ends, so that
    two concurrent creates cannot both miss each other."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"ordinaut.dedupe:{owner}:{key}",),
    )


async def find_dedupe_match(
    conn: Connection, *, owner: UUID, key: str, window_seconds: int
) -> UUID | None:
    """The owner's newest visible task with this ``dedupe_key`` that a new create
    repeats: created within ``window_seconds``, or (window 0) not canceled."""
    cursor = await conn.execute(
        """
        SELECT id FROM tasks
         WHERE created_by = %(owner)s AND dedupe_key = %(key)s AND deleted_at IS NULL
           AND CASE WHEN %(window)s = 0 THEN status <> 'canceled'
                    ELSE created_at > now() - make_interval(secs => %(window)s) END
         ORDER BY created_at DESC
         LIMIT 1
        """,
        {"owner": owner, "key": key, "window": window_seconds},
    )
    row = await cursor.fetchone()
    return row["id"] if row else None
