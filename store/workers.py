"""The worker registry: one row per worker process, kept fresh by its heartbeat."""

from __future__ import annotations

from store.db import Connection, Row

# A worker heartbeats at least every 5 s (workers/maintenance.py): three missed beats mean
# it is gone. The registry listing and the ``ordinaut_workers_live`` gauge both use this.
LIVE_WITHIN_SECONDS = 15.0


async def register_worker(
    conn: Connection, *, worker_id: str, host: str, pid: int, concurrency: int
) -> None:
    await conn.execute(
        """
        INSERT INTO workers (id, host, pid, concurrency)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), concurrency = EXCLUDED.concurrency
        """,
        (worker_id, host, pid, concurrency),
    )


async def heartbeat_worker(
    conn: Connection, *, worker_id: str, inflight: int, processed: int
) -> bool:
    """Refresh the row; False when it is gone (a cleaner removed it while we were cut off,
    so the caller registers again)."""
    cursor = await conn.execute(
        "UPDATE workers SET last_seen_at = now(), inflight = %s, processed = %s WHERE id = %s",
        (inflight, processed, worker_id),
    )
    return cursor.rowcount > 0


async def unregister_worker(conn: Connection, worker_id: str) -> None:
    await conn.execute("DELETE FROM workers WHERE id = %s", (worker_id,))


async def delete_stale_workers(conn: Connection, *, silent_seconds: float) -> int:
    """Forget workers that have not heartbeated for ``silent_seconds``."""
    cursor = await conn.execute(
        "DELETE FROM workers WHERE last_seen_at < now() - make_interval(secs => %s)",
        (silent_seconds,),
    )
    return cursor.rowcount


async def list_workers(conn: Connection) -> list[Row]:
    """Every registered worker, oldest first, with ``live``: it heartbeated within
    :data:`LIVE_WITHIN_SECONDS`."""
    cursor = await conn.execute(
        """
        SELECT id, host, pid, concurrency, started_at, last_seen_at, inflight, processed,
               last_seen_at >= now() - make_interval(secs => %s) AS live
          FROM workers
         ORDER BY started_at, id
        """,
        (LIVE_WITHIN_SECONDS,),
    )
    return await cursor.fetchall()
