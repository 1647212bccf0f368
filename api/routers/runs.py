"""``/runs``: run history and state, waiting for a run to end, and the live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from api.deps import AppSettings, Conn, RunsRead, RunsWrite, still_grants
from api.live import RunFeed
from api.operations import runs as operations
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import QUOTA_EXCEEDED, RUN_NOT_FOUND, STATE_CONFLICT
from api.schemas import Run, RunPage, RunStatus, RunTrigger
from store import runs as runs_store

router = APIRouter(prefix="/runs", tags=["runs"])

MAX_WAIT_SECONDS = 60
Wait = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds (at most 60) to hold the answer until the run has ended "
        "(`succeeded`, `dead` or `canceled`); when they run out, the run as it is then.",
    ),
]


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
    listed = await list_page(
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
    return {**listed, "items": await operations.present_runs(conn, listed["items"])}


STREAM_DESCRIPTION = """Server-sent events (`text/event-stream`) about your runs (an admin's:
everyone's), as they happen, until the client disconnects or the server stops. Filters:
`task_id`, and `status` (repeatable), which keeps the events whose run has that status.

Each event has `event:`, `id:` and `data:` lines (JSON); `: keepalive` comments come every
15 s of silence. The stream closes when the token loses access (revoked, its agent deleted,
the `runs:read` scope taken away), within `ORDINAUT_STREAM_RECHECK_SECONDS` (15 s). Events:

- `run.queued`, `run.running`, `run.failed` (an attempt failed, a retry waits),
  `run.succeeded`, `run.dead`, `run.canceled`:
  `{"id", "task_id", "status", "attempt", "run"}`; `run` is the run as `GET /runs/{id}`
  shows it at that moment, or null when it has already moved on (a later event follows).
- `step.finished`: `{"run_id", "task_id", "attempt", "index", "step"}`, each step of an
  attempt in order, before the state event it led to. Steps of runs shorter than a second
  arrive together with the run's end; longer runs' steps within about a second.

Nothing is replayed: on reconnecting, read `GET /runs` for what happened meanwhile."""


@router.get(
    "/stream",
    operation_id="runs_stream",
    response_class=StreamingResponse,
    summary="Follow runs live: server-sent events (scope runs:read)",
    description=STREAM_DESCRIPTION,
    responses={
        200: {
            "description": "An endless stream of server-sent events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_runs(
    request: Request,
    principal: RunsRead,
    task_id: UUID | None = None,
    status: Annotated[list[RunStatus] | None, Query()] = None,
) -> StreamingResponse:
    feed: RunFeed = request.app.state.run_feed

    async def events() -> AsyncIterator[bytes]:
        async with feed.subscription(
            owner=principal.owner_filter, task_id=task_id, statuses=status or ()
        ) as subscriber:
            yield b": subscribed\n\n"
            async for event in feed.follow(subscriber, still_grants(principal, "runs:read")):
                yield b": keepalive\n\n" if event is None else feed.format(event)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/{run_id}",
    operation_id="runs_get",
    response_model=Run,
    summary="One run with its per-step results and structured error (scope runs:read)",
    description="With `wait=N` (at most 60 seconds) the answer comes as soon as the run has "
    "ended, or with the run as it is when the time runs out (check `status`).",
    responses=RUN_NOT_FOUND,
)
async def get_run(
    run_id: UUID, request: Request, principal: RunsRead, conn: Conn, wait: Wait = None
) -> Any:
    return await operations.wait_for_run(request, conn, run_id, principal.owner_filter, wait)


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
    responses={**RUN_NOT_FOUND, **STATE_CONFLICT, **QUOTA_EXCEEDED},
)
async def retry_run(run_id: UUID, principal: RunsWrite, conn: Conn, settings: AppSettings) -> Any:
    return await operations.retry_run(conn, principal, run_id, settings=settings)
