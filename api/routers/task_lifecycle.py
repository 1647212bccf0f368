"""``/tasks/{id}`` lifecycle: PATCH, DELETE, pause, resume, cancel, snooze, preview.

Every change runs in one transaction that first locks the task row, so two changes of one
task (or a change and a scheduler tick) never interleave. Legal transitions are decided by
:mod:`engine.lifecycle`; repeating a change is a no-op that answers 200.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from api.body import json_body, json_body_openapi
from api.components import TASK_ANSWER, ref
from api.creation import scopes_of
from api.deps import AppCatalog, AppSettings, Conn, TasksRead, TasksWrite
from api.responses import INVALID, TASK_NOT_FOUND, error
from engine.catalog import schema_problems
from engine.clock import now_utc
from engine.document import DOCUMENT_FIELDS, PATCH_SCHEMA, SCHEDULE_FIELDS
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.expansion import expansion_start, plan_occurrence, resumed_state
from engine.lifecycle import decide
from engine.schedules import Schedule, parse_schedule
from engine.schedules.preview import MAX_COUNT, parse_after, preview
from engine.validation import validate_task
from store import tasks as tasks_store
from store.db import Connection, Row
from store.expansion import PlannedTasks, apply_plans

router = APIRouter(prefix="/tasks", tags=["tasks"])

CONFLICT = error(409, "Not allowed in the task's current status.")
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


@router.patch(
    "/{task_id}",
    operation_id="tasks_update",
    response_model=None,
    summary="Update some fields of a task (scope tasks:write)",
    description="The body holds any subset of the task document's fields; it is merged with "
    "the stored task and the result validated like `POST /tasks`. A change of "
    "`schedule_kind`, `schedule_expr` or `timezone` removes the occurrences that no worker "
    "has started and recomputes the schedule from now (a DTSTART-less RRULE is anchored at "
    "the time of the change). Allowed while the task is active or paused.",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND, **CONFLICT, **INVALID},
    openapi_extra=json_body_openapi(ref("TaskPatch"), {"schedule_expr": "0 9 * * 1-5"}),
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
            merged,
            catalog,
            default_timezone=settings.default_timezone,
            now=since,
            anchor=since,
            owner_scopes=await scopes_of(conn, task["created_by"], principal),
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


@router.delete(
    "/{task_id}",
    operation_id="tasks_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Cancel and hide a task (scope tasks:write)",
    description="Cancels the task, removes its waiting runs (runs already running finish) "
    "and hides it: afterwards it answers 404 everywhere. Its run history stays readable.",
    responses=TASK_NOT_FOUND,
)
async def delete_task(task_id: UUID, principal: TasksWrite, conn: Conn) -> Response:
    async with conn.transaction():
        await _locked(conn, task_id, principal.owner_filter)
        await tasks_store.remove_waiting_runs(conn, task_id, scope="all", reason="task deleted")
        await tasks_store.hide_task(conn, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{task_id}/pause",
    operation_id="tasks_pause",
    response_model=None,
    summary="Pause a task (scope tasks:write)",
    description="No new occurrences; scheduled runs that are waiting are removed (runs "
    "already running finish). Pausing a paused task changes nothing.",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND, **CONFLICT},
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
    operation_id="tasks_resume",
    response_model=None,
    summary="Resume a paused task from now on (scope tasks:write)",
    description="Occurrences that fell in the pause are skipped; the schedule continues with "
    "the first occurrence after now. A `once` task that has not run yet runs at its time, or "
    "at once when that has passed. Resuming an active task changes nothing.",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND, **CONFLICT},
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
    once_has_run = (
        schedule is not None
        and schedule.kind == "once"
        and (await tasks_store.has_scheduled_run(conn, task["id"]))
    )
    expanded_until, next_expand_at = resumed_state(
        schedule, now=now, expanded_until=task["expanded_until"], once_has_run=once_has_run
    )
    await tasks_store.reset_expansion(
        conn, task["id"], expanded_until=expanded_until, next_expand_at=next_expand_at
    )


@router.post(
    "/{task_id}/cancel",
    operation_id="tasks_cancel",
    response_model=None,
    summary="Cancel a task for good (scope tasks:write)",
    description="Status `canceled`; every waiting run is removed (runs already running "
    "finish). Canceling a canceled task changes nothing; a completed task answers 409.",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND, **CONFLICT},
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


@router.post(
    "/{task_id}/snooze",
    operation_id="tasks_snooze",
    response_model=None,
    summary="Delay the next pending occurrence (scope tasks:write)",
    description="Delays what `next_run_at` shows: the earliest waiting run of the task, whose "
    "start moves to `max(its due time, now) + delay_seconds` (its `scheduled_for` stays). "
    "When the next occurrence is not materialised yet, it is materialised now and delayed. "
    "Later occurrences keep their times. Only active tasks; 409 when nothing is pending.",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND, **CONFLICT, **INVALID},
    openapi_extra=json_body_openapi(SNOOZE_SCHEMA, {"delay_seconds": 600}, name="TaskSnooze"),
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
    planned = PlannedTasks(
        task_ids=[task["id"]],
        priority=task["priority"],
        lock_key=task["run_lock_key"],
        plan=plan_occurrence(schedule, occurrence),
    )
    await apply_plans(conn, [planned])


@router.get(
    "/{task_id}/preview",
    operation_id="tasks_preview",
    response_model=Preview,
    summary="The task's next occurrences (scope tasks:read)",
    description="The schedule's next `count` occurrences strictly after `after` (default "
    "now; may lie in the past), with the offset of the task's zone. Pure schedule arithmetic: "
    "status, snoozes and pending runs are not considered. Event tasks have none.",
    responses={**TASK_NOT_FOUND, **INVALID},
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
