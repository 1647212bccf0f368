"""Shared steps of the worker end-to-end tests: make tasks, queue runs, read outcomes."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support import eventually


def sleep_task(seconds: float, **overrides: Any) -> dict[str, Any]:
    """An event task (it never fires on its own) whose pipeline sleeps ``seconds``."""
    task: dict[str, Any] = {
        "title": f"sleep {seconds}",
        "schedule_kind": "event",
        "schedule_expr": "tests.manual",
        "payload": {
            "pipeline": [{"id": "nap", "uses": "debug.sleep", "with": {"seconds": seconds}}]
        },
    }
    task.update(overrides)
    return task


def pipeline_task(
    *steps: dict[str, Any], params: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """An event task running ``steps``."""
    task = sleep_task(0, **overrides)
    task["payload"] = {"params": params or {}, "pipeline": list(steps)}
    return task


async def create_task(client: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/tasks", json=document)
    assert response.status_code == 201, response.text
    return response.json()


async def run_now(client: httpx.AsyncClient, task_id: str, times: int = 1) -> list[str]:
    ids = []
    for _ in range(times):
        response = await client.post(f"/tasks/{task_id}/run_now")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def queue_runs(database_url: str, task_id: str, count: int) -> None:
    """Queue ``count`` manual runs in one statement (faster than ``count`` HTTP calls)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority,
                                  concurrency_key, trigger)
            SELECT gen_random_uuid(), t.id, clock_timestamp() + make_interval(secs => g * 1e-6),
                   now(), t.priority, t.run_lock_key, 'manual'
              FROM tasks t, generate_series(1, %s) AS g
             WHERE t.id = %s
            """,
            (count, task_id),
        )
        conn.execute("NOTIFY ordinaut_due_work")


def query(database_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


async def finished_runs(
    database_url: str, task_id: str, expected: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """Wait until ``expected`` runs of the task are in the history; return them."""

    async def probe() -> list[dict[str, Any]]:
        return query(
            database_url,
            "SELECT * FROM runs WHERE task_id = %s ORDER BY started_at",
            task_id,
        )

    return await eventually(
        probe,
        until=lambda rows: len(rows) >= expected,
        timeout=timeout,
        message=f"{expected} finished runs",
    )


async def run_status(
    client: httpx.AsyncClient, run_id: str, *statuses: str, timeout: float = 20
) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return (await client.get(f"/runs/{run_id}")).json()

    return await eventually(
        probe,
        until=lambda run: run.get("status") in statuses,
        timeout=timeout,
        message=f"run {run_id} to reach {statuses}",
    )
