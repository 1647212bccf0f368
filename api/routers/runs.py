"""``/runs``: run history and state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import Conn, RunsRead
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, decode_cursor, page
from api.schemas import ErrorResponse, Run, RunPage
from engine.errors import NotFound
from store import runs as runs_store

router = APIRouter(prefix="/runs", tags=["runs"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid token."},
    403: {"model": ErrorResponse, "description": "The token lacks the required scope."},
}


@router.get(
    "",
    response_model=RunPage,
    summary="List runs, newest first (scope runs:read; your tasks' runs, admin: all)",
    responses=ERRORS,
)
async def list_runs(
    principal: RunsRead,
    conn: Conn,
    task_id: UUID | None = None,
    status: Annotated[
        str | None, Query(pattern="^(queued|running|failed|succeeded|dead|canceled)$")
    ] = None,
    since: Annotated[datetime | None, Query(description="Queued at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Queued before (ISO 8601).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    rows = await runs_store.list_runs(
        conn,
        owner=principal.owner_filter,
        task_id=task_id,
        status=status,
        since=since,
        until=until,
        limit=limit + 1,
        after=decode_cursor(cursor),
    )
    items, next_cursor = page(rows, limit, "queued_at")
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{run_id}",
    response_model=Run,
    summary="One run with its per-step results and structured error (scope runs:read)",
    responses={**ERRORS, 404: {"model": ErrorResponse}},
)
async def get_run(run_id: UUID, principal: RunsRead, conn: Conn) -> Any:
    run = await runs_store.get_run(conn, run_id, owner=principal.owner_filter)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run
