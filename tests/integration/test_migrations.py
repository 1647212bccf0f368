"""Migrations: applied once, safely in parallel, and reproducing the checked-in snapshot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store.db import connect
from store.migrate import applied_versions, available, head, is_at_head, migrate
from store.schema import describe_schema
from tests.conftest import drop_database, empty_database

SNAPSHOT = Path(__file__).resolve().parents[2] / "migrations" / "schema.snapshot.txt"


async def test_migrating_an_empty_database_reproduces_the_snapshot(server_url):
    url = empty_database(server_url)
    try:
        conn = await connect(url)
        async with conn:
            applied = await migrate(conn)
            assert [name[:4] for name in applied] == [m.version for m in available()]
            schema = await describe_schema(conn)
    finally:
        drop_database(server_url, url)
    assert schema == SNAPSHOT.read_text(), (
        "schema differs from migrations/schema.snapshot.txt; if the change is intended, "
        "run `make schema-snapshot`"
    )


async def test_migrate_is_idempotent_and_reports_head(fresh_db):
    conn = await connect(fresh_db)
    async with conn:
        assert await migrate(conn) == []
        assert await applied_versions(conn) == [m.version for m in available()]
        assert await is_at_head(conn) == (True, "migrations at head")


async def test_concurrent_migrations_apply_each_file_once(server_url):
    url = empty_database(server_url)
    try:

        async def run() -> list[str]:
            conn = await connect(url)
            async with conn:
                return await migrate(conn)

        results = await asyncio.gather(*(run() for _ in range(4)))
        applied = [name for result in results for name in result]
        assert sorted(applied) == sorted(m.name for m in available())
        conn = await connect(url)
        async with conn:
            assert await applied_versions(conn) == [m.version for m in available()]
    finally:
        drop_database(server_url, url)


async def test_readiness_reason_names_the_versions(server_url):
    url = empty_database(server_url)
    try:
        conn = await connect(url)
        async with conn:
            at_head, reason = await is_at_head(conn)
        assert not at_head
        assert f"code at {head()}" in reason and "database at none" in reason
    finally:
        drop_database(server_url, url)
