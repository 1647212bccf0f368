"""The scheduler registry: each scheduler process's last successful tick.

Written every few seconds by each scheduler (never per tick), read by the console's
overview (the age of the freshest tick).
"""

from __future__ import annotations

from datetime import datetime

from store.db import Connection

# A scheduler silent for this long is forgotten by the others.
FORGET_AFTER_SECONDS = 3600


async def record_scheduler(
    conn: Connection, *, scheduler_id: str, host: str, pid: int, last_tick_at: datetime | None
) -> None:
    """Insert or refresh this scheduler's row, and forget long-silent ones."""
    await conn.execute(
        """
        WITH forgotten AS (
            DELETE FROM schedulers
             WHERE last_seen_at < now() - make_interval(secs => %(forget)s)
        )
        INSERT INTO schedulers (id, host, pid, last_tick_at)
        VALUES (%(id)s, %(host)s, %(pid)s, %(tick)s)
        ON CONFLICT (id) DO UPDATE
           SET last_seen_at = now(), last_tick_at = EXCLUDED.last_tick_at
        """,
        {
            "id": scheduler_id,
            "host": host,
            "pid": pid,
            "tick": last_tick_at,
            "forget": FORGET_AFTER_SECONDS,
        },
    )


async def forget_scheduler(conn: Connection, scheduler_id: str) -> None:
    await conn.execute("DELETE FROM schedulers WHERE id = %s", (scheduler_id,))
