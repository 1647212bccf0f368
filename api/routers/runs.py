"""``/runs``: run history and state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import Conn, Principal, RunsRead, RunsWrite
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import RUN_NOT_FOUND, STATE_CONFLICT
from api.schemas import Run, RunPage, RunStatus, RunTrigger
from engine.errors import Conflict, NotFound
from store import due_work as due_work_store
from store import runs as runs_store
from store import tasks as tasks_store

router = APIRouter(prefix="/runs", tags=["runs"])

FINAL = ("succeeded", "dead", "canceled")


@router.get(
    "",
    operation_id="runs_list",
    response_model=RunPage,
    summary="List runs, newest first (scope runs:read; your tasks' runs, admin: all)",
)
async def list_runs(
    principal: RunsRead,
    conn: Conn,
    task_id: UUID | None = None,
    status: Annotated[
        list[RunStatus] | None, Query(description="Any of these statuses (repeat the name).")
    ] = None,
    trigger: Annotated[
        list[RunTrigger] | None, Query(description="Any of these triggers (repeat the name).")
    ] = None,
    since: Annotated[datetime | None, Query(description="Queued at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Queued before (ISO 8601).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    return await list_page(
        lambda n, after: runs_store.list_runs(
            conn,
            owner=principal.owner_filter,
            task_id=task_id,
            statuses=status,
            triggers=trigger,
            since=since,
            until=until,
            limit=n,
            after=after,
        ),
        limit=limit,
        cursor=cursor,
        key="queued_at",
    )


@router.get(
    "/{run_id}",
    operation_id="runs_get",
    response_model=Run,
    summary="One run with its per-step results and structured error (scope runs:read)",
    responses=RUN_NOT_FOUND,
)
async def get_run(run_id: UUID, principal: RunsRead, conn: Conn) -> Any:
    return await _visible_run(conn, run_id, principal)


@router.post(
    "/{run_id}/cancel",
    operation_id="runs_cancel",
    response_model=Run,
    summary="Cancel a queued, waiting or running run (scope runs:write)",
    description=(
        "A queued run (or a failed one waiting for its retry) is canceled at once. A running "
        "run is stopped by its worker (its tool call is cancelled) and answers with "
        "`cancel_requested: true` until the worker records it as `canceled`. A finished run "
        "is a 409."
    ),
    responses={**RUN_NOT_FOUND, **STATE_CONFLICT},
)
async def cancel_run(run_id: UUID, principal: RunsWrite, conn: Conn) -> Any:
    run = await _visible_run(conn, run_id, principal)
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
    return await runs_store.get_run(conn, run_id, owner=None)


@router.post(
    "/{run_id}/retry",
    operation_id="runs_retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Run,
    summary="Re-queue a failed or dead run (scope runs:write)",
    description=(
        "A `failed` run (waiting for its automatic retry) becomes ready now and keeps its id. "
        "A `dead` run is repeated by a new run with trigger `retry` and `retry_of` set; the "
        "answer is that new run. Other states are a 409."
    ),
    responses={**RUN_NOT_FOUND, **STATE_CONFLICT},
)
async def retry_run(run_id: UUID, principal: RunsWrite, conn: Conn) -> Any:
    run = await _visible_run(conn, run_id, principal)
    if run["status"] == "failed" and await due_work_store.retry_failed_now(conn, run_id):
        return await runs_store.get_run(conn, run_id, owner=None)
    if run["status"] == "dead":
        queued = await due_work_store.queue_retry_of(
            conn, dead_run_id=run_id, new_run_id=uuid.uuid4()
        )
        if queued is None:
            raise Conflict("the run's task is canceled")
        return await runs_store.get_run(conn, queued["id"], owner=None)
    raise Conflict(f"only failed or dead runs can be retried (this one is {run['status']})")


async def _visible_run(conn: Conn, run_id: UUID, principal: Principal) -> dict[str, Any]:
    run = await runs_store.get_run(conn, run_id, owner=principal.owner_filter)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run
