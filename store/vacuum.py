"""Keeping the hot queue table small between autovacuum visits.

``due_work`` turns over its whole content many times a minute: every run inserts a row,
updates it at lease and deletes it at completion. Autovacuum visits a database at most once
per ``autovacuum_naptime`` (one minute by default), and in between the dead rows pile up
(a million after a few minutes at full speed); every lease then walks index entries of
dead rows and throughput sags until the next visit. Workers therefore vacuum the table
themselves when its dead rows outnumber the live ones by far — cheap when done often, and
``VACUUM`` never blocks the queue's reads and writes.
"""

from __future__ import annotations

from store.db import Connection

# One vacuum at a time across the fleet: others skip instead of queueing up behind it.
_VACUUM_LOCK = 0x6F72645F76616375  # "ord_vacu"


async def due_work_dead_rows(conn: Connection) -> tuple[int, int]:
    """``(dead, live)`` row estimates of ``due_work`` from the statistics views."""
    cursor = await conn.execute(
        "SELECT n_dead_tup AS dead, n_live_tup AS live FROM pg_stat_user_tables "
        "WHERE relid = 'due_work'::regclass"
    )
    row = await cursor.fetchone()
    return (int(row["dead"]), int(row["live"])) if row else (0, 0)


async def vacuum_due_work(conn: Connection) -> bool:
    """``VACUUM due_work`` unless another worker is already at it; ``conn`` must
    autocommit (VACUUM cannot run in a transaction). True when this call vacuumed."""
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (_VACUUM_LOCK,))
    row = await cursor.fetchone()
    if not row or not row["locked"]:
        return False
    try:
        await conn.execute("VACUUM due_work")
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_VACUUM_LOCK,))
    return True
