"""Run operations: read one run, cancel it, retry it."""

from __future__ import annotations

import uuid
from uuid import UUID

from api.deps import Principal
from engine.errors import Conflict, NotFound
from store import due_work as due_work_store
from store import runs as runs_store
from store import tasks as tasks_store
from store.db import Connection, Row

FINAL = ("succeeded", "dead", "canceled")


async def visible_run(conn: Connection, run_id: UUID, principal: Principal) -> Row:
    """The run, or 404 when it does not exist or belongs to another agent's task."""
    run = await runs_store.get_run(conn, run_id, owner=principal.owner_filter)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


async def cancel_run(conn: Connection, principal: Principal, run_id: UUID) -> Row:
    """Cancel a queued or waiting run at once, or ask the worker of a running one to stop it
    (``cancel_requested`` until it records ``canceled``); 409 for a finished run."""
    run = await visible_run(conn, run_id, principal)
    if run["status"] in FINAL:
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
    return await _answer(conn, run_id)


async def retry_run(conn: Connection, principal: Principal, run_id: UUID) -> Row:
    """A ``failed`` run waiting for its retry becomes ready now (same run); a ``dead`` run is
    repeated by a new run (trigger ``retry``), which is returned. Other states: 409."""
    run = await visible_run(conn, run_id, principal)
    if run["status"] == "failed" and await due_work_store.retry_failed_now(conn, run_id):
        return await _answer(conn, run_id)
    if run["status"] == "dead":
        queued = await due_work_store.queue_retry_of(
            conn, dead_run_id=run_id, new_run_id=uuid.uuid4()
        )
        if queued is None:
            raise Conflict("the run's task is canceled")
        return await _answer(conn, queued["id"])
    raise Conflict(f"only failed or dead runs can be retried (this one is {run['status']})")


async def _answer(conn: Connection, run_id: UUID) -> Row:
    run = await runs_store.get_run(conn, run_id, owner=None)
    assert run is not None
    return run
