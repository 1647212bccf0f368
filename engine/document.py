"""The task document, declared once.

:class:`TaskSpec` is the declaration: each field of the document with its Python type, its
default and (in its metadata) its JSON Schema. Everything else is derived from it — the
JSON Schemas a create (:data:`TASK_SCHEMA`) and a PATCH (:data:`PATCH_SCHEMA`) are checked
against, the defaults, the fields a task stores (:data:`DOCUMENT_FIELDS`) and the OpenAPI
components of the API. A pipeline step is parsed once, at validation (or when a worker first
sees a task's payload), into a frozen :class:`Step` that the executor reads by attribute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from engine.schedules import SCHEDULE_KINDS, Schedule
from engine.templates import strip_wrapper

BACKOFF_STRATEGIES = ("exponential_jitter", "exponential", "linear", "fixed")
CATCH_UP_POLICIES = ("latest", "all", "none")
ON_ERROR = ("fail", "continue")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": NAME_PATTERN},
        "uses": {"type": "string", "minLength": 1, "maxLength": 200},
        "with": {"type": "object"},
        "save_as": {"type": "string", "pattern": NAME_PATTERN},
        "if": {"type": "string", "minLength": 1, "maxLength": 2000},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 20},
        "on_error": {"enum": list(ON_ERROR)},
    },
    "required": ["id", "uses"],
    "additionalProperties": False,
}

PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "params": {"type": "object"},
        "pipeline": {"type": "array", "items": STEP_SCHEMA, "minItems": 1, "maxItems": 100},
    },
    "required": ["pipeline"],
    "additionalProperties": False,
}


# An http(s) URL without spaces: where completion webhooks are POSTed (the task's, or an
# agent's). Whether its host may be reached is decided when a delivery is sent.
WEBHOOK_URL_SCHEMA: dict[str, Any] = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 2000,
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s][^\s]*$",
    "description": "Completion webhooks of this task's runs go here (default: the owner "
    "agent's `webhook_url`); null: the owner's.",
}


def _document_field(
    default: Any = MISSING, *, schema: dict[str, Any], required: bool = False
) -> Any:
    """A field of the task document: ``schema`` validates it; ``required`` fields must be
    in a create (``timezone`` has no default here but one from the settings)."""
    return field(default=default, metadata={"schema": schema, "required": required})


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """A validated task document with every default filled in."""

    title: str = _document_field(
        schema={"type": "string", "minLength": 1, "maxLength": 200}, required=True
    )
    description: str | None = _document_field(
        None, schema={"type": ["string", "null"], "maxLength": 10000}
    )
    schedule_kind: str = _document_field(schema={"enum": list(SCHEDULE_KINDS)}, required=True)
    schedule_expr: str = _document_field(
        schema={"type": "string", "minLength": 1, "maxLength": 10000}, required=True
    )
    timezone: str = _document_field(schema={"type": "string", "minLength": 1, "maxLength": 64})
    payload: dict[str, Any] = _document_field(  # noqa: RUF009 - a field(), not a shared default
        schema=PAYLOAD_SCHEMA, required=True
    )
    priority: int = _document_field(5, schema={"type": "integer", "minimum": 1, "maximum": 9})
    max_retries: int = _document_field(3, schema={"type": "integer", "minimum": 0, "maximum": 100})
    backoff_strategy: str = _document_field(
        "exponential_jitter", schema={"enum": list(BACKOFF_STRATEGIES)}
    )
    timeout_seconds: int = _document_field(
        300, schema={"type": "integer", "minimum": 1, "maximum": 86400}
    )
    concurrency_key: str | None = _document_field(
        None, schema={"type": ["string", "null"], "minLength": 1, "maxLength": 200}
    )
    dedupe_key: str | None = _document_field(
        None, schema={"type": ["string", "null"], "minLength": 1, "maxLength": 200}
    )
    dedupe_window_seconds: int = _document_field(
        0, schema={"type": "integer", "minimum": 0, "maximum": 31536000}
    )
    catch_up: str = _document_field("latest", schema={"enum": list(CATCH_UP_POLICIES)})
    # Where this task's completion webhooks go instead of its owner's ``webhook_url``.
    webhook_url: str | None = _document_field(None, schema=WEBHOOK_URL_SCHEMA)
    # Who owns the task: a create may name it (admins only); never stored as sent, never
    # changed by a PATCH.
    created_by: str | None = _document_field(
        None, schema={"type": ["string", "null"], "format": "uuid"}
    )
    # Parsed forms, not part of the document.
    schedule: Schedule | None = field(default=None, compare=False, repr=False)
    steps: tuple[Step, ...] = field(default=(), compare=False, repr=False)

    def document(self) -> dict[str, Any]:
        """The client-facing fields, as stored."""
        return {name: getattr(self, name) for name in DOCUMENT_FIELDS}


_DECLARED = [f for f in fields(TaskSpec) if "schema" in f.metadata]

TASK_PROPERTIES: dict[str, Any] = {f.name: f.metadata["schema"] for f in _DECLARED}
TASK_REQUIRED: tuple[str, ...] = tuple(f.name for f in _DECLARED if f.metadata["required"])
# What a task stores and answers: every declared field but the owner (answered separately).
DOCUMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in _DECLARED if f.name != "created_by")
SCHEDULE_FIELDS = ("schedule_kind", "schedule_expr", "timezone")
DEFAULTS: dict[str, Any] = {f.name: f.default for f in _DECLARED if f.default is not MISSING}

TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": TASK_PROPERTIES,
    "required": list(TASK_REQUIRED),
    "additionalProperties": False,
}

# The fields a PATCH may carry (any subset; ``created_by`` cannot change).
PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: TASK_PROPERTIES[name] for name in DOCUMENT_FIELDS},
    "additionalProperties": False,
    "minProperties": 1,
}


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of a pipeline (the document's ``with`` is :attr:`arguments`, its ``if`` the
    :attr:`condition` without a ``${...}`` wrapper)."""

    id: str
    uses: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    save_as: str | None = None
    condition: str | None = None
    timeout_seconds: float | None = None
    max_retries: int = 0
    on_error: str = "fail"

    @classmethod
    def parse(cls, step: Mapping[str, Any]) -> Step:
        """A step from its (schema-valid) document form."""
        condition = step.get("if")
        timeout = step.get("timeout_seconds")
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            # Validation refuses these first; a step can never carry a non-finite deadline.
            raise ValueError(f"step {step['id']!r}: timeout_seconds must be a finite number > 0")
        return cls(
            id=step["id"],
            uses=step["uses"],
            arguments=step.get("with", {}),
            save_as=step.get("save_as"),
            condition=strip_wrapper(condition) if condition is not None else None,
            timeout_seconds=float(timeout) if timeout is not None else None,
            max_retries=int(step.get("max_retries", 0)),
            on_error=step.get("on_error", "fail"),
        )


def parse_pipeline(pipeline: Sequence[Mapping[str, Any]]) -> tuple[Step, ...]:
    """A schema-valid ``payload.pipeline`` as steps."""
    return tuple(Step.parse(step) for step in pipeline)


@dataclass(frozen=True, kw_only=True)
class Payload:
    """A task's payload as a worker runs it: its parameters and parsed steps."""

    params: Mapping[str, Any]
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> Payload:
        return cls(params=payload.get("params", {}), steps=parse_pipeline(payload["pipeline"]))
