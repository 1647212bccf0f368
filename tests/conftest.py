"""Test fixtures: one real PostgreSQL per session, isolation per test.

- ``TEST_DATABASE_URL`` (or ``DATABASE_URL``) names a server to use; otherwise a private
  embedded cluster is started with fsync off and removed afterwards.
- ``conn``: a connection to the migrated test database inside a transaction that is rolled
  back after the test (the fast default).
- ``fresh_db``: a new database cloned from the migrated template, for tests that commit,
  use several connections, LISTEN/NOTIFY or real processes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ops.embedded_pg import EmbeddedPostgres
from store import databases
from store.db import Connection, connect
from store.migrate import migrate

# One template per test process (pytest-xdist names them gw0, gw1, …): processes sharing a
# server through TEST_DATABASE_URL must not drop each other's.
TEMPLATE = f"ordinaut_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | None]:
    """The session's embedded cluster; None when TEST_DATABASE_URL/DATABASE_URL names one."""
    if os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL"):
        yield None
        return
    cluster = EmbeddedPostgres(Path(tmp_path_factory.mktemp("ordinaut-home")), fast=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def server_url(pg_cluster: EmbeddedPostgres | None) -> str:
    """URL of a database on the session's PostgreSQL server."""
    if pg_cluster is None:
        return os.environ.get("TEST_DATABASE_URL") or os.environ["DATABASE_URL"]
    url = pg_cluster.url()
    assert url is not None
    return url


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    """A database with every migration applied, used as the template for clones."""
    databases.drop_database(server_url, TEMPLATE)
    url = databases.create_database(server_url, TEMPLATE)

    async def apply() -> None:
        conn = await connect(url)
        async with conn:
            await migrate(conn)

    asyncio.run(apply())
    return url


def clone_database(server_url: str, template_url: str) -> str:
    """A new database copied from the migrated template."""
    return _create_database(server_url, TEMPLATE)


def empty_database(server_url: str) -> str:
    """A new database without any table."""
    return _create_database(server_url, "template0")


def _create_database(server_url: str, template: str) -> str:
    name = f"ordinaut_test_{uuid.uuid4().hex[:12]}"
    return databases.create_database(server_url, name, template=template)


def drop_database(server_url: str, url: str) -> None:
    databases.drop_database(server_url, databases.database_name(url))


@pytest.fixture(scope="session")
def shared_db_url(server_url: str, template_url: str) -> Iterator[str]:
    """One migrated database shared by the rolled-back-transaction tests."""
    url = clone_database(server_url, template_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture
def fresh_db(server_url: str, template_url: str) -> Iterator[str]:
    """A database of this test's own, cloned from the migrated template."""
    url = clone_database(server_url, template_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture
async def conn(shared_db_url: str) -> AsyncIterator[Connection]:
    """A connection whose work is rolled back after the test."""
    connection = await connect(shared_db_url)
    try:
        async with connection.transaction(force_rollback=True):
            yield connection
    finally:
        await connection.close()
