"""OpenAPI components written as JSON Schema, derived from the engine's declarations.

The task document is declared once, in :mod:`engine.document`; the request bodies
(``TaskCreate``, ``TaskPatch``), the pipeline step (``PipelineStep``), the payload
(``TaskPayload``) and the answer (``Task``, ``TaskPage``) are built from it here and reused
by reference wherever a route takes or returns a task; so are the document's enums
(``ScheduleKind``, ``BackoffStrategy``, ``CatchUp``) and ``TaskStatus``, which the list
filters use too. The agents' request bodies, small pydantic models read by
:func:`api.body.model_body`, are components too. :func:`api.openapi.build_openapi`
adds :data:`COMPONENTS` to the document.
"""

from __future__ import annotations

from typing import Any

from api.schemas import AgentCreate, AgentUpdate, WebhookSettings
from engine.document import (
    DOCUMENT_FIELDS,
    PATCH_SCHEMA,
    PAYLOAD_SCHEMA,
    STEP_SCHEMA,
    TASK_PROPERTIES,
    TASK_SCHEMA,
)

TASK_STATUSES = ("active", "paused", "canceled", "completed")
UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}
TIMESTAMP: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with an offset.",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(name: str, description: str) -> dict[str, Any]:
    """A route's ``responses`` entry answering the component ``name`` as JSON."""
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


TASK_ANSWER: dict[int | str, dict[str, Any]] = {
    200: json_response("Task", "The task as it is now.")
}


# The document's fields whose enum becomes a component of its own (one generated enum type
# instead of one per schema that mentions it).
ENUM_COMPONENTS = {
    "schedule_kind": "ScheduleKind",
    "backoff_strategy": "BackoffStrategy",
    "catch_up": "CatchUp",
}


def _with_refs(properties: dict[str, Any]) -> dict[str, Any]:
    """``properties`` with the payload and the enums of :data:`ENUM_COMPONENTS` as refs."""
    named = {field: ref(name) for field, name in ENUM_COMPONENTS.items() if field in properties}
    return {**properties, **named, "payload": ref("TaskPayload")}


def _with_payload_ref(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "properties": _with_refs(schema["properties"])}


_TASK_ANSWER_PROPERTIES: dict[str, Any] = {
    "id": UUID_SCHEMA,
    **_with_refs({name: TASK_PROPERTIES[name] for name in DOCUMENT_FIELDS}),
    "status": ref("TaskStatus"),
    "created_by": {**UUID_SCHEMA, "description": "The agent that owns the task."},
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "next_run_at": {
        "anyOf": [TIMESTAMP, {"type": "null"}],
        "description": "The next time the task runs (pending run or next occurrence), if any.",
    },
}

COMPONENTS: dict[str, dict[str, Any]] = {
    **{
        name: {"type": "string", **TASK_PROPERTIES[field]}
        for field, name in ENUM_COMPONENTS.items()
    },
    "TaskStatus": {"type": "string", "enum": list(TASK_STATUSES)},
    "AgentCreate": AgentCreate.model_json_schema(),
    "AgentUpdate": AgentUpdate.model_json_schema(),
    "WebhookSettings": WebhookSettings.model_json_schema(),
    "PipelineStep": STEP_SCHEMA,
    "TaskPayload": {
        **PAYLOAD_SCHEMA,
        "properties": {
            **PAYLOAD_SCHEMA["properties"],
            "pipeline": {**PAYLOAD_SCHEMA["properties"]["pipeline"], "items": ref("PipelineStep")},
        },
    },
    "TaskCreate": _with_payload_ref(TASK_SCHEMA),
    "TaskPatch": _with_payload_ref(PATCH_SCHEMA),
    "Task": {
        "type": "object",
        "properties": _TASK_ANSWER_PROPERTIES,
        "required": list(_TASK_ANSWER_PROPERTIES),
    },
    "TaskPage": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref("Task")},
            "next_cursor": {"type": ["string", "null"]},
        },
        "required": ["items", "next_cursor"],
    },
}
