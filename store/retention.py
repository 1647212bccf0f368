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


# An event outlives the retention period while a run references it: queued and finished runs
# hold only its id, and their ``event`` (what the API shows, what a retry carries) is read
# from it. Runs are pruned by their own age, so an event goes at most one retention period
# after its last run. The NOT EXISTS probes are the partial indexes due_work_event and
# runs_event (migration 0012).
_PRUNE_EVENTS = """
DELETE FROM events WHERE id IN (
    SELECT e.id FROM events e
     WHERE e.created_at < now() - make_interval(days => %s)
       AND NOT EXISTS (SELECT 1 FROM due_work d WHERE d.event_id = e.id)
       AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id)
     LIMIT %s)
"""


async def prune_events(conn: Connection, *, older_than_days: int, batch: int = 5000) -> int:
    """Delete up to ``batch`` published events older than ``older_than_days`` that no run
    references any more."""
    cursor = await conn.execute(_PRUNE_EVENTS, (older_than_days, batch))
    return cursor.rowcount
