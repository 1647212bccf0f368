"""``/tasks/{id}`` lifecycle: PATCH, DELETE, pause, resume, cancel, snooze, preview.

Every change runs in one transaction that first locks the task row, so two changes of one
task (or a change and a scheduler tick) never interleave. Legal transitions are decided by
:mod:`engine.lifecycle`; repeating a change is a no-op that answers 200.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.body import json_body, json_body_openapi
from api.deps import AppCatalog, AppSettings, Conn, TasksRead, TasksWrite
from api.schemas import ErrorResponse, Task
from engine.catalog import schema_problems
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.expansion import expansion_start, initial_state
from engine.lifecycle import decide
from engine.schedules import Schedule, parse_schedule
from engine.schedules.preview import MAX_COUNT, parse_after, preview
from engine.validation import PATCH_SCHEMA, validate_task
from store import due_work as due_work_store
from store import tasks as tasks_store
from store.db import Connection, Row

router = APIRouter(prefix="/tasks", tags=["tasks"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid token."},
    403: {"model": ErrorResponse, "description": "The token lacks the required scope."},
    404: {"model": ErrorResponse, "description": "No such task (or not yours)."},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Not allowed in the task's current status."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid input; every problem listed."}
}
DOCUMENT_FIELDS = (
    "title",
    "description",
    "schedule_kind",
    "schedule_expr",
    "timezone",
    "payload",
    "priority",
    "max_retries",
    "backoff_strategy",
    "timeout_seconds",
    "concurrency_key",
    "dedupe_key",
    "dedupe_window_seconds",
    "catch_up",
)
SCHEDULE_FIELDS = ("schedule_kind", "schedule_expr", "timezone")
SNOOZE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "delay_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 31536000,
            "description": "How long to delay the next pending occurrence (at most a year).",
        }
    },
    "required": ["delay_seconds"],
    "additionalProperties": False,
}


class Preview(BaseModel):
    occurrences: list[str] = Field(
        description="ISO 8601 instants with the zone's offset, e.g. 2026-03-30T09:00:00+03:00.",
        examples=[["2026-03-30T09:00:00+03:00", "2026-03-31T09:00:00+03:00"]],
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


async def _locked(conn: Connection, task_id: UUID, owner: UUID | None) -> Row:
    task = await tasks_store.lock_task(conn, task_id, owner=owner)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def _answer(conn: Connection, task_id: UUID) -> Row:
    task = await tasks_store.get_task(conn, task_id, owner=None)
    assert task is not None
    return task


def _schedule_of(task: Row) -> Schedule | None:
    return parse_schedule(
        task["schedule_kind"], task["schedule_expr"], task["timezone"], anchor=task["anchor_at"]
    )


# -- PATCH ---------------------------------------------------------------------------------


@router.patch(
    "/{task_id}",
    response_model=Task,
    summary="Update some fields of a task (scope tasks:write)",
    description="The body holds any subset of the task document's fields; it is merged with "
    "the stored task and the result validated like `POST /tasks`. A change of "
    "`schedule_kind`, `schedule_expr` or `timezone` removes the occurrences that no worker "
    "has started and recomputes the schedule from now (a DTSTART-less RRULE is anchored at "
    "the time of the change). Allowed while the task is active or paused.",
    responses={**ERRORS, **CONFLICT, **INVALID},
    openapi_extra=json_body_openapi(PATCH_SCHEMA, {"schedule_expr": "0 9 * * 1-5"}),
)
async def update_task(
    task_id: UUID,
    request: Request,
    principal: TasksWrite,
    conn: Conn,
    settings: AppSettings,
    catalog: AppCatalog,
) -> Any:
    patch = await json_body(request)
    problems = schema_problems(PATCH_SCHEMA, patch)
    if problems:
        raise ValidationFailed(problems)
    now = now_utc()
    async with conn.transaction():
        task = await _locked(conn, task_id, principal.owner_filter)
        decide("update", task["status"])
        merged = {**{k: task[k] for k in DOCUMENT_FIELDS}, **patch}
        rescheduled = any(merged[k] != task[k] for k in SCHEDULE_FIELDS)
        # An unchanged schedule is judged as at its creation: a task whose last occurrence
        # is still pending may not fire "after now", and its title can still change.
        since = now if rescheduled else task["anchor_at"]
        spec = validate_task(
            merged, catalog, default_timezone=settings.default_timezone, now=since, anchor=since
        )
        document = spec.document()
        restart = None
        if rescheduled:
            await tasks_store.remove_waiting_runs(
                conn, task_id, scope="unstarted_scheduled", reason="the schedule changed"
            )
            restart = expansion_start(spec.schedule, now)
        await tasks_store.update_task_document(conn, task_id, document, restart=restart)
        if (document["priority"], document["concurrency_key"]) != (
            task["priority"],
            task["concurrency_key"],
        ):
            await tasks_store.update_waiting_runs(conn, task_id)
        return await _answer(conn, task_id)


# -- DELETE, pause, resume, cancel ---------------------------------------------------------


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Cancel and hide a task (scope tasks:write)",
    description="Cancels the task, removes its waiting runs (runs already running finish) "
    "and hides it: afterwards it answers 404 everywhere. Its run history stays readable.",
    responses=ERRORS,
)
async def delete_task(task_id: UUID, principal: TasksWrite, conn: Conn) -> Response:
    async with conn.transaction():
        await _locked(conn, task_id, principal.owner_filter)
        await tasks_store.remove_waiting_runs(conn, task_id, scope="all", reason="task deleted")
        await tasks_store.hide_task(conn, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{task_id}/pause",
    response_model=Task,
    summary="Pause a task (scope tasks:write)",
    description="No new occurrences; scheduled runs that are waiting are removed (runs "
    "already running finish). Pausing a paused task changes nothing.",
    responses={**ERRORS, **CONFLICT},
)
async def pause_task(task_id: UUID, principal: TasksWrite, conn: Conn) -> Any:
    async with conn.transaction():
        task = await _locked(conn, task_id, principal.owner_filter)
        if decide("pause", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "paused")
            await tasks_store.remove_waiting_runs(
                conn, task_id, scope="scheduled", reason="task paused"
            )
        return await _answer(conn, task_id)


@router.post(
    "/{task_id}/resume",
    response_model=Task,
    summary="Resume a paused task from now on (scope tasks:write)",
    description="Occurrences that fell in the pause are skipped; the schedule continues with "
    "the first occurrence after now. A `once` task that has not run yet runs at its time, or "
    "at once when that has passed. Resuming an active task changes nothing.",
    responses={**ERRORS, **CONFLICT},
)
async def resume_task(task_id: UUID, principal: TasksWrite, conn: Conn) -> Any:
    now = now_utc()
    async with conn.transaction():
        task = await _locked(conn, task_id, principal.owner_filter)
        if decide("resume", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "active")
            await _restart_expansion(conn, task, now)
            await tasks_store.complete_finished_tasks(conn, [task_id])
        return await _answer(conn, task_id)


async def _restart_expansion(conn: Connection, task: Row, now: datetime) -> None:
    schedule = _schedule_of(task)
    if schedule is not None and schedule.kind == "once":
        if await tasks_store.has_scheduled_run(conn, task["id"]):
            expanded_until, next_expand_at = task["expanded_until"], None  # it did its work
        else:
            expanded_until, next_expand_at = initial_state(schedule, now)
    elif schedule is None:
        expanded_until, next_expand_at = None, None
    else:
        expanded_until, next_expand_at = now, schedule.next_after(now)
    await tasks_store.reset_expansion(
        conn, task["id"], expanded_until=expanded_until, next_expand_at=next_expand_at
    )


@router.post(
    "/{task_id}/cancel",
    response_model=Task,
    summary="Cancel a task for good (scope tasks:write)",
    description="Status `canceled`; every waiting run is removed (runs already running "
    "finish). Canceling a canceled task changes nothing; a completed task answers 409.",
    responses={**ERRORS, **CONFLICT},
)
async def cancel_task(task_id: UUID, principal: TasksWrite, conn: Conn) -> Any:
    async with conn.transaction():
        task = await _locked(conn, task_id, principal.owner_filter)
        if decide("cancel", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "canceled")
            await tasks_store.remove_waiting_runs(
                conn, task_id, scope="all", reason="task canceled"
            )
        return await _answer(conn, task_id)


# -- snooze --------------------------------------------------------------------------------


@router.post(
    "/{task_id}/snooze",
    response_model=Task,
    summary="Delay the next pending occurrence (scope tasks:write)",
    description="Delays what `next_run_at` shows: the earliest waiting run of the task, whose "
    "start moves to `max(its due time, now) + delay_seconds` (its `scheduled_for` stays). "
    "When the next occurrence is not materialised yet, it is materialised now and delayed. "
    "Later occurrences keep their times. Only active tasks; 409 when nothing is pending.",
    responses={**ERRORS, **CONFLICT, **INVALID},
    openapi_extra=json_body_openapi(SNOOZE_SCHEMA, {"delay_seconds": 600}),
)
async def snooze_task(task_id: UUID, request: Request, principal: TasksWrite, conn: Conn) -> Any:
    body = await json_body(request)
    problems = schema_problems(SNOOZE_SCHEMA, body)
    if problems:
        raise ValidationFailed(problems)
    delay = float(body["delay_seconds"])
    async with conn.transaction():
        task = await _locked(conn, task_id, principal.owner_filter)
        decide("snooze", task["status"])
        earliest = await tasks_store.earliest_waiting_run_at(conn, task_id)
        upcoming = task["next_expand_at"]
        if upcoming is not None and (earliest is None or upcoming < earliest):
            await _materialise(conn, task, upcoming)
        if await tasks_store.snooze_next_run(conn, task_id, delay_seconds=delay) is None:
            raise Conflict("the task has no pending occurrence to snooze")
        return await _answer(conn, task_id)


async def _materialise(conn: Connection, task: Row, occurrence: datetime) -> None:
    """Insert the task's next occurrence now (as the scheduler would) and move its mark."""
    schedule = _schedule_of(task)
    assert schedule is not None
    await due_work_store.insert_occurrences(
        conn,
        [
            due_work_store.Occurrence(
                uuid.uuid4(), task["id"], occurrence, task["priority"], task["run_lock_key"]
            )
        ],
    )
    await tasks_store.save_expansion_state(
        conn, [(task["id"], occurrence, schedule.next_after(occurrence))]
    )


# -- preview -------------------------------------------------------------------------------


@router.get(
    "/{task_id}/preview",
    response_model=Preview,
    summary="The task's next occurrences (scope tasks:read)",
    description="The schedule's next `count` occurrences strictly after `after` (default "
    "now; may lie in the past), with the offset of the task's zone. Pure schedule arithmetic: "
    "status, snoozes and pending runs are not considered. Event tasks have none.",
    responses={**ERRORS, **INVALID},
)
async def preview_task(
    task_id: UUID,
    principal: TasksRead,
    conn: Conn,
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = 10,
    after: Annotated[
        str | None,
        Query(max_length=64, description="ISO 8601; naive means the task's zone"),
    ] = None,
) -> Any:
    task = await tasks_store.get_task_schedule(conn, task_id, owner=principal.owner_filter)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    start = now_utc() if after is None else parse_after(after, task["timezone"], "query.after")
    schedule = _schedule_of(task)
    occurrences = await asyncio.to_thread(
        preview, schedule, task["timezone"], after=start, count=count
    )
    return {"occurrences": occurrences}
