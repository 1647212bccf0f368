"""A migrated database for the scheduling benchmarks: ``DATABASE_URL`` when set (a new
database is created on that server), otherwise a private embedded PostgreSQL (fsync off,
like the test suite) removed afterwards."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ops.embedded_pg import EmbeddedPostgres
from store import databases
from store.db import connect
from store.migrate import migrate


@asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """Yield the URL of a fresh, migrated database."""
    with tempfile.TemporaryDirectory(prefix="ordinaut-bench-") as home:
        server = os.environ.get("DATABASE_URL")
        cluster = None
        if not server:
            cluster = EmbeddedPostgres(Path(home), fast=True)
            server = cluster.start()
        name = f"ordinaut_bench_{uuid.uuid4().hex[:8]}"
        url = databases.create_database(server, name)
        try:
            await _migrate(url)
            yield url
        finally:
            databases.drop_database(server, name)
            if cluster is not None:
                cluster.destroy()


async def _migrate(url: str) -> None:
    conn = await connect(url)
    async with conn:
        await migrate(conn)
