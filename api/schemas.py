"""Response schemas (what the API answers) and small request schemas, as pydantic models.

The task document and the task answer are not here: they are derived from the engine's
declaration (:mod:`engine.document`) as JSON Schema components (:mod:`api.components`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

_DATE_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset."}

# ISO 8601 with an explicit offset (``+00:00`` rather than ``Z``). The serializer alone would
# publish a bare string; the schema says what it is, so clients parse a datetime.
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda d: d.isoformat(), return_type=str),
    WithJsonSchema(_DATE_TIME),
]
# A timestamp kept as the text the worker wrote (step results are stored as JSON).
TimestampText = Annotated[str, WithJsonSchema(_DATE_TIME)]


class TaskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"


class ScheduleKind(StrEnum):
    ONCE = "once"
    CRON = "cron"
    RRULE = "rrule"
    EVENT = "event"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELED = "canceled"


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    EVENT = "event"
    RETRY = "retry"


class ErrorDetail(BaseModel):
    path: str = Field(description="JSON path of the offending value, e.g. `$.schedule_expr`.")
    message: str
    type: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[ErrorDetail] = Field(description="Every problem (empty when none apply).")
    request_id: str | None = Field(description="The request's id (also `X-Request-ID`).")


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


class StepResult(BaseModel):
    id: str
    uses: str
    status: Literal["succeeded", "failed", "skipped"]
    started_at: TimestampText | None = None
    duration_ms: int | None = None
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None


class RunError(BaseModel):
    step_id: str | None
    type: str
    message: str
    retryable: bool


class Run(BaseModel):
    id: UUID
    task_id: UUID
    status: RunStatus
    trigger: RunTrigger
    scheduled_for: Timestamp
    queued_at: Timestamp
    attempt: int
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    worker_id: str | None
    steps: list[StepResult]
    error: RunError | None
    event: Any = None
    retry_of: UUID | None = None
    next_attempt_at: Timestamp | None = Field(
        default=None, description="When a queued or failed run becomes ready to start."
    )
    cancel_requested: bool = Field(
        default=False, description="A cancel was requested; the worker stops the run."
    )


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None


class Scope(StrEnum):
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    RUNS_READ = "runs:read"
    RUNS_WRITE = "runs:write"
    EVENTS_PUBLISH = "events:publish"
    TOOLS_READ = "tools:read"
    ADMIN = "admin"


# A name people can read in listings and logs: no control characters, no blank ends.
AGENT_NAME_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"


class Agent(BaseModel):
    id: UUID
    name: str = Field(examples=["weather-bot"])
    scopes: list[Scope] = Field(examples=[["tasks:read", "tasks:write", "runs:read"]])
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None = Field(
        default=None, description="Set once the agent is deleted (its tokens stop working)."
    )


class AgentToken(BaseModel):
    """A token as listings show it: never the token itself, nor its hash."""

    id: UUID
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="Refreshed at most once a minute.")
    revoked_at: Timestamp | None


class AgentDetail(Agent):
    tokens: list[AgentToken]


class AgentWithToken(Agent):
    token: str = Field(
        description="The new token. Shown this once: only its SHA-256 is stored.",
        examples=["ord_Xq3v0Hk2c9Q2mJ8Zt1Jb0bW0yYl7a8sY0bQ0dGk9Zk4"],
    )


class AgentPage(BaseModel):
    items: list[Agent]
    next_cursor: str | None


class AgentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "weather-bot", "scopes": ["tasks:read", "tasks:write", "runs:read"]}
            ]
        },
    )

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=AGENT_NAME_PATTERN,
        description="Unique among live agents.",
    )
    scopes: list[Scope] = Field(default=[], max_length=20)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"scopes": ["tasks:read", "runs:read"]}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=AGENT_NAME_PATTERN)
    scopes: list[Scope] | None = Field(
        default=None, max_length=20, description="Replaces the agent's scopes."
    )


class AuditEntry(BaseModel):
    id: int
    at: Timestamp
    actor_id: UUID | None = Field(description="The agent that made the call.")
    actor_name: str | None
    action: str = Field(
        description="What was done: `<resource>.<verb>` (`tasks.create`, `tasks.update`, "
        "`tasks.delete`, `tasks.pause`, `runs.cancel`, `agents.tokens.create` ...).",
        examples=["tasks.create"],
    )
    subject_type: str | None = Field(examples=["task"])
    subject_id: str | None
    details: dict[str, Any] = Field(
        description="`method`, `route` (template), `status`, `body` (the request body with "
        "secret-looking keys redacted and long values shortened), `query`, and `result_id` "
        "(the id of what the call created when it differs from the subject)."
    )
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None
