"""The JSON Schemas of the MCP tools, derived from what the REST API declares.

A tool answers exactly what its REST call answers, so its output schema is that route's
response schema: the task document's components of :mod:`api.components` (derived from
:mod:`engine.document`) and the pydantic response models of the routers. Inputs reuse the
same declarations (the task document, the PATCH document, the schedule-preview and event
bodies). Every schema is self-contained: references point into its own ``$defs``, as MCP
clients resolve nothing outside the schema. At the end: the pieces the tools share (ids,
cursors, page sizes, waits, the task document and the answers).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from api.components import COMPONENTS
from api.schemas import Run

_COMPONENT_REF = "#/components/schemas/"
_DEFS_REF = "#/$defs/"


def component(name: str, **extra: Any) -> dict[str, Any]:
    """The OpenAPI component ``name`` with the components it references in ``$defs``."""
    schema = _rewrite(copy.deepcopy(COMPONENTS[name]))
    defs: dict[str, Any] = {}
    pending = _references(schema)
    while pending:
        ref = pending.pop()
        if ref not in defs:
            defs[ref] = _rewrite(copy.deepcopy(COMPONENTS[ref]))
            pending |= _references(defs[ref])
    if defs:
        schema["$defs"] = defs
    return {**schema, **extra}


def model(cls: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """A response model's schema as the API serialises it."""
    schema = cls.model_json_schema(mode="serialization", ref_template=_DEFS_REF + "{model}")
    return {**schema, **extra}


def page_of(item: dict[str, Any], what: str) -> dict[str, Any]:
    """A list answer ``{items, next_cursor}`` whose items follow ``item``."""
    item = copy.deepcopy(item)
    defs = item.pop("$defs", {})
    schema: dict[str, Any] = {
        "type": "object",
        "description": f"One page of {what}, newest first. `next_cursor` is null on the last "
        "page; otherwise pass it as `cursor` to get the next one.",
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["items", "next_cursor"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


def arguments(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """A tool's input schema: an object of ``properties``; the ``$defs`` of nested schemas
    are hoisted to the top, where their references point."""
    defs: dict[str, Any] = {}
    hoisted = {}
    for name, schema in properties.items():
        schema = copy.deepcopy(schema)
        defs.update(schema.pop("$defs", {}))
        hoisted[name] = schema
    schema = {
        "type": "object",
        "properties": hoisted,
        "required": list(required),
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _rewrite(node: Any) -> Any:
    """``node`` with OpenAPI component references turned into ``$defs`` references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT_REF):
            node["$ref"] = _DEFS_REF + ref.removeprefix(_COMPONENT_REF)
        for value in node.values():
            _rewrite(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value)
    return node


def _references(node: Any) -> set[str]:
    """The ``$defs`` names that ``node`` refers to."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_REF):
            found.add(ref.removeprefix(_DEFS_REF))
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node)) if node else set()
    return set()


# The pieces the tools' input and output schemas share.

MAX_WAIT_SECONDS = 60
DEFAULT_PAGE_SIZE = 20

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


TASK_DOCUMENT = component(
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
TASK_PATCH = component(
    "TaskPatch",
    description="Any subset of the task document's fields (not `created_by`); the result is "
    "validated as a whole, like a create. A new schedule_kind, schedule_expr or timezone "
    "restarts the schedule from now.",
)
TASK = component("Task")
TASK_PAGE = component("TaskPage")
RUN = model(Run)
