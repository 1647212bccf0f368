"""Connections, the pool, and the translation of driver errors into the engine's error tree.

Nothing outside ``store/`` sees psycopg: a :class:`Pool` hands out connections whose driver
errors leave the ``async with`` block as :class:`~engine.errors.StoreError` subclasses
(:func:`translated_errors`), and single connections for a command or a test come from
:func:`session`, which does the same. Callers catch the engine's errors:

==========================================  ===========================================
driver error                                engine error
==========================================  ===========================================
OperationalError (lost connection, pool     :class:`~engine.errors.StoreUnavailable`
timeout, server shutting down), OSError
DataError (a value PostgreSQL refuses:      :class:`~engine.errors.ValueRefused`
NUL, out of range, bad encoding)
IntegrityError (unique, check, foreign      :class:`~engine.errors.ConstraintViolated`
key), with the constraint's name
any other psycopg.Error                     :class:`~engine.errors.StoreError`
==========================================  ===========================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.errors import (
    ConstraintViolated,
    StoreError,
    StoreUnavailable,
    ValueRefused,
    first_line,
)

Connection = psycopg.AsyncConnection[DictRow]
Row = dict[str, Any]

log = logging.getLogger("ordinaut.store")

# Backoff between attempts to reach a database that is not there yet.
FIRST_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0


def translate(exc: BaseException) -> StoreError | None:
    """The engine's error for a driver error (None: not a database error)."""
    if isinstance(exc, psycopg.OperationalError | OSError):
        return StoreUnavailable(f"database unavailable: {first_line(exc)}")
    if isinstance(exc, psycopg.DataError):
        return ValueRefused(first_line(exc))
    if isinstance(exc, psycopg.IntegrityError):
        constraint = exc.diag.constraint_name if exc.diag else None
        return ConstraintViolated(first_line(exc), constraint=constraint)
    if isinstance(exc, psycopg.Error):
        return StoreError(f"database error: {first_line(exc)}")
    return None


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Translate driver errors raised inside the block (see the module's table)."""
    try:
        yield
    except (psycopg.Error, OSError) as exc:
        translated = translate(exc)
        assert translated is not None
        raise translated from exc


# A checkout waits for a connection in slices this long; between slices it gives up as
# soon as the pool's last attempt to connect failed (the database is away): requests then
# answer 503 within a fraction of a second instead of each waiting the whole pool timeout.
CHECKOUT_SLICE_SECONDS = 0.2
# The pool retries a lost connection with a doubling delay until this many seconds have
# passed, then gives that attempt up (a waiting checkout starts a new one at once): attempts
# are never far apart, so the pool is back within seconds of the database.
RECONNECT_SECONDS = 5.0

# Every session: timestamps come back in UTC whatever the server's TimeZone is, and no JIT.
# Our statements are short OLTP ones; once the planner's estimate for the fair lease passes
# jit_above_cost (it cannot know that each agent's share is small), compiling it took ~55 ms
# for a statement that runs in well under 1 ms.
SESSION_OPTIONS = "-c TimeZone=UTC -c jit=off"


class Pool(AsyncConnectionPool[Connection]):
    """A pool whose ``connection()`` blocks raise the engine's errors, never psycopg's, and
    that fails fast while the database is away (see :data:`CHECKOUT_SLICE_SECONDS`)."""

    _reachable = True  # did the last attempt to open a connection succeed?

    @asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature of the overridden method
    ) -> AsyncIterator[Connection]:
        async with translated_errors():
            wait = self.timeout if timeout is None else timeout
            conn = await self._checkout(time.monotonic() + wait)
            try:
                async with conn:  # as the base class does: commit, or roll back on an error
                    yield conn
            finally:
                await self.putconn(conn)

    async def checkout(self, timeout: float | None = None) -> Connection:  # noqa: ASYNC109
        """``getconn`` that fails fast like :meth:`connection` (give it back with
        ``putconn``), for a holder that releases its connection before it ends."""
        wait = self.timeout if timeout is None else timeout
        return await self._checkout(time.monotonic() + wait)

    async def _checkout(self, deadline: float) -> Connection:
        while True:
            left = deadline - time.monotonic()
            try:
                return await self.getconn(max(0.001, min(CHECKOUT_SLICE_SECONDS, left)))
            except PoolTimeout:
                if not self._reachable or time.monotonic() >= deadline:
                    raise

    async def _connect(self, timeout: float | None = None) -> Connection:  # noqa: ASYNC109
        # psycopg_pool (pinned) opens every connection here, in the background or for a
        # growing pool: whether the last attempt worked tells a checkout not to wait.
        try:
            conn = await super()._connect(timeout)
        except BaseException:
            self._reachable = False
            raise
        self._reachable = True
        return conn


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
    timeout: float = 30.0,
) -> Pool:
    """A pool of autocommit connections returning rows as dicts (not yet opened).

    ``check_on_checkout`` tests each connection before handing it out, so a request after a
    database restart gets a fresh connection instead of an error; it costs a round trip per
    checkout, which the worker's hot path avoids (its callers retry instead). ``timeout`` is
    how long a checkout waits for a free connection before :class:`StoreUnavailable`.
    """
    return Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        configure=_configure,
        kwargs={"row_factory": dict_row, "application_name": name, "options": SESSION_OPTIONS},
        connection_class=psycopg.AsyncConnection[DictRow],
        check=AsyncConnectionPool.check_connection if check_on_checkout else None,
        reconnect_timeout=RECONNECT_SECONDS,
        timeout=timeout,
    )


async def connect(url: str, *, autocommit: bool = True, name: str = "ordinaut") -> Connection:
    """One connection outside the pool (LISTEN, migrations, tests); the caller closes it."""
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            application_name=name,
            options=SESSION_OPTIONS,
        )
    except (psycopg.OperationalError, OSError) as exc:
        raise StoreUnavailable(f"cannot connect to the database: {first_line(exc)}") from exc


@asynccontextmanager
async def session(url: str, *, name: str = "ordinaut") -> AsyncIterator[Connection]:
    """One autocommit connection for a command, closed afterwards; driver errors inside the
    block are translated."""
    conn = await connect(url, name=name)
    async with translated_errors(), conn:
        yield conn


async def wait_for_database(url: str, stop: asyncio.Event, *, name: str = "ordinaut") -> bool:
    """Connect until the database answers (True) or ``stop`` is set (False, at once: an
    attempt in progress is abandoned). Says "waiting for the database" once, then retries
    quietly with backoff (0.25 s doubling to 5 s)."""
    delay = FIRST_RETRY_SECONDS
    waited = False
    while not stop.is_set():
        try:
            conn = await _unless_stopped(connect(url, name=name), stop)
        except StoreUnavailable as exc:
            if not waited:
                log.warning("waiting for the database (%s); retrying with backoff", exc.message)
                waited = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(2 * delay, MAX_RETRY_SECONDS)
            continue
        if conn is None:
            break
        await conn.close()
        if waited:
            log.info("the database is reachable")
        return True
    return False


async def _unless_stopped(attempt: Any, stop: asyncio.Event) -> Connection | None:
    """``await attempt`` (a connection), or None as soon as ``stop`` is set."""
    connecting = asyncio.ensure_future(attempt)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if connecting.done():
        result: Connection = connecting.result()
        return result
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, StoreUnavailable):
        await connecting
    return None
