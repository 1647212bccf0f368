"""Runtime tools (``POST /tools``): the ``tools`` table and its change notifications.

Every change is announced on the ``ordinaut_tools`` channel in the same transaction, so
workers reload their catalog the moment it commits (and never before).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from engine.catalog import ToolSpec
from engine.errors import Conflict
from store.db import Connection, Row

TOOLS_CHANNEL = "ordinaut_tools"


async def list_runtime_tools(conn: Connection) -> list[Row]:
    """Every runtime tool, by address."""
    cursor = await conn.execute(
        "SELECT address, transport, definition, created_by, created_at FROM tools ORDER BY address"
    )
    return await cursor.fetchall()


async def runtime_tool_specs(conn: Connection) -> list[ToolSpec]:
    """Every runtime tool as a catalog entry."""
    return [ToolSpec.from_dict(row["definition"]) for row in await list_runtime_tools(conn)]


async def get_runtime_tool(conn: Connection, address: str) -> Row | None:
    cursor = await conn.execute(
        "SELECT address, transport, definition, created_by, created_at FROM tools "
        "WHERE address = %s",
        (address,),
    )
    return await cursor.fetchone()


async def insert_runtime_tool(
    conn: Connection, *, definition: dict[str, Any], created_by: UUID | None
) -> Row:
    """Insert a validated tool definition and announce it; :class:`Conflict` when the
    address is taken."""
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                """
                INSERT INTO tools (address, transport, definition, created_by)
                VALUES (%s, %s, %s, %s)
                RETURNING address, transport, definition, created_by, created_at
                """,
                (definition["address"], definition["transport"], Jsonb(definition), created_by),
            )
            row = await cursor.fetchone()
            await notify_tools_changed(conn, definition["address"])
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"a tool with address {definition['address']!r} exists") from None
    assert row is not None
    return row


async def delete_runtime_tool(conn: Connection, address: str) -> bool:
    """Remove a runtime tool and announce it; False when there was none."""
    async with conn.transaction():
        cursor = await conn.execute(
            "DELETE FROM tools WHERE address = %s RETURNING address", (address,)
        )
        deleted = await cursor.fetchone() is not None
        if deleted:
            await notify_tools_changed(conn, address)
    return deleted


async def notify_tools_changed(conn: Connection, address: str) -> None:
    """Tell every listener (workers) that the runtime tools changed; sent at commit."""
    await conn.execute("SELECT pg_notify(%s, %s)", (TOOLS_CHANNEL, address))
