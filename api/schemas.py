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

from engine.document import WEBHOOK_URL_SCHEMA
from engine.quotas import MAX_QUOTA

# An http(s) URL without spaces (engine.document declares the same for tasks).
WEBHOOK_URL_PATTERN = WEBHOOK_URL_SCHEMA["pattern"]

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


class StepTry(BaseModel):
    """A try of a step that failed and was tried again."""

    try_: int = Field(alias="try", description="1 for the first try.")
    started_at: TimestampText | None
    duration_ms: int | None
    error: dict[str, Any] | None
    backoff_ms: int = Field(description="The pause after this try, before the next.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SkipReason(BaseModel):
    if_: str = Field(alias="if", description="The step's condition (JMESPath).")
    value: Any = Field(description="What it gave (falsy); large values are shortened.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class StepResult(BaseModel):
    """A step; ``started_at``, ``duration_ms``, ``attempt``, ``output`` and ``error`` are its
    last try's."""

    id: str
    uses: str
    status: Literal["succeeded", "failed", "skipped"]
    started_at: TimestampText | None = None
    duration_ms: int | None = None
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    tries: list[StepTry] = Field(
        default=[], description="The failed tries before the last one, oldest first."
    )
    skip_reason: SkipReason | None = Field(
        default=None, description="Why a skipped step did not run: its `if` and the value."
    )


class RunError(BaseModel):
    step_id: str | None
    type: str
    message: str
    retryable: bool


class RunAttempt(BaseModel):
    """An attempt of the run that failed and after which the run was to be retried."""

    number: int
    worker_id: str | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None = Field(description="Null when the worker vanished (lease expired).")
    error: RunError | None


class RunTiming(BaseModel):
    """Where an ended run's time went, from `scheduled_for` to `finished_at`. The parts add
    up to `total_ms`."""

    total_ms: int
    queue_ms: int = Field(description="Until the first attempt started (waiting for a worker).")
    earlier_attempts_ms: int = Field(
        description="The failed attempts before the last one and the waits between them."
    )
    steps_ms: int = Field(description="The last attempt's steps, every try of each.")
    step_backoff_ms: int = Field(description="Pauses between a step's tries.")
    overhead_ms: int = Field(
        description="The rest of the last attempt: templates, validation, the worker."
    )
    completion_ms: int = Field(description="Handing the run to its worker and writing its outcome.")


class WebhookDelivery(BaseModel):
    """A completion webhook: its id is the `webhook-id` header of every try."""

    id: UUID
    run_id: UUID
    task_id: UUID
    url: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="`pending` (not sent yet, or waiting for its next try), `delivered` (a 2xx "
        "answer), `failed` (given up 24 hours after the run ended)."
    )
    attempts: int = Field(description="Tries so far.")
    next_attempt_at: Timestamp | None = Field(description="When a pending delivery is tried.")
    last_attempt_at: Timestamp | None
    last_status: int | None = Field(description="HTTP status of the last answer, if any.")
    last_error: str | None
    delivered_at: Timestamp | None
    created_at: Timestamp


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None


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
    attempts: list[RunAttempt] = Field(
        default=[],
        description="Every attempt that failed and after which the run was to be retried, "
        "oldest first. The run's own fields describe its last attempt.",
    )
    timing: RunTiming | None = Field(
        default=None, description="Where the time went, once the run has ended."
    )
    webhook_deliveries: list[WebhookDelivery] = Field(
        default=[], description="The run's completion webhooks (once it has ended)."
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
    webhook_url: str | None = Field(
        default=None, description="Where the completion webhooks of the agent's runs go."
    )
    webhook_secret_created_at: Timestamp | None = Field(
        default=None,
        description="When the signing secret was made (null: none yet). The secret itself "
        "is shown only once, when it is made.",
    )
    quotas: AgentQuotas = Field(description="The quotas that apply (see the README).")
    quota_overrides: AgentQuotaOverrides = Field(
        description="The agent's own quotas, set by an admin (null: the default applies)."
    )


class AgentQuotas(BaseModel):
    """The quotas that apply to an agent (its own, else the defaults from settings)."""

    active_tasks: int = Field(description="Active or paused tasks at once (else 429 on create).")
    queued_runs: int = Field(
        description="Runs waiting in the queue (else 429 on run_now and the retry of a dead "
        "run; scheduled and event runs are never refused)."
    )
    concurrent_runs: int = Field(
        description="Runs running at once (the lease gives the agent no more; soft under "
        "simultaneous leases)."
    )
    event_fanout: int = Field(description="Tasks one event may start (else 422, nothing queued).")


class AgentQuotaOverrides(BaseModel):
    """An agent's own quotas; null: the default from settings applies."""

    active_tasks: int | None
    queued_runs: int | None
    concurrent_runs: int | None
    event_fanout: int | None


_QUOTA_VALUE = Field(default=None, gt=0, le=MAX_QUOTA)


class AgentQuotaUpdate(BaseModel):
    """Quotas to set (a positive number) or reset to the default (null); absent ones stay."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # "10" or 1.5 is no quota
        json_schema_extra={"examples": [{"active_tasks": 50, "queued_runs": None}]},
    )

    active_tasks: int | None = _QUOTA_VALUE
    queued_runs: int | None = _QUOTA_VALUE
    concurrent_runs: int | None = _QUOTA_VALUE
    event_fanout: int | None = _QUOTA_VALUE


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
    webhook_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern=WEBHOOK_URL_PATTERN,
        description="Where the agent's completion webhooks go; null stops them.",
    )
    quotas: AgentQuotaUpdate | None = Field(
        default=None,
        description="Quotas to set, or to reset to the default with null; others stay.",
    )


class WebhookSettings(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"webhook_url": "https://hooks.example.com/ordinaut"}]},
    )

    webhook_url: str | None = Field(
        min_length=1,
        max_length=2000,
        pattern=WEBHOOK_URL_PATTERN,
        description="Where completion webhooks go (a task's `webhook_url` overrides it); "
        "null stops them.",
    )


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="The signing secret, `whsec_` + base64 of its key. Shown this once.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    created_at: Timestamp
    agent_id: UUID = Field(description="The agent whose deliveries it signs.")
    previous_valid_until: Timestamp | None = Field(
        default=None,
        description="With `keep_previous=true`: until when the previous secret signs every "
        "delivery too (a second signature in `webhook-signature`); otherwise null.",
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
