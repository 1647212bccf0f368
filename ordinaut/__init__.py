"""Ordinaut's Python client: ``Client`` (blocking) and ``AsyncClient`` over the REST API.

::

    from ordinaut import Client

    with Client() as client:  # ORDINAUT_URL, ORDINAUT_TOKEN
        task = client.tasks.create(document)
        run = client.tasks.run_now(task.id, wait=30)

Namespaces: ``tasks``, ``runs``, ``events``, ``schedules``, ``tools``, ``agents``,
``workers``. Results
are the frozen dataclasses of :mod:`ordinaut.models`; errors are the tree of
:mod:`ordinaut.errors`. The package needs only httpx.
"""

from __future__ import annotations

from ordinaut.async_client import AsyncClient
from ordinaut.client import Client
from ordinaut.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OrdinautError,
    PayloadTooLargeError,
    PermissionDeniedError,
    Problem,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnavailableError,
    UnexpectedResponseError,
    ValidationError,
    WaitTimeout,
)
from ordinaut.models import (
    Agent,
    AgentQuotaOverrides,
    AgentQuotas,
    AgentToken,
    AgentWithToken,
    EventPublished,
    Page,
    Preview,
    QueuedRun,
    Run,
    RunAttempt,
    RunError,
    StepResult,
    StepTry,
    Task,
    TaskValidation,
    Tool,
    WebhookSecret,
    Worker,
)

__all__ = [
    "APIError",
    "Agent",
    "AgentQuotaOverrides",
    "AgentQuotas",
    "AgentToken",
    "AgentWithToken",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "EventPublished",
    "NotFoundError",
    "OrdinautError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Preview",
    "Problem",
    "QueuedRun",
    "QuotaExceededError",
    "RateLimitedError",
    "Run",
    "RunAttempt",
    "RunError",
    "ServerError",
    "StepResult",
    "StepTry",
    "Task",
    "TaskValidation",
    "Tool",
    "TransportError",
    "UnavailableError",
    "UnexpectedResponseError",
    "ValidationError",
    "WaitTimeout",
    "WebhookSecret",
    "Worker",
]
