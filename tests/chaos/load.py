"""The steady load (manual runs and events through the API) and the bursts, and the ledger of
what the system acknowledged: every acknowledged run must end succeeded, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.world import World


@dataclass
class Ledger:
    """Run ids the system answered 2xx for, by kind; requests it did not acknowledge."""

    manual: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    bursts: list[str] = field(default_factory=list)
    published: int = 0
    unacknowledged: Counter[str] = field(default_factory=Counter)  # "503", "timeout", …
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503: bugs

    def note_failure(self, response: httpx.Response | None, error: str = "") -> None:
        if response is None:
            self.unacknowledged[error or "no answer"] += 1
            return
        self.unacknowledged[str(response.status_code)] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append(f"{response.status_code} {response.text[:300]}")

    def acknowledged(self) -> list[str]:
        return self.manual + self.events + self.probes + self.bursts


async def run_now(client: httpx.AsyncClient, ledger: Ledger, task_id: str) -> str | None:
    """One ``run_now``; the run id when acknowledged."""
    try:
        response = await client.post(f"/tasks/{task_id}/run_now")
    except httpx.HTTPError as exc:
        ledger.note_failure(None, type(exc).__name__)
        return None
    if response.status_code != 202:
        ledger.note_failure(response)
        return None
    return str(response.json()["id"])


async def publish(client: httpx.AsyncClient, ledger: Ledger) -> None:
    """One event for the event tasks (a fresh Idempotency-Key: never retried with it)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"topic": "chaos.event", "payload": {"n": ledger.published}}
    try:
        response = await client.post("/events", json=body, headers=headers)
    except httpx.HTTPError as exc:
        ledger.note_failure(None, type(exc).__name__)
        return
    if response.status_code != 202:
        ledger.note_failure(response)
        return
    ledger.published += 1
    ledger.events += [str(run["run_id"]) for run in response.json()["runs"]]


async def drive(
    world: World,
    ledger: Ledger,
    stop: asyncio.Event,
    *,
    manual_per_second: float,
    events_per_second: float,
) -> None:
    """Manual runs and events at steady rates until ``stop`` (requests overlap: a slow answer
    does not slow the load down)."""
    assert world.tasks is not None
    manual_task = world.tasks.manual
    async with world.client() as client:

        async def manual() -> None:
            run_id = await run_now(client, ledger, manual_task)
            if run_id is not None:
                ledger.manual.append(run_id)

        await asyncio.gather(
            _every(1 / manual_per_second, manual, stop),
            _every(1 / events_per_second, lambda: publish(client, ledger), stop),
        )


async def _every(
    interval: float, action: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    due = loop.time()
    while not stop.is_set():
        task = asyncio.create_task(action())
        pending.add(task)
        task.add_done_callback(pending.discard)
        due += interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - loop.time()))
    await asyncio.gather(*pending)


async def burst(world: World, ledger: Ledger, count: int) -> list[str]:
    """Queue ``count`` no-op runs in one statement (as the drain benchmark does)."""
    assert world.tasks is not None
    rows = await world.rows(
        """
        WITH queued AS (
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
            SELECT gen_random_uuid(), t.id, clock_timestamp(), now(), t.priority, 'manual'
              FROM tasks t, generate_series(1, %s) AS g
             WHERE t.id = %s
            RETURNING id
        )
        SELECT id::text AS id, pg_notify('ordinaut_due_work', '') FROM queued
        """,
        count,
        world.tasks.burst,
    )
    ids = [row["id"] for row in rows]
    ledger.bursts += ids
    return ids
