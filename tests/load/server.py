"""The one PostgreSQL server every system of the benchmark runs on, and a fresh database per
measurement.

With ``DATABASE_URL`` set, that server is used (a new database is created on it per
measurement and dropped afterwards); otherwise a private embedded cluster with the production
durability settings (fsync on, ``synchronous_commit=on``: ``EmbeddedPostgres(fast=False)``)
is started in a temporary directory and removed at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ops.embedded_pg import EmbeddedPostgres, find_pg_bin
from store.databases import create_database, drop_database, with_database

# Recorded with every result: the settings that decide how fast a commit is.
REPORTED_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "autovacuum",
    "max_connections",
)


@dataclass
class BenchServer:
    """A PostgreSQL server; ``database()`` yields a fresh database on it."""

    url: str
    embedded: bool
    async_commit: bool = False
    _admin: str = field(init=False)

    def __post_init__(self) -> None:
        self._admin = with_database(self.url, "postgres")

    @contextmanager
    def database(self, label: str) -> Iterator[str]:
        """A new, empty database (dropped afterwards). In the asynchronous-commit pass the
        database defaults to ``synchronous_commit=off`` for every session, the bench's and
        the systems' alike."""
        name = f"bench_{label}_{uuid.uuid4().hex[:6]}"
        url = create_database(self.url, name, synchronous_commit=not self.async_commit)
        try:
            yield url
        finally:
            drop_database(self.url, name)

    def checkpoint(self) -> None:
        """Flush dirty pages now, so that no checkpoint left over from the previous
        measurement lands in the next one (needs superuser or pg_checkpoint; skipped
        without)."""
        with (
            psycopg.connect(self._admin, autocommit=True) as conn,
            suppress(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("CHECKPOINT")

    def settings(self) -> dict[str, Any]:
        """The server settings that decide how fast a commit is."""
        values: dict[str, Any] = {}
        with psycopg.connect(self._admin, autocommit=True) as conn:
            for name in REPORTED_SETTINGS:
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                values[name] = row[0] if row else None
        return values


@contextmanager
def bench_server() -> Iterator[BenchServer]:
    """``DATABASE_URL``'s server, or a private embedded one with fsync and synchronous
    commit on (removed afterwards)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield BenchServer(external, embedded=False)
        return
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ordinaut-bench-")))
        cluster = EmbeddedPostgres(home, fast=False)
        url = cluster.start()
        stack.callback(cluster.destroy)
        yield BenchServer(url, embedded=True)


def pg_tool(name: str) -> Path:
    """A PostgreSQL client program (``pgbench``) next to the server binaries."""
    directory = find_pg_bin()
    candidates = [directory / name] if directory else []
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found next to initdb or under /usr/lib/postgresql")
