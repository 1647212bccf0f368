"""Agents and their token hashes.

An agent is soft-deleted (``deleted_at``): its tasks and runs keep their owner, its name
becomes free again, and every token lookup filters deleted agents and revoked tokens in the
same indexed statement, so a deletion or a revocation takes effect on the next request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

import psycopg

from engine.errors import Conflict
from engine.quotas import QUOTA_NAMES
from store.db import Connection, Row
from store.paging import newest_first, page_params

_AGENT_COLUMNS = """ a.id, a.name, a.scopes, a.created_at, a.updated_at, a.deleted_at,
    a.webhook_url, a.quota_active_tasks, a.quota_queued_runs, a.quota_concurrent_runs,
    a.quota_event_fanout,
    (SELECT s.created_at FROM webhook_secrets s WHERE s.agent_id = a.id)
        AS webhook_secret_created_at """
_SELECT_AGENT = "SELECT" + _AGENT_COLUMNS + "FROM agents a "


async def insert_agent(conn: Connection, *, name: str, scopes: Sequence[str]) -> Row:
    """A new agent; :class:`Conflict` when a live agent already has this name."""
    try:
        cursor = await conn.execute(
            "INSERT INTO agents AS a (name, scopes) VALUES (%s, %s) "
            "RETURNING a.id, a.name, a.scopes, a.created_at, a.updated_at, a.deleted_at, "
            "a.webhook_url, a.quota_active_tasks, a.quota_queued_runs, a.quota_concurrent_runs, "
            "a.quota_event_fanout, NULL::timestamptz AS webhook_secret_created_at",
            (name, list(scopes)),
        )
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"an agent named {name!r} already exists") from None
    row = await cursor.fetchone()
    assert row is not None
    return row


async def insert_token(
    conn: Connection, *, agent_id: object, token_hash: bytes, prefix: str
) -> Row:
    cursor = await conn.execute(
        "INSERT INTO agent_tokens (agent_id, token_hash, prefix) VALUES (%s, %s, %s) "
        "RETURNING id, prefix, created_at",
        (agent_id, token_hash, prefix),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def authenticate(conn: Connection, token_hash: bytes) -> Row | None:
    """The live agent owning an unrevoked token with this hash (``id, name, scopes,
    token_id``), refreshing the token's ``last_used_at`` when it is over a minute old.

    One statement, one round trip. A write on every request would cost a commit (a WAL
    flush) per API call; when the refresh is not due the UPDATE matches nothing, no
    transaction id is assigned and the commit writes nothing. A minute is precise enough to
    tell live tokens from forgotten ones.
    """
    cursor = await conn.execute(
        """
        WITH hit AS (
            SELECT a.id, a.name, a.scopes, k.id AS token_id, k.last_used_at
              FROM agent_tokens k JOIN agents a ON a.id = k.agent_id
             WHERE k.token_hash = %s AND k.revoked_at IS NULL AND a.deleted_at IS NULL
        ), touched AS (
            UPDATE agent_tokens k SET last_used_at = now()
              FROM hit
             WHERE k.id = hit.token_id
               AND (hit.last_used_at IS NULL
                    OR hit.last_used_at < now() - interval '60 seconds')
        )
        SELECT id, name, scopes, token_id FROM hit
        """,
        (token_hash,),
    )
    return await cursor.fetchone()


async def token_holder(conn: Connection, token_id: UUID) -> Row | None:
    """The live agent behind the unrevoked token ``token_id`` (``id, name, scopes,
    token_id``): what an open stream asks again now and then (no ``last_used_at`` refresh:
    the request that opened it refreshed it)."""
    cursor = await conn.execute(
        """
        SELECT a.id, a.name, a.scopes, k.id AS token_id
          FROM agent_tokens k JOIN agents a ON a.id = k.agent_id
         WHERE k.id = %s AND k.revoked_at IS NULL AND a.deleted_at IS NULL
        """,
        (token_id,),
    )
    return await cursor.fetchone()


async def get_agent(
    conn: Connection, agent_id: UUID, *, include_deleted: bool = False
) -> Row | None:
    cursor = await conn.execute(
        _SELECT_AGENT + "WHERE a.id = %s AND (%s OR a.deleted_at IS NULL)",
        (agent_id, include_deleted),
    )
    return await cursor.fetchone()


async def get_live_agent_by_name(conn: Connection, name: str) -> Row | None:
    cursor = await conn.execute(
        _SELECT_AGENT + "WHERE a.name = %s AND a.deleted_at IS NULL",
        (name,),
    )
    return await cursor.fetchone()


_NEWEST_FIRST = newest_first("a.created_at", "a.id")


async def list_agents(
    conn: Connection,
    *,
    include_deleted: bool,
    name: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Row]:
    """Agents, newest first; ``after`` is the previous page's last ``(created_at, id)``."""
    cursor = await conn.execute(
        _SELECT_AGENT
        + """
         WHERE (%(include_deleted)s OR a.deleted_at IS NULL)
           AND (%(name)s::text IS NULL OR a.name = %(name)s::text)
        """
        + _NEWEST_FIRST,
        {"include_deleted": include_deleted, "name": name, **page_params(after, limit)},
    )
    return await cursor.fetchall()


async def agent_names(conn: Connection, agent_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Names of agents by id (deleted ones too: they still own tasks)."""
    if not agent_ids:
        return {}
    cursor = await conn.execute(
        "SELECT id, name FROM agents WHERE id = ANY(%s::uuid[])", (list(set(agent_ids)),)
    )
    return {row["id"]: row["name"] for row in await cursor.fetchall()}


# ``webhook_url`` is replaced only when ``set_webhook_url`` (null is a value: no webhooks).
async def update_agent(
    conn: Connection,
    agent_id: UUID,
    *,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    set_webhook_url: bool = False,
    webhook_url: str | None = None,
    quotas: Mapping[str, int | None] | None = None,
) -> Row | None:
    """Rename, replace the scopes, set the webhook URL, set or reset (None) the quotas named
    in ``quotas`` of a live agent; None when there is none."""
    try:
        cursor = await conn.execute(
            """
            UPDATE agents a
               SET name = COALESCE(%(name)s, a.name),
                   scopes = COALESCE(%(scopes)s::text[], a.scopes),
                   webhook_url = CASE WHEN %(set_url)s THEN %(url)s ELSE a.webhook_url END,
                   quota_active_tasks = CASE WHEN %(set_active_tasks)s
                       THEN %(active_tasks)s ELSE a.quota_active_tasks END,
                   quota_queued_runs = CASE WHEN %(set_queued_runs)s
                       THEN %(queued_runs)s ELSE a.quota_queued_runs END,
                   quota_concurrent_runs = CASE WHEN %(set_concurrent_runs)s
                       THEN %(concurrent_runs)s ELSE a.quota_concurrent_runs END,
                   quota_event_fanout = CASE WHEN %(set_event_fanout)s
                       THEN %(event_fanout)s ELSE a.quota_event_fanout END,
                   updated_at = now()
             WHERE a.id = %(id)s AND a.deleted_at IS NULL
            RETURNING a.id, a.name, a.scopes, a.created_at, a.updated_at, a.deleted_at,
                      a.webhook_url, a.quota_active_tasks, a.quota_queued_runs,
                      a.quota_concurrent_runs, a.quota_event_fanout,
                      (SELECT s.created_at FROM webhook_secrets s WHERE s.agent_id = a.id)
                          AS webhook_secret_created_at
            """,
            {
                "id": agent_id,
                "name": name,
                "scopes": list(scopes) if scopes is not None else None,
                "set_url": set_webhook_url,
                "url": webhook_url,
                **_quota_params(quotas or {}),
            },
        )
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"an agent named {name!r} already exists") from None
    return await cursor.fetchone()


def _quota_params(quotas: Mapping[str, int | None]) -> dict[str, object]:
    params: dict[str, object] = {}
    for name in QUOTA_NAMES:
        params[f"set_{name}"] = name in quotas
        params[name] = quotas.get(name)
    return params


async def delete_agent(conn: Connection, agent_id: UUID) -> bool:
    """Soft-delete a live agent and revoke all its tokens (one statement); False when
    there is no such live agent."""
    cursor = await conn.execute(
        """
        WITH gone AS (
            UPDATE agents SET deleted_at = now(), updated_at = now()
             WHERE id = %s AND deleted_at IS NULL
            RETURNING id
        ), revoked AS (
            UPDATE agent_tokens k SET revoked_at = now()
              FROM gone WHERE k.agent_id = gone.id AND k.revoked_at IS NULL
        )
        SELECT count(*) AS n FROM gone
        """,
        (agent_id,),
    )
    row = await cursor.fetchone()
    return bool(row and row["n"])


async def revoke_tokens(conn: Connection, agent_id: UUID) -> int:
    """Revoke every live token of the agent; the number revoked."""
    cursor = await conn.execute(
        "UPDATE agent_tokens SET revoked_at = now() WHERE agent_id = %s AND revoked_at IS NULL",
        (agent_id,),
    )
    return cursor.rowcount


async def list_tokens(conn: Connection, agent_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
    """The tokens (never their hashes) of each agent, newest first."""
    cursor = await conn.execute(
        "SELECT id, agent_id, prefix, created_at, last_used_at, revoked_at FROM agent_tokens "
        "WHERE agent_id = ANY(%s::uuid[]) ORDER BY created_at DESC, id DESC",
        (list(agent_ids),),
    )
    tokens: dict[UUID, list[Row]] = {agent_id: [] for agent_id in agent_ids}
    for row in await cursor.fetchall():
        tokens[row.pop("agent_id")].append(row)
    return tokens


async def lock_admins(conn: Connection) -> None:
    """Serialise changes that could remove the last admin (call inside a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ordinaut.admins'))")


async def count_other_admins(conn: Connection, agent_id: UUID) -> int:
    """Live agents other than ``agent_id`` that hold the ``admin`` scope."""
    cursor = await conn.execute(
        "SELECT count(*) AS n FROM agents "
        "WHERE deleted_at IS NULL AND 'admin' = ANY(scopes) AND id <> %s",
        (agent_id,),
    )
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


async def ensure_admin_token(conn: Connection, *, token_hash: bytes, prefix: str) -> Row:
    """Make sure an agent named ``admin`` with scope ``admin`` owns this token.

    The configured token is the source of truth: if it was revoked, or belonged to an admin
    agent that was deleted since, it is given back to the live ``admin`` agent. Run inside a
    transaction; concurrent callers (several API processes starting at once) serialise on an
    advisory lock.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ordinaut.bootstrap_admin'))")
    admin = await get_live_agent_by_name(conn, "admin")
    if admin is None:
        admin = await insert_agent(conn, name="admin", scopes=["admin"])
    elif "admin" not in admin["scopes"]:
        await conn.execute(
            "UPDATE agents SET scopes = array_append(scopes, 'admin'), updated_at = now() "
            "WHERE id = %s",
            (admin["id"],),
        )
    await conn.execute(
        "INSERT INTO agent_tokens (agent_id, token_hash, prefix) VALUES (%s, %s, %s) "
        "ON CONFLICT ON CONSTRAINT agent_tokens_hash_unique DO UPDATE "
        "SET agent_id = EXCLUDED.agent_id, revoked_at = NULL "
        "WHERE agent_tokens.agent_id <> EXCLUDED.agent_id "
        "OR agent_tokens.revoked_at IS NOT NULL",
        (admin["id"], token_hash, prefix),
    )
    return admin
