"""``/runs``: run history and state, waiting for a run to end, and the live stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from api.deps import Conn, Principal, RunsRead, RunsWrite, release_connection
from api.live import KEEPALIVE_SECONDS, RunFeed
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import RUN_NOT_FOUND, STATE_CONFLICT
from api.schemas import Run, RunPage, RunStatus, RunTrigger
from engine.errors import Conflict, NotFound
from engine.runs import FINAL_STATUSES, present_run
from store import due_work as due_work_store
from store import runs as runs_store
from store import tasks as tasks_store
from store import webhooks as webhooks_store
from store.db import Connection, Row

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
    return {**listed, "items": await present_runs(conn, listed["items"])}


STREAM_DESCRIPTION = """Server-sent events (`text/event-stream`) about your runs (an admin's:
everyone's), as they happen, until the client disconnects or the server stops. Filters:
`task_id`, and `status` (repeatable), which keeps the events whose run has that status.

Each event has `event:`, `id:` and `data:` lines (JSON); `: keepalive` comments come every
15 s of silence. Events:

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
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        event = await subscriber.events.get()
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if event is None:  # the server stops, or this client fell too far behind
                    return
                yield feed.format(event)

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
    return await wait_for_run(request, conn, run_id, principal.owner_filter, wait)


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
        return await read_run(conn, run_id, None)
    if run["status"] == "dead":
        queued = await due_work_store.queue_retry_of(
            conn, dead_run_id=run_id, new_run_id=uuid.uuid4()
        )
        if queued is None:
            raise Conflict("the run's task is canceled")
        return await read_run(conn, queued["id"], None)
    raise Conflict(f"only failed or dead runs can be retried (this one is {run['status']})")


async def _visible_run(conn: Conn, run_id: UUID, principal: Principal) -> Row:
    run = await runs_store.get_run(conn, run_id, owner=principal.owner_filter)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run
