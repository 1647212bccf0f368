"""Agents and their token hashes."""

from __future__ import annotations

from store.db import Connection, Row


async def insert_agent(conn: Connection, *, name: str, scopes: list[str]) -> Row:
    cursor = await conn.execute(
        "INSERT INTO agents (name, scopes) VALUES (%s, %s) "
        "RETURNING id, name, scopes, created_at, updated_at",
        (name, scopes),
    )
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


async def find_agent_by_token_hash(conn: Connection, token_hash: bytes) -> Row | None:
    """The live agent owning an unrevoked token with this hash."""
    cursor = await conn.execute(
        "SELECT a.id, a.name, a.scopes, a.created_at, a.updated_at "
        "FROM agent_tokens k JOIN agents a ON a.id = k.agent_id "
        "WHERE k.token_hash = %s AND k.revoked_at IS NULL AND a.deleted_at IS NULL",
        (token_hash,),
    )
    return await cursor.fetchone()


async def get_live_agent_by_name(conn: Connection, name: str) -> Row | None:
    cursor = await conn.execute(
        "SELECT id, name, scopes, created_at, updated_at FROM agents "
        "WHERE name = %s AND deleted_at IS NULL",
        (name,),
    )
    return await cursor.fetchone()


async def ensure_admin_token(conn: Connection, *, token_hash: bytes, prefix: str) -> Row:
    """Make sure an agent named ``admin`` with scope ``admin`` owns this token.

    Run inside a transaction; concurrent callers (several API processes starting at once)
    serialise on an advisory lock.
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
        "ON CONFLICT ON CONSTRAINT agent_tokens_hash_unique DO NOTHING",
        (admin["id"], token_hash, prefix),
    )
    return admin
