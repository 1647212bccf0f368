"""The one error tree of Ordinaut. Each boundary maps it once (the API to HTTP statuses).

::

    OrdinautError
    ├── ValidationFailed          bad input; carries every Problem (JSON path + reason)
    ├── NotFound                  no such object, or not visible to the caller
    ├── Conflict                  duplicate or state conflict
    ├── PermissionDenied          authenticated, but the scope is missing
    ├── Unauthenticated           no or bad credentials
    ├── RateLimited               too many requests; carries retry_after seconds
    ├── QuotaExceeded             an agent's quota refuses the request (names the quota)
    │   └── FanoutExceeded        an event matches more tasks than the event_fanout quota
    ├── StoreError                the database failed (translated from the driver by store/)
    │   ├── StoreUnavailable      cannot reach the database (retry later)
    │   ├── ValueRefused          PostgreSQL refused a value as data (retrying cannot help)
    │   └── ConstraintViolated    a unique, check or foreign-key constraint refused a write
    └── StepError                 a pipeline step failed; ``retryable`` says whether to retry
        ├── TemplateError         a ${...} expression could not be evaluated
        ├── ToolNotFound          the step names a tool that is not in the catalog
        ├── ToolInputInvalid      arguments violate the tool's input schema
        ├── ToolOutputInvalid     the result violates the tool's output schema
        ├── ToolFailed            the tool reported an error (4xx: not retryable; 5xx: retryable)
        ├── ToolForbidden         the task's owner lacks the scope the tool needs (not retryable)
        ├── StepTimeout           the step exceeded its timeout (retryable)
        └── CircuitOpen           the endpoint's circuit breaker is open (retryable)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.redaction import mask_passwords


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path such as ``$.payload.pipeline[0]``)
    and why."""

    path: str
    message: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "type": self.type}


class OrdinautError(Exception):
    """Base of every error Ordinaut raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(OrdinautError):
    code = "validation_error"

    def __init__(self, problems: list[Problem], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


class NotFound(OrdinautError):
    code = "not_found"


class Conflict(OrdinautError):
    code = "conflict"


class PermissionDenied(OrdinautError):
    code = "forbidden"


class Unauthenticated(OrdinautError):
    code = "unauthenticated"


class RateLimited(OrdinautError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(OrdinautError):
    """An agent's quota refuses the request (429: it may pass once work finishes or an admin
    raises the quota; never retried blindly). ``quota`` is its name (engine.quotas)."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, quota: str, limit: int) -> None:
        super().__init__(message)
        self.quota = quota
        self.limit = limit


class FanoutExceeded(QuotaExceeded):
    """An event matches more tasks than the publisher's ``event_fanout`` quota (422: the same
    event is refused again, whenever it is sent)."""


class StoreError(OrdinautError):
    code = "store_error"


class StoreUnavailable(StoreError):
    code = "store_unavailable"


class ValueRefused(StoreError):
    """A value the database cannot store (a NUL character, a number out of range): for
    whoever sent it, an invalid value like any other."""

    code = "validation_error"


class ConstraintViolated(StoreError):
    """A write broke a constraint; ``constraint`` names it (None when the server did not)."""

    code = "constraint_violated"

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class StepError(OrdinautError):
    """A step failed. ``type`` names the kind for the run's structured error."""

    code = "step_error"
    type = "step_failed"
    retryable = True

    def __init__(self, message: str, *, retryable: bool | None = None, details: Any = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        self.details = details


class TemplateError(StepError):
    type = "template_error"
    retryable = False


class ToolNotFound(StepError):
    type = "unknown_tool"
    retryable = False


class ToolInputInvalid(StepError):
    type = "invalid_input"
    retryable = False


class ToolOutputInvalid(StepError):
    type = "invalid_output"
    retryable = False


class ToolFailed(StepError):
    type = "tool_error"


class ToolForbidden(StepError):
    type = "forbidden"
    retryable = False


class StepTimeout(StepError):
    type = "timeout"
    retryable = True


class CircuitOpen(StepError):
    type = "circuit_open"
    retryable = True


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (driver and library errors add detail lines
    that do not belong in a one-line error), or its type's name when it has none; passwords
    masked (a driver may echo the connection string it could not parse)."""
    text = str(exc).strip()
    return mask_passwords(text.splitlines()[0]) if text else type(exc).__name__
