"""Run operations shared by the REST routes and the console: read one run as ``GET
/runs/{id}`` answers it (waiting for its end if asked), cancel it, retry it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from uuid import UUID

from fastapi import Request

from api import quotas
from api.deps import Principal, release_connection
from api.live import RunFeed
from engine.errors import Conflict, NotFound
from engine.runs import FINAL_STATUSES, present_run
from engine.settings import Settings
from store import due_work as due_work_store
from store import runs as runs_store
from store import tasks as tasks_store
from store import webhooks as webhooks_store
from store.db import Connection, Row


async def present_runs(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """Runs as the API answers them, with the webhook deliveries of those that ended (one
    query for all of them)."""
    ended = [row["id"] for row in rows if row["status"] in FINAL_STATUSES]
    deliveries = await webhooks_store.deliveries_of_runs(conn, ended) if ended else {}
    presented = []
    for row in rows:
        run = present_run(row)
        run["webhook_deliveries"] = deliveries.get(row["id"], [])
        presented.append(run)
    return presented


async def read_run(conn: Connection, run_id: UUID, owner: UUID | None) -> dict[str, Any]:
    """The run as the API answers it; 404 when it does not exist or is another agent's."""
    row = await runs_store.get_run(conn, run_id, owner=owner)
    if row is None:
        raise NotFound(f"run {run_id} not found")
    (run,) = await present_runs(conn, [row])
    return run


async def wait_for_run(
    request: Request, conn: Connection, run_id: UUID, owner: UUID | None, seconds: float | None
) -> dict[str, Any]:
    """The run once it has ended, or as it is when ``seconds`` run out (or the process
    stops). The waiter is registered before the run is read, so an end between the read
    and the wait still wakes it; while waiting, no connection is held and no query runs."""
    feed: RunFeed = request.app.state.run_feed
    with feed.waiter(run_id) as woken:
        run = await read_run(conn, run_id, owner)
        if not seconds or run["status"] in FINAL_STATUSES:
            return run
        await release_connection(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not feed.closing and (remaining := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(remaining):
                    await woken.wait()
            except TimeoutError:
                break
            woken.clear()
            run = await _reread(feed, run_id)
            if run["status"] in FINAL_STATUSES:
                return run
    return await _reread(feed, run_id)


async def _reread(feed: RunFeed, run_id: UUID) -> dict[str, Any]:
    """The run again, read once for every waiter that asks at the same time (the first
    read checked that the caller may see it; a run's owner never changes)."""

    async def read() -> dict[str, Any]:
        async with feed.pool.connection() as conn:
            return await read_run(conn, run_id, None)

    return await feed.shared_read(run_id, read)


async def visible_run(conn: Connection, run_id: UUID, principal: Principal) -> Row:
    """The stored run, or 404 when it does not exist or belongs to another agent's task."""
    run = await runs_store.get_run(conn, run_id, owner=principal.owner_filter)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


async def cancel_run(conn: Connection, principal: Principal, run_id: UUID) -> dict[str, Any]:
    """Cancel a queued or waiting run at once, or ask the worker of a running one to stop it
    (``cancel_requested`` until it records ``canceled``); 409 for a finished run."""
    run = await visible_run(conn, run_id, principal)
    if run["status"] in FINAL_STATUSES:
        raise Conflict(f"run {run_id} already ended ({run['status']})")
    error = {
        "step_id": None,
        "type": "canceled",
        "message": f"canceled by agent {principal.name}",
        "retryable": False,
    }
    async with conn.transaction():
        canceled = await due_work_store.cancel_waiting_run(conn, run_id, error=error)
        if canceled is not None:
            await tasks_store.complete_finished_tasks(conn, [canceled["task_id"]])
    if canceled is None:
        await due_work_store.request_cancel(conn, run_id)
    return await read_run(conn, run_id, None)


async def retry_run(
    conn: Connection, principal: Principal, run_id: UUID, *, settings: Settings
) -> dict[str, Any]:
    """A ``failed`` run waiting for its retry becomes ready now (same run); a ``dead`` run is
    repeated by a new run (trigger ``retry``), which is returned (429 when the run's owner
    has as many runs waiting as its ``queued_runs`` quota; the failed run already waits, so
    it is never refused). Other states: 409."""
    run = await visible_run(conn, run_id, principal)
    if run["status"] == "failed" and await due_work_store.retry_failed_now(conn, run_id):
        return await read_run(conn, run_id, None)
    if run["status"] == "dead":
        async with conn.transaction():
            await quotas.check_queued_runs(conn, run["agent_id"], settings)
            queued = await due_work_store.queue_retry_of(
                conn, dead_run_id=run_id, new_run_id=uuid.uuid4()
            )
        if queued is None:
            raise Conflict("the run's task is canceled")
        return await read_run(conn, queued["id"], None)
    raise Conflict(f"only failed or dead runs can be retried (this one is {run['status']})")
