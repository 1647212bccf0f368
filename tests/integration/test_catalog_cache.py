"""The worker's cached catalog follows runtime tools through NOTIFY, without a restart."""

from __future__ import annotations

import pytest

from engine.errors import Conflict
from store import tools as tools_store
from store.db import connect, create_pool
from tests.support import eventually
from workers.catalog import CatalogCache

DEFINITION = {
    "address": "remote.thing",
    "transport": "http",
    "endpoint": "http://127.0.0.1:9/thing",
    "input_schema": {"type": "object"},
    "output_schema": {"type": "object"},
    "timeout_seconds": 5.0,
    "description": "",
}


async def test_runtime_tools_appear_and_disappear_at_once(fresh_db):
    pool = create_pool(fresh_db, max_size=2)
    await pool.open()
    # A long periodic refresh: only the notification can explain a fast update.
    cache = CatalogCache(fresh_db, pool, refresh_seconds=3600)
    await cache.start()
    conn = await connect(fresh_db)
    try:
        assert "remote.thing" not in await cache()
        assert "debug.echo" in await cache()
        await eventually(lambda: _loads(cache), until=lambda n: n >= 2, message="first listen")
        await tools_store.insert_runtime_tool(conn, definition=DEFINITION, created_by=None)

        async def has_tool() -> bool:
            return "remote.thing" in await cache()

        await eventually(has_tool, timeout=5, message="the new tool in the worker's catalog")
        assert (await cache())["remote.thing"].endpoint == DEFINITION["endpoint"]
        assert await tools_store.delete_runtime_tool(conn, "remote.thing")
        await eventually(has_tool, until=lambda present: not present, timeout=5)
    finally:
        await conn.close()
        await cache.stop()
        await pool.close()


async def _loads(cache: CatalogCache) -> int:
    return cache.loads


async def test_a_failed_reload_keeps_the_last_catalog(fresh_db):
    pool = create_pool(fresh_db, max_size=1)
    await pool.open()
    cache = CatalogCache(fresh_db, pool)
    assert await cache.reload()
    before = await cache()
    await pool.close()
    assert not await cache.reload()
    assert await cache() is before


async def test_duplicate_runtime_addresses_conflict(conn):
    await tools_store.insert_runtime_tool(conn, definition=DEFINITION, created_by=None)
    with pytest.raises(Conflict):
        await tools_store.insert_runtime_tool(conn, definition=DEFINITION, created_by=None)
    rows = await tools_store.list_runtime_tools(conn)
    assert [row["address"] for row in rows] == ["remote.thing"]
