"""``/tasks``: create, list, read and run tasks."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from api import quotas
from api.body import json_body, json_body_openapi
from api.components import TASK_ANSWER, json_response, ref
from api.creation import create_task_once, owner_scopes, resolve_owner
from api.deps import AppCatalog, AppSettings, Conn, TasksRead, TasksWrite
from api.idempotency import IdempotencyKey
from api.operations import tasks as operations
from api.operations.runs import wait_for_run
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit, list_page
from api.responses import IDEMPOTENCY_CONFLICT, INVALID, QUOTA_EXCEEDED, TASK_NOT_FOUND, error
from api.routers.runs import Wait
from api.schemas import ErrorDetail, Run, ScheduleKind, TaskStatus
from engine.clock import now_utc
from engine.errors import ValidationFailed
from engine.examples import QUICK_START_TASK
from engine.expansion import expansion_start
from engine.validation import task_problems, validate_task
from store import tasks as tasks_store

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.post(
    "",
    operation_id="tasks_create",
    response_model=None,
    status_code=status.HTTP_201_CREATED,
    summary="Create a task (scope tasks:write)",
    description="201 with the new task. With a `dedupe_key` that the owner already used "
    "within `dedupe_window_seconds` (0: on a task that is not canceled), 200 with that "
    "existing task instead, and nothing is created.",
    responses={
        201: json_response("Task", "The task created."),
        200: json_response("Task", "An existing task with the same `dedupe_key`."),
        **IDEMPOTENCY_CONFLICT,
        **INVALID,
        **QUOTA_EXCEEDED,
    },
    openapi_extra=json_body_openapi(ref("TaskCreate"), QUICK_START_TASK),
)
async def create_task(
    request: Request,
    response: Response,
    principal: TasksWrite,
    idempotency: IdempotencyKey,
    conn: Conn,
    settings: AppSettings,
    catalog: AppCatalog,
) -> Any:
    document = await json_body(request)
    now = now_utc()
    spec = validate_task(
        document,
        catalog,
        default_timezone=settings.default_timezone,
        now=now,
        owner_scopes=await owner_scopes(conn, document, principal),
    )
    owner = await resolve_owner(conn, spec.created_by, principal)
    start = expansion_start(spec.schedule, now)

    async def insert() -> dict[str, Any]:
        async with conn.transaction():
            await quotas.check_active_tasks(conn, owner, settings)
            return await tasks_store.insert_task(
                conn, document=spec.document(), created_by=owner, start=start
            )

    task, created = await create_task_once(
        conn,
        owner=owner,
        dedupe_key=spec.dedupe_key,
        dedupe_window_seconds=spec.dedupe_window_seconds,
        insert=insert,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return task


class TaskValidation(BaseModel):
    valid: bool
    problems: list[ErrorDetail] = Field(
        description="Every problem, each with its JSON path (empty when valid)."
    )


@router.post(
    "/validate",
    operation_id="tasks_validate",
    response_model=TaskValidation,
    summary="Validate a task document without saving it (scope tasks:read)",
    description="The same checks as `POST /tasks` (schedule, timezone, pipeline, templates, "
    "tools and their input schemas), answered as data: 200 `{valid, problems}`.",
    openapi_extra=json_body_openapi(ref("TaskCreate"), QUICK_START_TASK),
)
async def validate_task_document(
    request: Request,
    principal: TasksRead,
    conn: Conn,
    settings: AppSettings,
    catalog: AppCatalog,
) -> Any:
    try:
        document = await json_body(request)
    except ValidationFailed as exc:
        return {"valid": False, "problems": [p.as_dict() for p in exc.problems]}
    problems = task_problems(
        document,
        catalog,
        default_timezone=settings.default_timezone,
        now=now_utc(),
        owner_scopes=await owner_scopes(conn, document, principal),
    )
    return {"valid": not problems, "problems": [p.as_dict() for p in problems]}


@router.get(
    "",
    operation_id="tasks_list",
    response_model=None,
    responses={200: json_response("TaskPage", "One page of tasks, newest first.")},
    summary="List your tasks, newest first (scope tasks:read; admin: all)",
)
async def list_tasks(
    principal: TasksRead,
    conn: Conn,
    status_: Annotated[
        list[TaskStatus] | None,
        Query(alias="status", description="Any of these statuses (repeat the name)."),
    ] = None,
    schedule_kind: Annotated[
        list[ScheduleKind] | None, Query(description="Any of these kinds (repeat the name).")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Any:
    return await list_page(
        lambda n, after: tasks_store.list_tasks(
            conn,
            owner=principal.owner_filter,
            statuses=status_,
            schedule_kinds=schedule_kind,
            limit=n,
            after=after,
        ),
        limit=limit,
        cursor=cursor,
        key="created_at",
    )


@router.get(
    "/{task_id}",
    operation_id="tasks_get",
    response_model=None,
    summary="One task, including next_run_at (scope tasks:read)",
    responses={**TASK_ANSWER, **TASK_NOT_FOUND},
)
async def get_task(task_id: UUID, principal: TasksRead, conn: Conn) -> Any:
    return await operations.visible_task(conn, task_id, principal.owner_filter)


@router.post(
    "/{task_id}/run_now",
    operation_id="tasks_run_now",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Run,
    summary="Queue a run of the task now (scope tasks:write)",
    description="202 with the queued run. With `wait=N` (at most 60 seconds) the answer comes "
    "once the run has ended (`succeeded`, `dead` or `canceled`, with its outputs), or with "
    "the run as it is when the time runs out (check `status`; then `GET /runs/{id}?wait=N`).",
    responses={**TASK_NOT_FOUND, **error(409, "The task is canceled."), **QUOTA_EXCEEDED},
)
async def run_now(
    task_id: UUID,
    request: Request,
    principal: TasksWrite,
    conn: Conn,
    settings: AppSettings,
    wait: Wait = None,
) -> Any:
    run = await operations.run_now(conn, principal, task_id, settings=settings)
    return await wait_for_run(request, conn, run["id"], None, wait)
