"""Pruning of history older than the retention period, in small batches."""

from __future__ import annotations

from store.db import Connection


async def prune_runs(conn: Connection, *, older_than_days: int, batch: int = 5000) -> int:
    """Delete up to ``batch`` runs finished more than ``older_than_days`` ago."""
    cursor = await conn.execute(
        """
        DELETE FROM runs WHERE id IN (
            SELECT id FROM runs
             WHERE finished_at < now() - make_interval(days => %s)
             LIMIT %s)
        """,
        (older_than_days, batch),
    )
    return cursor.rowcount


async def prune_events(conn: Connection, *, older_than_days: int, batch: int = 5000) -> int:
    """Delete up to ``batch`` published events older than ``older_than_days``."""
    cursor = await conn.execute(
        """
        DELETE FROM events WHERE id IN (
            SELECT id FROM events
             WHERE created_at < now() - make_interval(days => %s)
             LIMIT %s)
        """,
        (older_than_days, batch),
    )
    return cursor.rowcount
