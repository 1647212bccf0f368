"""A canceled task's running run never runs again (issue 17, defect 5).

Canceling a task lets its running runs finish, but a graceful shutdown that stops one
released it back to the queue without looking at the task, and the next worker ran it
again. Releasing now records the run of a canceled task as ``canceled``, and a lease never
starts a run whose task is canceled (however it came to be queued).
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.e2e.workload import create_task, query, run_now, sleep_task
from tests.support import api_client, cluster, eventually

pytestmark = pytest.mark.e2e


def running_rows(database_url: str, task_id: str) -> int:
    rows = query(
        database_url,
        "SELECT count(*) AS n FROM due_work WHERE task_id = %s AND state = 'running'",
        task_id,
    )
    return int(rows[0]["n"])


async def test_a_run_stopped_by_shutdown_after_its_task_was_canceled_is_not_run_again(
    fresh_db, tmp_path
):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        leaving = running.worker(concurrency=2, ORDINAUT_SHUTDOWN_GRACE_SECONDS="0.5")
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(4))
            [run_id] = await run_now(client, task["id"])

            async def leased() -> int:
                return running_rows(fresh_db, task["id"])

            await eventually(leased, until=lambda n: n == 1, message="the run to start")
            canceled = await client.post(f"/tasks/{task['id']}/cancel")
            assert canceled.status_code == 200, canceled.text
            leaving.signal(signal.SIGTERM)
            assert leaving.popen.wait(timeout=15) == 0

            assert query(fresh_db, "SELECT id FROM due_work WHERE task_id = %s", task["id"]) == []
            run = (await client.get(f"/runs/{run_id}")).json()
            assert run["status"] == "canceled", run
            assert run["error"]["type"] == "canceled"

            running.worker(concurrency=2)
            await asyncio.sleep(2)  # a restarted worker finds nothing of the canceled task
            run = (await client.get(f"/runs/{run_id}")).json()
            assert run["status"] == "canceled", run
            assert run["attempt"] == 1


async def test_a_queued_run_of_a_canceled_task_is_recorded_canceled_not_started(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(30))
            canceled = await client.post(f"/tasks/{task['id']}/cancel")
            assert canceled.status_code == 200
            # However a run of a canceled task came to be queued (a release racing the
            # cancel, an operator's insert), the lease must not start it.
            query(
                fresh_db,
                """
                INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
                VALUES (gen_random_uuid(), %s, now(), now(), 5, 'manual')
                RETURNING id
                """,
                task["id"],
            )
            running.worker(concurrency=2)

            async def history() -> list[dict]:
                return query(fresh_db, "SELECT * FROM runs WHERE task_id = %s", task["id"])

            [run] = await eventually(history, until=lambda rows: len(rows) == 1, timeout=20)
            assert run["status"] == "canceled"
            assert run["steps"] == []
            assert run["error"]["type"] == "canceled"
            assert query(fresh_db, "SELECT id FROM due_work WHERE task_id = %s", task["id"]) == []
