"""Waiting costs nothing while it waits: a thousand requests waiting on one API process run
no statement and hold no connection, then all answer when the run ends; stopping the API
answers its waiters and ends its streams at once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest

from tests.e2e.workload import create_task, query, run_now, sleep_task
from tests.support import Process, api_client, auth, cluster, eventually

pytestmark = pytest.mark.e2e

WAITERS = 1000


async def gauge(api: Process, name: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{api.port}/metrics")).text
    (line,) = [row for row in text.splitlines() if row.startswith(name + " ")]
    return float(line.split()[-1])


def api_activity(database_url: str, since: Any = None) -> dict[str, Any]:
    """The API's backends (pool and listener): how many, and how many began a statement
    after ``since`` (pg_stat_activity's ``query_start`` moves with every statement)."""
    (row,) = query(
        database_url,
        """
        SELECT now() AS at, count(*) AS connections,
               count(*) FILTER (WHERE query_start > %s) AS busy_since
          FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'ordinaut-api%%'
        """,
        since or "-infinity",
    )
    return row


async def test_a_thousand_waiters_cost_no_database_round_trip(fresh_db, tmp_path):
    # One agent makes all the requests: its rate limit (600 a minute) is off.
    with cluster(fresh_db, tmp_path, ORDINAUT_RATE_LIMIT_PER_MINUTE="0") as running:
        api = running.api()
        async with api_client(api) as admin:
            task = await create_task(admin, sleep_task(0.2))
            (run_id,) = await run_now(admin, task["id"])  # no worker yet: it stays queued
        limits = httpx.Limits(max_connections=WAITERS + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api.port}", headers=auth(), timeout=90, limits=limits
        ) as http:
            waiting = [
                asyncio.create_task(http.get(f"/runs/{run_id}", params={"wait": 60}))
                for _ in range(WAITERS)
            ]
            await eventually(
                lambda: gauge(api, "ordinaut_run_waiters"),
                until=lambda n: n == WAITERS,
                timeout=60,
                message="every request waiting",
            )
            quiet_from = api_activity(fresh_db)["at"]
            await asyncio.sleep(3)
            during = api_activity(fresh_db, since=quiet_from)
            running.worker(concurrency=2)
            answers = await asyncio.gather(*waiting)
    assert during["busy_since"] == 0, during  # no statement in 3 s of 1000 waiters
    assert during["connections"] <= 10 + 1, during  # the pool and the listener, no more
    assert {response.status_code for response in answers} == {200}
    assert {response.json()["status"] for response in answers} == {"succeeded"}


async def test_stopping_the_api_answers_waiters_and_ends_streams(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path) as running:
        api = running.api()
        async with api_client(api) as admin:
            task = await create_task(admin, sleep_task(0))
            (run_id,) = await run_now(admin, task["id"])
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api.port}", headers=auth(), timeout=90
        ) as http:
            waiter = asyncio.create_task(http.get(f"/runs/{run_id}", params={"wait": 60}))

            async def follow() -> list[str]:
                async with http.stream("GET", "/runs/stream") as response:
                    return [line async for line in response.aiter_lines()]

            stream = asyncio.create_task(follow())
            await eventually(lambda: gauge(api, "ordinaut_run_waiters"), until=lambda n: n == 1)
            await eventually(
                lambda: gauge(api, "ordinaut_run_stream_subscribers"), until=lambda n: n == 1
            )
            api.signal(signal.SIGTERM)
            answer = await asyncio.wait_for(waiter, timeout=10)
            lines = await asyncio.wait_for(stream, timeout=10)
        status = api.popen.wait(timeout=15)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    assert lines[0] == ": subscribed"
    # uvicorn re-raises the signal it handled once it has shut down cleanly.
    assert status in (0, -signal.SIGTERM), api.output()[-3000:]
    assert "Application shutdown complete" in api.output()
