"""Workers as real processes: crashes, restarts, shutdown, keys, priorities (issue 4)."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.workload import (
    create_task,
    finished_runs,
    query,
    queue_runs,
    run_now,
    sleep_task,
)
from tests.support import api_client, cluster, eventually

pytestmark = pytest.mark.e2e


def leased_by(database_url: str, pid: int) -> int:
    rows = query(
        database_url,
        "SELECT count(*) AS n FROM due_work WHERE state = 'running' AND leased_by LIKE %s",
        f"%:{pid}:%",
    )
    return int(rows[0]["n"])


async def registered_workers(database_url: str, count: int) -> None:
    """Wait until ``count`` workers have registered (they are ready to lease)."""

    async def registered() -> int:
        return int(query(database_url, "SELECT count(*) AS n FROM workers")[0]["n"])

    await eventually(registered, until=lambda n: n >= count, message=f"{count} workers")


async def test_kill_9_mid_run_loses_nothing_and_succeeds_once(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_LEASE_SECONDS="2") as running:
        api = running.api()
        victim = running.worker(concurrency=10)
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(1.0))
            run_ids = await run_now(client, task["id"], 20)

        async def victim_holds() -> int:
            return leased_by(fresh_db, victim.popen.pid)

        await eventually(victim_holds, until=lambda n: n == 10, message="victim to lease 10")
        victim.kill()
        running.worker(concurrency=10)
        runs = await finished_runs(fresh_db, task["id"], 20, timeout=60)
    assert sorted(str(r["id"]) for r in runs) == sorted(run_ids)
    assert {r["status"] for r in runs} == {"succeeded"}
    retried = [r for r in runs if r["attempt"] == 2]
    assert len(retried) == 10, "the ten runs the victim held were retried once each"
    assert all(r["worker_id"] and str(victim.popen.pid) not in r["worker_id"] for r in retried)


async def test_postgres_restart_during_load(fresh_db, tmp_path, pg_cluster):
    if pg_cluster is None:
        pytest.skip("restarting needs the embedded cluster (TEST_DATABASE_URL is set)")
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        workers = [running.worker(concurrency=10) for _ in range(2)]
        running.scheduler()
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(0.02))
        queue_runs(fresh_db, task["id"], 400)

        async def done() -> int:
            return int(query(fresh_db, "SELECT count(*) AS n FROM runs")[0]["n"])

        await eventually(done, until=lambda n: n >= 50, message="the load to get going")
        pg_cluster.restart()
        runs = await finished_runs(fresh_db, task["id"], 400, timeout=90)
        async with api_client(api) as client:
            assert (await client.get("/runs", params={"limit": 1})).status_code == 200
        assert all(w.popen.poll() is None for w in workers), "workers survive the restart"
    assert len(runs) == 400
    assert {r["status"] for r in runs} == {"succeeded"}


async def test_three_workers_never_run_one_run_twice(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_LOG_LEVEL="DEBUG") as running:
        api = running.api()
        workers = [running.worker(concurrency=20) for _ in range(3)]
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(0))
        await registered_workers(fresh_db, 3)
        queue_runs(fresh_db, task["id"], 1000)
        runs = await finished_runs(fresh_db, task["id"], 1000, timeout=90)
        running.stop_all()
    starts: dict[str, set[str]] = defaultdict(set)
    for worker in workers:
        for line in worker.output().splitlines():
            if '"run started"' in line:
                entry = json.loads(line)
                starts[entry["run_id"]].add(entry["worker_id"])
    assert len(runs) == 1000 and {r["status"] for r in runs} == {"succeeded"}
    assert len(starts) == 1000, "every run was started"
    assert all(len(ids) == 1 for ids in starts.values()), "no run was started by two workers"
    assert len({next(iter(ids)) for ids in starts.values()}) == 3, "all three workers worked"


async def test_sigterm_lets_in_flight_runs_finish(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        worker = running.worker(concurrency=5)
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(1.5))
            await run_now(client, task["id"], 5)

        async def holds() -> int:
            return leased_by(fresh_db, worker.popen.pid)

        await eventually(holds, until=lambda n: n == 5, message="the worker to lease 5")
        assert worker.stop(timeout=20) == 0
        runs = await finished_runs(fresh_db, task["id"], 5, timeout=15)
        registry = query(fresh_db, "SELECT count(*) AS n FROM workers")
    assert {(r["status"], r["attempt"]) for r in runs} == {("succeeded", 1)}
    assert registry[0]["n"] == 0, "a worker that stops cleanly leaves the registry"


async def test_sigterm_past_the_grace_period_releases_runs_to_others(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        leaving = running.worker(concurrency=3, ORDINAUT_SHUTDOWN_GRACE_SECONDS="0.5")
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(2))
            await run_now(client, task["id"], 3)

        async def holds() -> int:
            return leased_by(fresh_db, leaving.popen.pid)

        await eventually(holds, until=lambda n: n == 3, message="the worker to lease 3")
        leaving.signal(signal.SIGTERM)
        assert leaving.popen.wait(timeout=10) == 0
        released = query(fresh_db, "SELECT state, attempt FROM due_work")
        assert [(r["state"], r["attempt"]) for r in released] == [("queued", 0)] * 3
        running.worker(concurrency=3)
        runs = await finished_runs(fresh_db, task["id"], 3, timeout=20)
    assert {(r["status"], r["attempt"]) for r in runs} == {("succeeded", 1)}
    assert all(str(leaving.popen.pid) not in r["worker_id"] for r in runs)


async def test_a_concurrency_key_never_overlaps(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        for _ in range(3):
            running.worker(concurrency=5)
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(0.1, concurrency_key="mailbox"))
            other = await create_task(client, sleep_task(0.1, concurrency_key="mailbox"))
        queue_runs(fresh_db, task["id"], 8)
        queue_runs(fresh_db, other["id"], 8)
        await finished_runs(fresh_db, task["id"], 8, timeout=30)
        await finished_runs(fresh_db, other["id"], 8, timeout=30)
    runs = query(fresh_db, "SELECT started_at, finished_at FROM runs ORDER BY started_at")
    assert len(runs) == 16
    for earlier, later in itertools.pairwise(runs):
        assert later["started_at"] >= earlier["finished_at"], "two runs of one key overlapped"


async def test_priorities_order_a_backlog(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        async with api_client(api) as client:
            tasks = [
                await create_task(client, sleep_task(0, priority=priority))
                for priority in (9, 5, 1, 7, 3)
            ]
        for task in tasks:
            queue_runs(fresh_db, task["id"], 3)
        running.worker(concurrency=1)
        for task in tasks:
            await finished_runs(fresh_db, task["id"], 3, timeout=30)
    rows = query(
        fresh_db,
        "SELECT t.priority FROM runs r JOIN tasks t ON t.id = r.task_id ORDER BY r.started_at",
    )
    priorities = [row["priority"] for row in rows]
    assert priorities == sorted(priorities) == [1, 1, 1, 3, 3, 3, 5, 5, 5, 7, 7, 7, 9, 9, 9]


async def test_a_run_longer_than_its_lease_keeps_it_by_heartbeat(fresh_db, tmp_path):
    """With a 1 s lease, 4 s runs finish on their first attempt: the heartbeat extends the
    lease while they run, so the reaper of the idle second worker never takes them."""
    with cluster(fresh_db, tmp_path, ORDINAUT_LEASE_SECONDS="1") as running:
        api = running.api()
        running.worker(concurrency=5)
        async with api_client(api) as client:
            task = await create_task(client, sleep_task(4.0))
            run_ids = await run_now(client, task["id"], 3)
        await eventually(
            lambda: _running(fresh_db), until=lambda n: n == 3, message="three runs leased"
        )
        running.worker(concurrency=5)  # idle, reaping: it would take an expired lease
        runs = await finished_runs(fresh_db, task["id"], 3, timeout=30)
    assert sorted(str(r["id"]) for r in runs) == sorted(run_ids)
    assert [(r["status"], r["attempt"]) for r in runs] == [("succeeded", 1)] * 3
    assert len({r["worker_id"] for r in runs}) == 1


async def _running(database_url: str) -> int:
    rows = query(database_url, "SELECT count(*) AS n FROM due_work WHERE state = 'running'")
    return int(rows[0]["n"])


async def test_idle_workers_wake_on_notify_and_at_the_due_time_not_by_polling(fresh_db, tmp_path):
    """With polling every 60 s, a run_now and a `once` task due a few seconds later still
    start within a fraction of a second: NOTIFY wakes the worker for the first, its timed
    wake-up (set from the queued run's due time) for the second."""
    with cluster(fresh_db, tmp_path, ORDINAUT_POLL_SECONDS="60") as running:
        api = running.api()
        running.scheduler()
        running.worker(concurrency=5)
        await registered_workers(fresh_db, 1)
        async with api_client(api) as client:
            manual = await create_task(client, sleep_task(0))
            await asyncio.sleep(1.5)  # the worker is idle, waiting
            (run_id,) = await run_now(client, manual["id"])
            due = datetime.now(UTC) + timedelta(seconds=4)
            once = await create_task(
                client, sleep_task(0, schedule_kind="once", schedule_expr=due.isoformat())
            )
            runs = await finished_runs(fresh_db, manual["id"], 1, timeout=20)
            scheduled = await finished_runs(fresh_db, once["id"], 1, timeout=20)
    (now_run,) = runs
    assert str(now_run["id"]) == run_id
    assert now_run["started_at"] - now_run["scheduled_for"] < timedelta(seconds=1)
    (on_time,) = scheduled
    assert abs(on_time["scheduled_for"] - due) < timedelta(milliseconds=1)
    assert on_time["started_at"] - on_time["scheduled_for"] < timedelta(seconds=1)
