"""Background pruning done by every API process: ``Idempotency-Key`` records older than
their 24 hours, and audit entries older than ``ORDINAUT_AUDIT_RETENTION_DAYS``.

Several API processes may prune at once: each statement deletes a bounded batch of rows
that are already expired, so running it twice only wastes a little work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from psycopg_pool import AsyncConnectionPool

from api.idempotency import TTL_SECONDS
from store import audit as audit_store
from store import idempotency as idempotency_store
from store.db import Connection

log = logging.getLogger("ordinaut.api")

EVERY_SECONDS = 600.0


async def prune_once(pool: AsyncConnectionPool[Connection], *, audit_retention_days: int) -> int:
    """One pruning pass (batches until nothing is left); the number of rows deleted."""
    deleted = 0
    async with pool.connection() as conn:
        while (n := await idempotency_store.prune_keys(conn, older_than_seconds=TTL_SECONDS)) > 0:
            deleted += n
        while (
            n := await audit_store.prune_entries(conn, older_than_days=audit_retention_days)
        ) > 0:
            deleted += n
    return deleted


async def run_housekeeping(
    pool: AsyncConnectionPool[Connection],
    *,
    audit_retention_days: int,
    stop: asyncio.Event,
    every_seconds: float = EVERY_SECONDS,
) -> None:
    """Prune every ``every_seconds`` until ``stop`` is set.

    Stopping goes through ``stop`` rather than cancellation alone: the driver may turn a
    cancellation inside a query into an error of its own, which the retry below would
    swallow. The lifespan sets ``stop`` and then cancels, so either way the loop ends.
    """
    while not stop.is_set():
        try:
            await prune_once(pool, audit_retention_days=audit_retention_days)
        except Exception:  # the database may be down for a while: try again next round
            log.warning("pruning idempotency keys and audit entries failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)
