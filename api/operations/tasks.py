"""Task operations: read one task, queue a run now, and the lifecycle changes (pause,
resume, cancel, snooze).

Every change runs in one transaction that first locks the task row, so two changes of one
task (or a change and a scheduler tick) never interleave. Legal transitions are decided by
:mod:`engine.lifecycle`; repeating a change is a no-op that answers the task unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from api import quotas
from api.deps import Principal
from engine.catalog import schema_problems
from engine.clock import now_utc
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.expansion import plan_occurrence, resumed_state
from engine.lifecycle import decide
from engine.schedules import Schedule, parse_schedule
from engine.settings import Settings
from store import due_work as due_work_store
from store import tasks as tasks_store
from store.db import Connection, Row
from store.expansion import PlannedTasks, apply_plans

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


async def visible_task(conn: Connection, task_id: UUID, owner: UUID | None) -> Row:
    """The task, or 404 when it does not exist or belongs to another agent."""
    task = await tasks_store.get_task(conn, task_id, owner=owner)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def locked_task(conn: Connection, task_id: UUID, owner: UUID | None) -> Row:
    """Lock a visible task for a change (inside a transaction); 404 as :func:`visible_task`."""
    task = await tasks_store.lock_task(conn, task_id, owner=owner)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def task_answer(conn: Connection, task_id: UUID) -> Row:
    """The task as every read shows it (with ``next_run_at``), after a change."""
    task = await tasks_store.get_task(conn, task_id, owner=None)
    assert task is not None
    return task


def schedule_of(task: Row) -> Schedule | None:
    """The stored task's schedule (``None`` for event tasks)."""
    return parse_schedule(
        task["schedule_kind"], task["schedule_expr"], task["timezone"], anchor=task["anchor_at"]
    )


async def run_now(
    conn: Connection, principal: Principal, task_id: UUID, *, settings: Settings
) -> Row:
    """Queue a run of the task now (trigger ``manual``); 409 for a canceled task, 429 when
    the task's owner has as many runs waiting as its ``queued_runs`` quota (``settings``
    gives the defaults). The queued row (its ``id``): callers read
    the run as they present it."""
    task = await visible_task(conn, task_id, principal.owner_filter)
    if task["status"] == "canceled":
        raise Conflict("the task is canceled")
    async with conn.transaction():
        await quotas.check_queued_runs(conn, task["created_by"], settings)
        return await due_work_store.insert_manual_run(
            conn, run_id=uuid.uuid4(), task_id=task_id, trigger="manual"
        )


async def pause_task(conn: Connection, principal: Principal, task_id: UUID) -> Row:
    """No new occurrences; waiting scheduled runs are removed (running ones finish)."""
    async with conn.transaction():
        task = await locked_task(conn, task_id, principal.owner_filter)
        if decide("pause", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "paused")
            await tasks_store.remove_waiting_runs(
                conn, task_id, scope="scheduled", reason="task paused"
            )
        return await task_answer(conn, task_id)


async def resume_task(conn: Connection, principal: Principal, task_id: UUID) -> Row:
    """Continue from now: occurrences that fell into the pause are skipped."""
    now = now_utc()
    async with conn.transaction():
        task = await locked_task(conn, task_id, principal.owner_filter)
        if decide("resume", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "active")
            await _restart_expansion(conn, task, now)
            await tasks_store.complete_finished_tasks(conn, [task_id])
        return await task_answer(conn, task_id)


async def _restart_expansion(conn: Connection, task: Row, now: datetime) -> None:
    schedule = schedule_of(task)
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


async def cancel_task(conn: Connection, principal: Principal, task_id: UUID) -> Row:
    """Status ``canceled``; every waiting run is removed (running ones finish)."""
    async with conn.transaction():
        task = await locked_task(conn, task_id, principal.owner_filter)
        if decide("cancel", task["status"]):
            await tasks_store.set_task_status(conn, task_id, "canceled")
            await tasks_store.remove_waiting_runs(
                conn, task_id, scope="all", reason="task canceled"
            )
        return await task_answer(conn, task_id)


async def snooze_task(conn: Connection, principal: Principal, task_id: UUID, body: Any) -> Row:
    """Delay the task's next pending occurrence by ``body["delay_seconds"]`` (checked
    against :data:`SNOOZE_SCHEMA`); 409 when nothing is pending."""
    problems = schema_problems(SNOOZE_SCHEMA, body)
    if problems:
        raise ValidationFailed(problems)
    delay = float(body["delay_seconds"])
    async with conn.transaction():
        task = await locked_task(conn, task_id, principal.owner_filter)
        decide("snooze", task["status"])
        earliest = await tasks_store.earliest_waiting_run_at(conn, task_id)
        upcoming = task["next_expand_at"]
        if upcoming is not None and (earliest is None or upcoming < earliest):
            await _materialise(conn, task, upcoming)
        if await tasks_store.snooze_next_run(conn, task_id, delay_seconds=delay) is None:
            raise Conflict("the task has no pending occurrence to snooze")
        return await task_answer(conn, task_id)


async def _materialise(conn: Connection, task: Row, occurrence: datetime) -> None:
    """Insert the task's next occurrence now (as the scheduler would) and move its mark."""
    schedule = schedule_of(task)
    assert schedule is not None
    planned = PlannedTasks(
        task_ids=[task["id"]],
        priority=task["priority"],
        lock_key=task["run_lock_key"],
        plan=plan_occurrence(schedule, occurrence),
    )
    await apply_plans(conn, [planned])
