"""The MCP tools: one declaration per tool, each a call of the REST API through the Python
client (:class:`ordinaut.AsyncClient`).

A tool declares its name, the scope it needs (None: any valid token), what it does to the
world (its MCP annotations), a description written for the model that calls it, its input
schema and its output schema — the REST route's answer, which the tool returns unchanged as
structured content. Validation, isolation, scopes, idempotency keys, the audit log and the
error texts are the REST API's, because every tool *is* a REST call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp.types import Tool, ToolAnnotations

from api.mcp import calls, schemas
from api.mcp.calls import Arguments, Call
from api.mcp.schemas import (
    CURSOR,
    IDEMPOTENCY_KEY,
    RUN,
    RUN_ID,
    TASK,
    TASK_DOCUMENT,
    TASK_ID,
    TASK_PAGE,
    TASK_PATCH,
    limit,
    wait_seconds,
)
from api.routers.events import EVENT_SCHEMA, EventPublished
from api.routers.schedules import PREVIEW_SCHEMA
from api.routers.task_lifecycle import Preview
from api.routers.tasks import TaskValidation
from api.routers.tools import ToolPage
from api.schemas import Agent, RunPage
from engine.catalog import schema_problems
from engine.errors import Problem

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
        call=calls.create_task,
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
        call=calls.validate_task,
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
        call=calls.list_tasks,
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
        call=calls.get_task,
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
        call=calls.update_task,
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
        call=calls.pause_task,
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
        call=calls.resume_task,
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
        call=calls.cancel_task,
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
        call=calls.run_task_now,
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
        call=calls.list_runs,
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
        call=calls.get_run,
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
        call=calls.wait_for_run,
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
        call=calls.cancel_run,
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
        call=calls.retry_run,
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
        call=calls.preview_schedule,
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
        call=calls.publish_event,
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
        call=calls.list_tools,
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
        call=calls.whoami,
    ),
)

BY_NAME: dict[str, OrdinautTool] = {tool.name: tool for tool in TOOLS}
