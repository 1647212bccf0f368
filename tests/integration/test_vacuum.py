"""Workers vacuum the hot queue table when dead rows pile up between autovacuum visits."""

from __future__ import annotations

from engine.settings import Settings
from store import vacuum
from store.db import connect, create_pool
from tests.factories import event_task, make_agent, make_task
from tests.support import eventually
from workers.maintenance import VACUUM_MIN_DEAD_ROWS, Maintenance


async def churn(conn, rows: int) -> None:
    """Leave ``rows`` dead rows in due_work, as finished runs do."""
    agent, _ = await make_agent(conn)
    task = await make_task(conn, agent["id"], **event_task())
    await conn.execute(
        """
        INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
        SELECT gen_random_uuid(), %s, now() + make_interval(secs => g), now(), 5, 'manual'
          FROM generate_series(1, %s) AS g
        """,
        (task["id"], rows),
    )
    await conn.execute("DELETE FROM due_work")
    await conn.execute("SELECT pg_stat_force_next_flush()")


async def test_a_bloated_queue_is_vacuumed_by_one_worker(fresh_db):
    conn = await connect(fresh_db)
    async with conn:
        await churn(conn, VACUUM_MIN_DEAD_ROWS + 5000)

        async def dead() -> int:
            return (await vacuum.due_work_dead_rows(conn))[0]

        await eventually(dead, until=lambda n: n > VACUUM_MIN_DEAD_ROWS, message="stats")
        pool = create_pool(fresh_db, max_size=2)
        await pool.open()
        try:
            maintenance = Maintenance(Settings(database_url=fresh_db), pool, "w", 1, lambda: (0, 0))
            assert await maintenance.vacuum_if_bloated()
            await eventually(dead, until=lambda n: n == 0, message="the vacuum to show")
            assert not await maintenance.vacuum_if_bloated(), "nothing left to vacuum"
        finally:
            await pool.close()


async def test_only_one_vacuum_runs_at_a_time(fresh_db):
    holder = await connect(fresh_db)
    other = await connect(fresh_db)
    async with holder, other:
        await holder.execute("SELECT pg_advisory_lock(%s)", (vacuum._VACUUM_LOCK,))
        assert not await vacuum.vacuum_due_work(other)
        await holder.execute("SELECT pg_advisory_unlock(%s)", (vacuum._VACUUM_LOCK,))
        assert await vacuum.vacuum_due_work(other)
