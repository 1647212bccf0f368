"""``/runs``: run history and state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import Conn, RunsRead, RunsWrite
from api.operations import runs as operations
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import RUN_NOT_FOUND, STATE_CONFLICT
from api.schemas import Run, RunPage, RunStatus, RunTrigger
from store import runs as runs_store

router = APIRouter(prefix="/runs", tags=["runs"])


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
    return await operations.visible_run(conn, run_id, principal)


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
    return await operations.cancel_run(conn, principal, run_id)


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
    return await operations.retry_run(conn, principal, run_id)
