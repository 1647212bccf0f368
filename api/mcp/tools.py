"""The MCP tools: one declaration per tool, each a call of the REST API through the Python
client (:class:`ordinaut.AsyncClient`).

A tool declares its name, the scope it needs (None: any valid token), what it does to the
world (its MCP annotations), a description written for the model that calls it, its input
schema and its output schema — the REST route's answer, which the tool returns unchanged as
structured content. Validation, isolation, scopes, idempotency keys, the audit log and the
error texts are the REST API's, because every tool *is* a REST call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp.types import Tool, ToolAnnotations

from api.mcp import schemas
from api.routers.events import EVENT_SCHEMA, EventPublished
from api.routers.schedules import PREVIEW_SCHEMA
from api.routers.task_lifecycle import Preview
from api.routers.tasks import TaskValidation
from api.routers.tools import ToolPage
from api.schemas import Agent, Run, RunPage
from engine.catalog import schema_problems
from engine.errors import Problem
from ordinaut import AsyncClient, OrdinautError, WaitTimeout

log = logging.getLogger("ordinaut.api.mcp")

Arguments = Mapping[str, Any]
Call = Callable[[AsyncClient, Arguments], Awaitable[Mapping[str, Any]]]

MAX_WAIT_SECONDS = 60
DEFAULT_PAGE_SIZE = 20

# What a tool does to the world, as MCP annotations. ``openWorldHint``: the call may start
# pipeline runs, whose steps reach whatever their tools reach.
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
CREATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
START = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
SET_STATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
OVERWRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


@dataclass(frozen=True, kw_only=True)
class OrdinautTool:
    """One MCP tool: its declaration and the REST call it makes."""

    name: str
    title: str
    scope: str | None
    annotations: ToolAnnotations
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    call: Call
    # Arguments that are whole documents the REST API validates (so that every problem
    # carries the API's own path and text): only their type is checked here.
    documents: tuple[str, ...] = ()
    _checked_schema: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checked = dict(self.input_schema)
        checked["properties"] = {
            name: {"type": "object"} if name in self.documents else schema
            for name, schema in self.input_schema["properties"].items()
        }
        object.__setattr__(self, "_checked_schema", checked)

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)

    def listing(self) -> Tool:
        """The tool as ``tools/list`` shows it."""
        return Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            annotations=self.annotations,
        )

    def argument_problems(self, arguments: Arguments) -> list[Problem]:
        """How ``arguments`` violate the input schema (documents: only their type)."""
        return schema_problems(self._checked_schema, dict(arguments))


TASK_ID = {
    "type": "string",
    "format": "uuid",
    "description": "The task's `id` (from create_task or list_tasks).",
}
RUN_ID = {
    "type": "string",
    "format": "uuid",
    "description": "The run's `id` (from run_task_now, list_runs or publish_event).",
}
CURSOR = {
    "type": "string",
    "maxLength": 200,
    "description": "`next_cursor` of the previous page; omit for the first page.",
}
IDEMPOTENCY_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": r"^[\x21-\x7e]+$",
    "description": "Optional, makes the call safe to repeat: a repeat with the same key and "
    "the same arguments returns the first answer instead of acting again (keys last 24 h). "
    "Printable ASCII, e.g. a UUID you generate.",
}


def limit(what: str) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": DEFAULT_PAGE_SIZE,
        "description": f"How many {what} per page (1..500, default {DEFAULT_PAGE_SIZE}).",
    }


def wait_seconds(default: int) -> dict[str, Any]:
    return {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_WAIT_SECONDS,
        "default": default,
        "description": f"How long to wait for the run to end (0..{MAX_WAIT_SECONDS} seconds, "
        f"default {default}).",
    }


TASK_DOCUMENT = schemas.component(
    "TaskCreate",
    description="The task document: `title`, `schedule_kind` (once|cron|rrule|event), "
    "`schedule_expr`, optional `timezone` (IANA, e.g. Europe/Chisinau), and `payload` "
    "`{params?, pipeline}`: steps that run in order, each `{id, uses: <tool address from "
    "list_tools>, with: {arguments}, save_as?, if?, timeout_seconds?, max_retries?, on_error?}`. "
    "Strings in `with` may hold `${...}` JMESPath templates over `params`, `steps.<save_as>`, "
    "`event`, `run` and `now`. Optional: priority (1..9, 1 first), max_retries, "
    "backoff_strategy, timeout_seconds, concurrency_key, dedupe_key, dedupe_window_seconds, "
    "catch_up (latest|all|none).",
    examples=[
        {
            "title": "Hello every weekday at 08:30",
            "schedule_kind": "cron",
            "schedule_expr": "30 8 * * mon-fri",
            "timezone": "Europe/Chisinau",
            "payload": {
                "params": {"city": "Chisinau"},
                "pipeline": [
                    {
                        "id": "greet",
                        "uses": "debug.echo",
                        "with": {"message": "Hello ${params.city}"},
                        "save_as": "greeting",
                    }
                ],
            },
        }
    ],
)
TASK_PATCH = schemas.component(
    "TaskPatch",
    description="Any subset of the task document's fields (not `created_by`); the result is "
    "validated as a whole, like a create. A new schedule_kind, schedule_expr or timezone "
    "restarts the schedule from now.",
)
TASK = schemas.component("Task")
TASK_PAGE = schemas.component("TaskPage")
RUN = schemas.model(Run)


def _raw(result: Any) -> Mapping[str, Any]:
    raw: Mapping[str, Any] = result.raw
    return raw


async def create_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(
        await client.tasks.create(args["task"], idempotency_key=args.get("idempotency_key"))
    )


async def validate_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.validate(args["task"]))


async def list_tasks(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.tasks.page(
        status=args.get("status"),
        schedule_kind=args.get("schedule_kind"),
        limit=args.get("limit", DEFAULT_PAGE_SIZE),
        cursor=args.get("cursor"),
    )
    return _raw(page)


async def get_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.get(args["task_id"]))


async def update_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.update(args["task_id"], args["patch"]))


async def pause_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.pause(args["task_id"]))


async def resume_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.resume(args["task_id"]))


async def cancel_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.cancel(args["task_id"]))


async def run_task_now(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    """Queue the run, then wait for it in a separate call: once queued, the run exists, and
    a failure while waiting (the token may lack ``runs:read``) must not hide it."""
    run = await client.tasks.run_now(args["task_id"])
    wait = float(args.get("wait_seconds", 0))
    if wait <= 0:
        return _raw(run)
    return _raw(await _wait(client, run, wait))


async def wait_for_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    run = await client.runs.get(args["run_id"])
    return _raw(await _wait(client, run, float(args.get("timeout_seconds", 30))))


async def _wait(client: AsyncClient, run: Any, seconds: float) -> Any:
    """``run`` once final, or its latest state when ``seconds`` pass (or waiting fails)."""
    if run.is_final or seconds <= 0:
        return run
    try:
        return await client.runs.wait(run.id, timeout=seconds)
    except WaitTimeout as timeout:
        return timeout.run
    except OrdinautError as exc:
        log.info("waiting for run %s stopped: %s", run.id, exc)
        return run


async def list_runs(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.runs.page(
        task_id=args.get("task_id"),
        status=args.get("status"),
        since=args.get("since"),
        until=args.get("until"),
        limit=args.get("limit", DEFAULT_PAGE_SIZE),
        cursor=args.get("cursor"),
    )
    return _raw(page)


async def get_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.get(args["run_id"]))


async def cancel_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.cancel(args["run_id"]))


async def retry_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.retry(args["run_id"]))


async def preview_schedule(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    preview = await client.schedules.preview(
        args["schedule_kind"],
        args["schedule_expr"],
        timezone=args.get("timezone"),
        count=args.get("count", 10),
        after=args.get("after"),
    )
    return _raw(preview)


async def publish_event(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    published = await client.events.publish(
        args["topic"], args.get("payload"), idempotency_key=args.get("idempotency_key")
    )
    return _raw(published)


async def list_tools(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.tools.page(
        limit=args.get("limit", DEFAULT_PAGE_SIZE), cursor=args.get("cursor")
    )
    return _raw(page)


async def whoami(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.agents.me())


TOOLS: tuple[OrdinautTool, ...] = (
    OrdinautTool(
        name="create_task",
        title="Create a task",
        scope="tasks:write",
        annotations=CREATE,
        description="Create a scheduled task: a schedule plus a pipeline of tool calls that "
        "Ordinaut runs at every occurrence (a `once` task whose time has passed runs at once). "
        "Use validate_task first when unsure, and list_tools for the tool addresses a pipeline "
        "may use. Returns the stored task (with `id`, `status` and `next_run_at`). A document "
        "with problems creates nothing and fails with every problem listed by its JSON path "
        "(`$` is the task document): fix them all and call again. A `dedupe_key` already used "
        "by you returns the existing task instead of a new one.",
        input_schema=schemas.arguments(
            {"task": TASK_DOCUMENT, "idempotency_key": IDEMPOTENCY_KEY}, "task"
        ),
        output_schema=TASK,
        call=create_task,
        documents=("task",),
    ),
    OrdinautTool(
        name="validate_task",
        title="Validate a task document",
        scope="tasks:read",
        annotations=READ,
        description="Check a task document without saving anything: the schedule, time zone, "
        "pipeline, templates, tool addresses and literal tool arguments. Returns `{valid, "
        "problems}`; each problem has `path` (JSON path, `$` is the task document), "
        "`message` and `type`. Use it before create_task or update_task.",
        input_schema=schemas.arguments({"task": TASK_DOCUMENT}, "task"),
        output_schema=schemas.model(TaskValidation),
        call=validate_task,
        documents=("task",),
    ),
    OrdinautTool(
        name="list_tasks",
        title="List tasks",
        scope="tasks:read",
        annotations=READ,
        description="List your tasks, newest first (an admin token sees every agent's), "
        "optionally only those with one `status` or `schedule_kind`. Returns `{items, "
        "next_cursor}`; when next_cursor is not null, call again with it as `cursor` for the "
        "next page.",
        input_schema=schemas.arguments(
            {
                "status": {"enum": ["active", "paused", "canceled", "completed"]},
                "schedule_kind": {"enum": ["once", "cron", "rrule", "event"]},
                "limit": limit("tasks"),
                "cursor": CURSOR,
            }
        ),
        output_schema=TASK_PAGE,
        call=list_tasks,
    ),
    OrdinautTool(
        name="get_task",
        title="Get a task",
        scope="tasks:read",
        annotations=READ,
        description="One task by id: its document, `status` (active, paused, canceled, "
        "completed) and `next_run_at` (null when nothing is scheduled). Another agent's task "
        "is reported as not found.",
        input_schema=schemas.arguments({"task_id": TASK_ID}, "task_id"),
        output_schema=TASK,
        call=get_task,
    ),
    OrdinautTool(
        name="update_task",
        title="Update a task",
        scope="tasks:write",
        annotations=OVERWRITE,
        description="Change some fields of an active or paused task; the fields given replace "
        "the stored ones and the whole task is validated again (problems are listed by JSON "
        "path, `$` is the task document). A schedule change applies to occurrences no worker "
        "has started yet. Returns the updated task. Canceled and completed tasks cannot change.",
        input_schema=schemas.arguments(
            {"task_id": TASK_ID, "patch": TASK_PATCH}, "task_id", "patch"
        ),
        output_schema=TASK,
        call=update_task,
        documents=("patch",),
    ),
    OrdinautTool(
        name="pause_task",
        title="Pause a task",
        scope="tasks:write",
        annotations=SET_STATE,
        description="Pause an active task: no new occurrences, waiting scheduled runs are "
        "removed, running ones finish. Repeating it changes nothing. Returns the task.",
        input_schema=schemas.arguments({"task_id": TASK_ID}, "task_id"),
        output_schema=TASK,
        call=pause_task,
    ),
    OrdinautTool(
        name="resume_task",
        title="Resume a task",
        scope="tasks:write",
        annotations=SET_STATE,
        description="Resume a paused task from now on (occurrences that fell into the pause "
        "are skipped). Repeating it changes nothing. Returns the task.",
        input_schema=schemas.arguments({"task_id": TASK_ID}, "task_id"),
        output_schema=TASK,
        call=resume_task,
    ),
    OrdinautTool(
        name="cancel_task",
        title="Cancel a task",
        scope="tasks:write",
        annotations=OVERWRITE,
        description="Cancel a task for good: it never runs again and its waiting runs are "
        "removed (running ones finish). This cannot be undone; use pause_task to stop it for "
        "a while. Returns the task with status `canceled`.",
        input_schema=schemas.arguments({"task_id": TASK_ID}, "task_id"),
        output_schema=TASK,
        call=cancel_task,
    ),
    OrdinautTool(
        name="run_task_now",
        title="Run a task now",
        scope="tasks:write",
        annotations=START,
        description="Queue one run of a task immediately, outside its schedule (handy to test "
        "a new task). With `wait_seconds` > 0 it waits up to that long (at most 60) and "
        "returns the finished run with each step's output and error; if the run is still "
        "queued or running then, it returns the run as it is (check `status`; call "
        "wait_for_run to keep waiting). Final statuses: succeeded, dead, canceled. Waiting "
        "needs the runs:read scope; without it the queued run is returned at once.",
        input_schema=schemas.arguments(
            {"task_id": TASK_ID, "wait_seconds": wait_seconds(0)}, "task_id"
        ),
        output_schema=RUN,
        call=run_task_now,
    ),
    OrdinautTool(
        name="list_runs",
        title="List runs",
        scope="runs:read",
        annotations=READ,
        description="List the runs of your tasks, newest first, optionally for one task, one "
        "status (queued, running, failed = waiting for a retry, succeeded, dead, canceled) "
        "or a time range of when they were queued. Returns `{items, next_cursor}`; pass "
        "next_cursor as `cursor` for the next page.",
        input_schema=schemas.arguments(
            {
                "task_id": TASK_ID,
                "status": {
                    "enum": ["queued", "running", "failed", "succeeded", "dead", "canceled"]
                },
                "since": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Queued at or after (ISO 8601 with offset).",
                },
                "until": {
                    "type": "string",
                    "format": "date-time",
                    "description": "Queued before (ISO 8601 with offset).",
                },
                "limit": limit("runs"),
                "cursor": CURSOR,
            }
        ),
        output_schema=schemas.model(RunPage),
        call=list_runs,
    ),
    OrdinautTool(
        name="get_run",
        title="Get a run",
        scope="runs:read",
        annotations=READ,
        description="One run: `status`, `trigger`, `attempt`, timings, each step's `status`, "
        "`output` and `error`, and the run's `error` (`step_id`, `type`, `message`, "
        "`retryable`) when it failed.",
        input_schema=schemas.arguments({"run_id": RUN_ID}, "run_id"),
        output_schema=RUN,
        call=get_run,
    ),
    OrdinautTool(
        name="wait_for_run",
        title="Wait for a run to end",
        scope="runs:read",
        annotations=READ,
        description="Wait up to `timeout_seconds` (at most 60) for a run to end (succeeded, "
        "dead or canceled) and return it with its step outputs. If it has not ended by then, "
        "returns its current state (status queued, running or failed); call again to keep "
        "waiting.",
        input_schema=schemas.arguments(
            {"run_id": RUN_ID, "timeout_seconds": wait_seconds(30)}, "run_id"
        ),
        output_schema=RUN,
        call=wait_for_run,
    ),
    OrdinautTool(
        name="cancel_run",
        title="Cancel a run",
        scope="runs:write",
        annotations=OVERWRITE,
        description="Cancel a queued, waiting or running run (a running one is stopped by its "
        "worker; until then the answer shows `cancel_requested: true`). A finished run cannot "
        "be canceled. Returns the run.",
        input_schema=schemas.arguments({"run_id": RUN_ID}, "run_id"),
        output_schema=RUN,
        call=cancel_run,
    ),
    OrdinautTool(
        name="retry_run",
        title="Retry a run",
        scope="runs:write",
        annotations=START,
        description="Retry a run that failed: a `failed` run (waiting for its automatic retry) "
        "becomes ready now; a `dead` run is queued again as a new run (trigger `retry`, "
        "`retry_of` = the dead run), which is returned.",
        input_schema=schemas.arguments({"run_id": RUN_ID}, "run_id"),
        output_schema=RUN,
        call=retry_run,
    ),
    OrdinautTool(
        name="preview_schedule",
        title="Preview a schedule",
        scope="tasks:read",
        annotations=READ,
        description="The next `count` times a schedule would fire, without saving anything: "
        "check a cron expression, RRULE or `once` time before creating a task. Returns "
        "`{occurrences}` as ISO 8601 instants with the zone's offset (empty when the schedule "
        "never fires again, and for event topics).",
        input_schema=PREVIEW_SCHEMA,
        output_schema=schemas.model(Preview),
        call=preview_schedule,
    ),
    OrdinautTool(
        name="publish_event",
        title="Publish an event",
        scope="events:publish",
        annotations=START,
        description="Publish an event topic: every active task of yours whose schedule_kind is "
        "`event` and whose pattern matches the topic (`*` matches one dot-separated segment) "
        "gets a run; its pipeline reads the payload as `${event.payload...}`. Returns "
        "`{event_id, runs: [{task_id, run_id}]}` (empty when no task matches).",
        input_schema=schemas.arguments(
            {**EVENT_SCHEMA["properties"], "idempotency_key": IDEMPOTENCY_KEY}, "topic"
        ),
        output_schema=schemas.model(EventPublished),
        call=publish_event,
    ),
    OrdinautTool(
        name="list_tools",
        title="List pipeline tools",
        scope="tools:read",
        annotations=READ,
        description="The tools a task's pipeline steps can call (`uses`), by address, with "
        "each one's description and the JSON Schemas of its arguments (`with`) and output. "
        "Returns `{items, next_cursor}`; pass next_cursor as `cursor` for the next page.",
        input_schema=schemas.arguments({"limit": limit("tools"), "cursor": CURSOR}),
        output_schema=schemas.model(ToolPage),
        call=list_tools,
    ),
    OrdinautTool(
        name="whoami",
        title="Who am I",
        scope=None,
        annotations=READ,
        description="The agent this token belongs to: its `id`, `name` and `scopes` (what it "
        "may do: tasks:read, tasks:write, runs:read, runs:write, events:publish, tools:read; "
        "admin implies all).",
        input_schema=schemas.arguments({}),
        output_schema=schemas.model(Agent),
        call=whoami,
    ),
)

BY_NAME: dict[str, OrdinautTool] = {tool.name: tool for tool in TOOLS}
