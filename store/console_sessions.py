"""Sign-in sessions of the web console: one row per session, keyed by the SHA-256 of its id.

A session belongs to the agent token it was opened with. :func:`session_principal` joins
the token and its agent on every request (one indexed statement, like the REST token
look-up), so revoking the token or deleting the agent ends the session on its next request;
scope changes apply at once too.
"""

from __future__ import annotations

from uuid import UUID

from store.db import Connection, Row


async def open_session(
    conn: Connection, *, id_hash: bytes, token_id: UUID, lifetime_seconds: float
) -> Row:
    """Store a new session (its id's hash) for ``token_id``; returns ``expires_at``."""
    cursor = await conn.execute(
        """
        INSERT INTO console_sessions (id_hash, token_id, expires_at)
        VALUES (%s, %s, now() + make_interval(secs => %s))
        RETURNING expires_at
        """,
        (id_hash, token_id, lifetime_seconds),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def session_principal(conn: Connection, id_hash: bytes, *, touch: bool = True) -> Row | None:
    """The live agent behind an unexpired session whose token is not revoked (``id, name,
    scopes, token_id``); with ``touch``, refreshes the token's ``last_used_at`` as a REST call
    does (at most once a minute, see :func:`store.agents.authenticate`). An open stream's
    re-checks do not touch: an idle tab is not a use of the token."""
    cursor = await conn.execute(
        """
        WITH hit AS (
            SELECT a.id, a.name, a.scopes, k.id AS token_id, k.last_used_at
              FROM console_sessions s
              JOIN agent_tokens k ON k.id = s.token_id
              JOIN agents a ON a.id = k.agent_id
             WHERE s.id_hash = %(id_hash)s AND s.expires_at > now()
               AND k.revoked_at IS NULL AND a.deleted_at IS NULL
        ), touched AS (
            UPDATE agent_tokens k SET last_used_at = now()
              FROM hit
             WHERE %(touch)s AND k.id = hit.token_id
               AND (hit.last_used_at IS NULL
                    OR hit.last_used_at < now() - interval '60 seconds')
        )
        SELECT id, name, scopes, token_id FROM hit
        """,
        {"id_hash": id_hash, "touch": touch},
    )
    return await cursor.fetchone()


async def close_session(conn: Connection, id_hash: bytes) -> bool:
    """Delete a session (sign-out); False when there was none."""
    cursor = await conn.execute("DELETE FROM console_sessions WHERE id_hash = %s", (id_hash,))
    return cursor.rowcount > 0


async def prune_expired_sessions(conn: Connection, *, batch: int = 5000) -> int:
    """Delete up to ``batch`` expired sessions, or sessions of revoked tokens."""
    cursor = await conn.execute(
        """
        DELETE FROM console_sessions WHERE id_hash IN (
            SELECT s.id_hash FROM console_sessions s JOIN agent_tokens k ON k.id = s.token_id
             WHERE s.expires_at <= now() OR k.revoked_at IS NOT NULL
             LIMIT %s)
        """,
        (batch,),
    )
    return cursor.rowcount
