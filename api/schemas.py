"""Response schemas (what the API answers) and small request schemas.

Task documents are validated by the engine against :data:`engine.validation.TASK_SCHEMA`
(the OpenAPI request body of ``POST /tasks`` is that same schema), so the schemas here
describe answers; store rows are converted with ``model_validate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# ISO 8601 with an explicit offset (``+00:00`` rather than ``Z``).
Timestamp = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str)]


class ErrorDetail(BaseModel):
    path: str = Field(description="JSON path of the offending value, e.g. `$.schedule_expr`.")
    message: str
    type: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: list[ErrorDetail] = []
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


class Task(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    description: str | None
    schedule_kind: Literal["once", "cron", "rrule", "event"]
    schedule_expr: str
    timezone: str
    payload: dict[str, Any]
    priority: int
    max_retries: int
    backoff_strategy: str
    timeout_seconds: int
    concurrency_key: str | None
    dedupe_key: str | None
    dedupe_window_seconds: int
    catch_up: Literal["latest", "all", "none"]
    status: Literal["active", "paused", "canceled", "completed"]
    created_by: UUID
    created_at: Timestamp
    updated_at: Timestamp
    next_run_at: Timestamp | None = Field(
        description="The next time the task runs (pending run or next occurrence), if any."
    )


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None


class StepResult(BaseModel):
    id: str
    uses: str
    status: Literal["succeeded", "failed", "skipped"]
    started_at: str | None = None
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
    status: Literal["queued", "running", "failed", "succeeded", "dead", "canceled"]
    trigger: Literal["schedule", "manual", "event", "retry"]
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


class Agent(BaseModel):
    id: UUID
    name: str
    scopes: list[str]
    created_at: Timestamp
    updated_at: Timestamp
