"""One agent's input cannot hurt another agent's runs (issue 17, defects 1 and 2).

A hostile agent submits runs that once wedged a worker for everyone: ``debug.sleep`` with a
templated NaN (``asyncio.sleep(nan)`` corrupted the event loop's timers) and a pipeline of
24 ``debug.echo`` steps each referencing the previous output twice (exponential depth and
size checks, synchronous: the worker stalled past its leases and other runs were reaped and
executed again). Meanwhile another agent's short runs must start on time, run once and
succeed; the hostile runs fail alone, as ``dead``, with a reason.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from tests.e2e.workload import create_task, pipeline_task, query, run_now
from tests.support import api_client, cluster, eventually

pytestmark = pytest.mark.e2e

NAN_SLEEP = {"id": "nap", "uses": "debug.sleep", "with": {"seconds": "${to_number('nan')}"}}
INFINITE_SLEEP = {"id": "nap", "uses": "debug.sleep", "with": {"seconds": "${to_number('1e999')}"}}
VICTIM_RUNS = 40


def doubling(steps: int) -> list[dict[str, Any]]:
    pipeline = [{"id": "s0", "uses": "debug.echo", "with": {"x": "seed"}, "save_as": "s0"}]
    for n in range(1, steps):
        ref = f"${{steps.s{n - 1}}}"
        pipeline.append(
            {"id": f"s{n}", "uses": "debug.echo", "with": {"a": ref, "b": ref}, "save_as": f"s{n}"}
        )
    return pipeline


async def agent_client(admin, api, name: str):
    created = await admin.post(
        "/agents", json={"name": name, "scopes": ["tasks:write", "tasks:read", "runs:read"]}
    )
    assert created.status_code == 201, created.text
    return api_client(api, created.json()["token"])


async def test_hostile_runs_fail_alone_while_another_agents_runs_keep_time(fresh_db, tmp_path):
    with cluster(fresh_db, tmp_path, ORDINAUT_LEASE_SECONDS="4") as running:
        api = running.api()
        running.worker(concurrency=10)
        async with api_client(api) as admin:
            hostile = await agent_client(admin, api, "hostile")
            victim = await agent_client(admin, api, "victim")
        async with hostile, victim:
            nan = await create_task(hostile, pipeline_task(NAN_SLEEP, max_retries=3))
            inf = await create_task(hostile, pipeline_task(INFINITE_SLEEP, max_retries=3))
            exp = await create_task(hostile, pipeline_task(*doubling(24), max_retries=3))
            quick = await create_task(
                victim,
                pipeline_task({"id": "nap", "uses": "debug.sleep", "with": {"seconds": 0.1}}),
            )
            hostile_runs = await run_now(hostile, nan["id"], 5)
            hostile_runs += await run_now(hostile, inf["id"], 5)
            hostile_runs += await run_now(hostile, exp["id"], 3)
            victim_runs = []
            for _ in range(VICTIM_RUNS):
                victim_runs += await run_now(victim, quick["id"])
                await asyncio.sleep(0.1)

            async def finished() -> list[dict[str, Any]]:
                return query(fresh_db, "SELECT * FROM runs")

            everything = len(hostile_runs) + len(victim_runs)
            rows = await eventually(
                finished, until=lambda r: len(r) >= everything, timeout=60, message="every run"
            )
    by_id = {str(row["id"]): row for row in rows}
    victims = [by_id[run_id] for run_id in victim_runs]
    assert {(r["status"], r["attempt"]) for r in victims} == {("succeeded", 1)}
    delays = sorted((r["started_at"] - r["scheduled_for"]).total_seconds() for r in victims)
    durations = [(r["finished_at"] - r["started_at"]).total_seconds() for r in victims]
    p99 = delays[int(0.99 * (len(delays) - 1))]
    print(
        f"victim start delay p50 {statistics.median(delays) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms; "
        f"duration max {max(durations) * 1000:.0f} ms"
    )
    assert p99 < 2.0
    assert max(durations) < 2.0
    for run_id in hostile_runs:
        row = by_id[run_id]
        assert row["status"] == "dead", row
        assert row["attempt"] == 1, row  # not retryable: no second attempt
        assert row["error"]["retryable"] is False
    reasons = {by_id[run_id]["error"]["message"] for run_id in hostile_runs}
    assert any("finite" in reason for reason in reasons), reasons
    assert any("over the limit" in reason for reason in reasons), reasons
