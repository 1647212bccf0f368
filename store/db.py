"""The async connection pool and the translation of driver errors into the error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from engine.errors import StoreError, StoreUnavailable, first_line

Connection = psycopg.AsyncConnection[DictRow]
Row = dict[str, Any]


async def _configure(conn: Connection) -> None:
    # Statements autocommit unless the caller opens ``conn.transaction()``: a single
    # statement then costs one round trip instead of three (BEGIN, statement, COMMIT).
    await conn.set_autocommit(True)


def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "ordinaut",
    check_on_checkout: bool = True,
) -> AsyncConnectionPool[Connection]:
    """A pool of autocommit connections returning rows as dicts (not yet opened).

    ``check_on_checkout`` tests each connection before handing it out, so a request after a
    database restart gets a fresh connection instead of an error; it costs a round trip per
    checkout, which the worker's hot path avoids (its callers retry instead).
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        configure=_configure,
        # Timestamps come back in UTC whatever the server's TimeZone is.
        kwargs={"row_factory": dict_row, "application_name": name, "options": "-c TimeZone=UTC"},
        connection_class=psycopg.AsyncConnection[DictRow],
        check=AsyncConnectionPool.check_connection if check_on_checkout else None,
        reconnect_timeout=300,
    )


async def connect(url: str, *, autocommit: bool = True, name: str = "ordinaut") -> Connection:
    """One connection outside the pool (LISTEN, migrations, tests)."""
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            application_name=name,
            options="-c TimeZone=UTC",
        )
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot connect to the database: {first_line(exc)}") from exc


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Translate driver errors raised inside the block into :class:`StoreError`."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"database error: {first_line(exc)}") from exc
