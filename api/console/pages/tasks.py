"""Tasks: the list (filters, capped status counts, keyset pages) and one task (its schedule in
words, the next occurrences with DST marks, recent runs, the document, and its actions)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request
from fastapi.responses import Response

from api.console.mirror import (
    RUNS_LIST,
    TASK_CANCEL,
    TASK_PAUSE,
    TASK_READ,
    TASK_RESUME,
    TASK_RUN_NOW,
    TASK_SNOOZE,
    TASKS_LIST,
    Done,
    Mirror,
    record,
)
from api.console.render import page
from api.console.routing import (
    Form,
    Signed,
    act,
    allowed,
    first,
    posted_form,
    query_string,
    router,
)
from api.console.session import ConsoleSession
from api.deps import Conn, Principal
from api.operations import tasks as operations
from api.pagination import decode_typed_cursor, encode_cursor, list_page
from api.pagination import page as keyset_page
from engine.clock import now_utc
from engine.document import DOCUMENT_FIELDS
from engine.errors import ValidationFailed
from engine.schedules.describe import describe_schedule
from engine.schedules.dst import dst_shifts
from engine.schedules.preview import next_occurrences
from engine.timezones import get_zone
from store import agents as agents_store
from store import runs as runs_store
from store import tasks as tasks_store
from store.db import Connection, Row
from store.stats import TASK_STATUSES

PAGE_SIZE = 50
COUNT_CAP = 10_000
# A title search reads at most this many tasks per page, then offers to search on.
SEARCH_BUDGET = 10_000
KINDS = ("once", "cron", "rrule", "event")
OCCURRENCES = 10
RECENT_RUNS = 15
# The snooze choices offered by the task page (seconds).
SNOOZES = ((600, "10 minutes"), (3600, "1 hour"), (4 * 3600, "4 hours"), (86400, "1 day"))

Choice = Annotated[str | None, Query(max_length=200)]


@router.get("/tasks")
async def tasks_page(
    request: Request,
    session: Signed,
    conn: Conn,
    status: Choice = None,
    kind: Choice = None,
    agent: Choice = None,
    q: Choice = None,
    cursor: Choice = None,
) -> Response:
    principal = allowed(request, session, TASKS_LIST).principal
    status = status if status in TASK_STATUSES else None
    kind = kind if kind in KINDS else None
    created_by = _agent_filter(principal, agent)
    text = (q or "").strip() or None
    owner = principal.owner_filter
    listed, partial = await _listed(conn, owner, status, kind, created_by, text, cursor or None)
    tasks = listed["items"]
    counts = await tasks_store.count_tasks_by_status(conn, owner=created_by or owner, cap=COUNT_CAP)
    filters = {"status": status, "kind": kind, "agent": agent if created_by else None, "q": text}
    return page(
        request,
        "tasks.html",
        session,
        rows=await _task_rows(conn, principal, tasks),
        counts=counts,
        count_cap=COUNT_CAP,
        filters=filters,
        agents=await _agent_choices(conn, principal),
        next_url=_page_url("/ui/tasks", filters, listed["next_cursor"]),
        searched_partially=partial,
        search_budget=SEARCH_BUDGET,
        first_url="/ui/tasks?" + query_string(filters) if cursor else None,
        status_url=lambda s: "/ui/tasks?" + query_string({**filters, "status": s}),
        kinds=KINDS,
        statuses=TASK_STATUSES,
    )


async def _listed(
    conn: Connection,
    owner: UUID | None,
    status: str | None,
    kind: str | None,
    created_by: UUID | None,
    text: str | None,
    cursor: str | None,
) -> tuple[dict[str, Any], bool]:
    """One page of tasks (``{"items", "next_cursor"}``) and whether a title search stopped
    at its budget (the next page then searches on through older tasks)."""
    if text and not _is_uuid(text):
        found = await tasks_store.search_titles(
            conn,
            owner=owner,
            created_by=created_by,
            status=status,
            schedule_kind=kind,
            text=text,
            limit=PAGE_SIZE + 1,
            after=decode_typed_cursor(cursor, UUID),
            budget=SEARCH_BUDGET,
        )
        items, next_cursor = keyset_page(found.rows, PAGE_SIZE, "created_at")
        if next_cursor is None and found.stopped_at is not None:
            next_cursor = encode_cursor(*found.stopped_at)
        return {"items": items, "next_cursor": next_cursor}, found.stopped_at is not None
    listed = await list_page(
        lambda n, after: tasks_store.list_tasks(
            conn,
            owner=owner,
            statuses=[status] if status else None,
            schedule_kinds=[kind] if kind else None,
            created_by=created_by,
            text=text,
            limit=n,
            after=after,
        ),
        limit=PAGE_SIZE,
        cursor=cursor,
        key="created_at",
    )
    return listed, False


def _is_uuid(text: str) -> bool:
    try:
        UUID(text.strip())
    except ValueError:
        return False
    return True


def _agent_filter(principal: Principal, agent: str | None) -> UUID | None:
    """Admins may narrow the list to one agent; for others their own reach is the limit."""
    if not agent or not principal.is_admin:
        return None
    try:
        return UUID(agent)
    except ValueError:
        raise ValidationFailed([], "the agent filter is not an agent id") from None


async def _agent_choices(conn: Connection, principal: Principal) -> list[Row]:
    if not principal.is_admin:
        return []
    return await agents_store.list_agents(
        conn, include_deleted=False, name=None, limit=200, after=None
    )


def _page_url(base: str, filters: dict[str, Any], cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return f"{base}?{query_string({**filters, 'cursor': cursor})}"


async def _task_rows(
    conn: Connection, principal: Principal, tasks: list[Row]
) -> list[dict[str, Any]]:
    ids = [task["id"] for task in tasks]
    last = await tasks_store.last_finished_runs(conn, ids)
    anchors = await tasks_store.schedule_anchors(
        conn, [t["id"] for t in tasks if t["schedule_kind"] == "rrule"]
    )
    owners = await agents_store.agent_names(conn, [t["created_by"] for t in tasks])
    return [
        {
            **task,
            "words": schedule_words(task, anchors.get(task["id"])),
            "last_run": last.get(task["id"]),
            "owner_name": owners.get(task["created_by"], "?"),
        }
        for task in tasks
    ]


def schedule_words(task: Row, anchor: datetime | None) -> str | None:
    """The task's schedule in words (None: only the expression says it exactly)."""
    dtstart = None
    if task["schedule_kind"] == "rrule" and anchor is not None:
        try:
            schedule = operations.schedule_of({**task, "anchor_at": anchor})
        except ValidationFailed:
            return None
        dtstart = getattr(schedule, "dtstart", None)
    return describe_schedule(task["schedule_kind"], task["schedule_expr"], dtstart)


@router.get("/tasks/{task_id}")
async def task_page(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    principal = allowed(request, session, TASK_READ).principal
    task = await operations.visible_task(conn, task_id, principal.owner_filter)
    stored = await tasks_store.get_task_schedule(conn, task_id, owner=principal.owner_filter)
    assert stored is not None  # visible a moment ago; tasks are never deleted for real
    schedule = operations.schedule_of(stored)
    occurrences = await asyncio.to_thread(
        next_occurrences, schedule, after=now_utc(), count=OCCURRENCES
    )
    zone = get_zone(task["timezone"])
    marks = dst_shifts(schedule, occurrences, zone) if schedule is not None else []
    runs: list[Row] | None = None  # the token may not read runs
    if RUNS_LIST.allows(request.app, principal):
        runs = await runs_store.list_runs(
            conn,
            owner=principal.owner_filter,
            task_id=task_id,
            since=None,
            until=None,
            limit=RECENT_RUNS,
            after=None,
        )
    owners = await agents_store.agent_names(conn, [task["created_by"]])
    return page(
        request,
        "task.html",
        session,
        task=task,
        words=schedule_words(task, stored["anchor_at"]),
        occurrences=list(zip(occurrences, marks, strict=True)),
        runs=runs,
        owner_name=owners.get(task["created_by"], "?"),
        document={key: task[key] for key in DOCUMENT_FIELDS},
        actions=_actions(request, principal, task),
        snoozes=SNOOZES,
    )


def _actions(request: Request, principal: Principal, task: Row) -> dict[str, bool]:
    """Which buttons the task page shows: allowed to the token and in the task's status."""
    status = task["status"]
    may = TASK_PAUSE.allows(request.app, principal)
    return {
        "pause": may and status == "active",
        "resume": may and status == "paused",
        "cancel": may and status in ("active", "paused"),
        "run_now": may and status != "canceled",
        "snooze": may and status == "active",
    }


async def _task_action(
    request: Request,
    session: ConsoleSession,
    conn: Connection,
    task_id: UUID,
    mirror: Mirror,
    perform: Callable[[Connection, Principal, UUID, Form], Awaitable[Row]],
    message: str,
) -> Response:
    form = await posted_form(request, session, mirror)
    principal = session.principal

    async def work() -> tuple[str, None]:
        async with conn.transaction():
            result = await perform(conn, principal, task_id, form)
            result_id = str(result["id"]) if result.get("id") != task_id else None
            done = Done(str(task_id), result_id=result_id)
            await record(conn, request, mirror, principal, [done])
        return message, None

    return await act(f"/ui/tasks/{task_id}", work)


@router.post("/tasks/{task_id}/pause")
async def pause(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _task_action(
        request,
        session,
        conn,
        task_id,
        TASK_PAUSE,
        lambda c, p, t, f: operations.pause_task(c, p, t),
        "Task paused: no new runs until you resume it.",
    )


@router.post("/tasks/{task_id}/resume")
async def resume(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _task_action(
        request,
        session,
        conn,
        task_id,
        TASK_RESUME,
        lambda c, p, t, f: operations.resume_task(c, p, t),
        "Task resumed from now.",
    )


@router.post("/tasks/{task_id}/cancel")
async def cancel(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _task_action(
        request,
        session,
        conn,
        task_id,
        TASK_CANCEL,
        lambda c, p, t, f: operations.cancel_task(c, p, t),
        "Task canceled; its waiting runs were removed.",
    )


@router.post("/tasks/{task_id}/run_now")
async def run_now(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _task_action(
        request,
        session,
        conn,
        task_id,
        TASK_RUN_NOW,
        lambda c, p, t, f: operations.run_now(c, p, t, settings=request.app.state.settings),
        "Run queued: a worker starts it at once.",
    )


@router.post("/tasks/{task_id}/snooze")
async def snooze(request: Request, task_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _task_action(
        request,
        session,
        conn,
        task_id,
        TASK_SNOOZE,
        lambda c, p, t, f: operations.snooze_task(c, p, t, _snooze_body(first(f, "delay_seconds"))),
        "Next run snoozed.",
    )


def _snooze_body(raw: str | None) -> dict[str, Any]:
    """The REST body of a snooze from the form's field (the operation validates it)."""
    try:
        value = float(raw or "")
    except ValueError:
        return {"delay_seconds": raw}
    return {"delay_seconds": value if math.isfinite(value) else raw}
