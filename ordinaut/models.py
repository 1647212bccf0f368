"""Typed results: frozen dataclasses parsed from the server's JSON answers.

Ids are :class:`~uuid.UUID`; timestamps are timezone-aware :class:`~datetime.datetime`.
Fields the client does not know yet are ignored by the parsers and kept, with everything
else, in each result's ``raw`` dict (a run's ``timing`` and ``webhook_deliveries``, a step's
``skip_reason`` ...), so an older client neither breaks on a newer server nor loses data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from ordinaut.errors import Problem

T = TypeVar("T")

FINAL_RUN_STATUSES = frozenset({"succeeded", "dead", "canceled"})

Raw = Mapping[str, Any]


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 timestamp (with its offset) as a datetime."""
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return datetime.fromisoformat(value)


def _maybe_datetime(value: Any) -> datetime | None:
    return None if value is None else parse_datetime(value)


def _maybe_uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _maybe_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _maybe(parse: Callable[[Raw], T], value: Any) -> T | None:
    return None if value is None else parse(value)


@dataclass(frozen=True, kw_only=True)
class Task:
    """A task as the server stores it (the document's fields plus the server's)."""

    id: UUID
    title: str
    description: str | None
    schedule_kind: str
    schedule_expr: str
    timezone: str
    payload: Mapping[str, Any]
    priority: int
    max_retries: int
    backoff_strategy: str
    timeout_seconds: int
    concurrency_key: str | None
    dedupe_key: str | None
    dedupe_window_seconds: int
    catch_up: str
    status: str
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            id=UUID(data["id"]),
            title=data["title"],
            description=data.get("description"),
            schedule_kind=data["schedule_kind"],
            schedule_expr=data["schedule_expr"],
            timezone=data["timezone"],
            payload=data.get("payload") or {},
            priority=data["priority"],
            max_retries=data["max_retries"],
            backoff_strategy=data["backoff_strategy"],
            timeout_seconds=data["timeout_seconds"],
            concurrency_key=data.get("concurrency_key"),
            dedupe_key=data.get("dedupe_key"),
            dedupe_window_seconds=data.get("dedupe_window_seconds", 0),
            catch_up=data["catch_up"],
            status=data["status"],
            created_by=UUID(data["created_by"]),
            created_at=parse_datetime(data["created_at"]),
            updated_at=parse_datetime(data["updated_at"]),
            next_run_at=_maybe_datetime(data.get("next_run_at")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class RunError:
    """Why a run failed: the step (if any), the kind, the message, whether it is retried."""

    step_id: str | None
    type: str
    message: str
    retryable: bool
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            step_id=data.get("step_id"),
            type=data["type"],
            message=data["message"],
            retryable=bool(data.get("retryable", False)),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class StepTry:
    """A try of a step that failed before the step's last one, and the pause after it."""

    number: int
    started_at: datetime | None
    duration_ms: int | None
    error: Mapping[str, Any] | None
    backoff_ms: int
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            number=data["try"],
            started_at=_maybe_datetime(data.get("started_at")),
            duration_ms=data.get("duration_ms"),
            error=data.get("error"),
            backoff_ms=data.get("backoff_ms", 0),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """One step of a run: ``succeeded``, ``failed`` or ``skipped``, with its output or error
    (of its last try; ``tries`` are the failed ones before it)."""

    id: str
    uses: str
    status: str
    started_at: datetime | None
    duration_ms: int | None
    attempt: int
    output: Any
    error: Mapping[str, Any] | None
    tries: tuple[StepTry, ...] = ()
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            id=data["id"],
            uses=data["uses"],
            status=data["status"],
            started_at=_maybe_datetime(data.get("started_at")),
            duration_ms=data.get("duration_ms"),
            attempt=data.get("attempt", 0),
            output=data.get("output"),
            error=data.get("error"),
            tries=tuple(StepTry.from_api(t) for t in data.get("tries") or ()),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class RunAttempt:
    """An attempt of a run that failed and after which the run was to be retried."""

    number: int
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: RunError | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        error = data.get("error")
        return cls(
            number=data["number"],
            worker_id=data.get("worker_id"),
            started_at=_maybe_datetime(data.get("started_at")),
            finished_at=_maybe_datetime(data.get("finished_at")),
            duration_ms=data.get("duration_ms"),
            error=None if error is None else RunError.from_api(error),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Run:
    """One execution of a task's pipeline; final when ``succeeded``, ``dead`` or ``canceled``."""

    id: UUID
    task_id: UUID
    status: str
    trigger: str
    scheduled_for: datetime
    queued_at: datetime
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    worker_id: str | None
    steps: tuple[StepResult, ...]
    error: RunError | None
    event: Any
    retry_of: UUID | None
    next_attempt_at: datetime | None
    cancel_requested: bool
    attempts: tuple[RunAttempt, ...] = ()
    raw: Raw = field(repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """Whether the run has ended (``succeeded``, ``dead`` or ``canceled``)."""
        return self.status in FINAL_RUN_STATUSES

    def step(self, step_id: str) -> StepResult:
        """The result of the step with this id (KeyError when the run has none)."""
        for result in self.steps:
            if result.id == step_id:
                return result
        raise KeyError(step_id)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        error = data.get("error")
        return cls(
            id=UUID(data["id"]),
            task_id=UUID(data["task_id"]),
            status=data["status"],
            trigger=data["trigger"],
            scheduled_for=parse_datetime(data["scheduled_for"]),
            queued_at=parse_datetime(data["queued_at"]),
            attempt=data.get("attempt", 0),
            started_at=_maybe_datetime(data.get("started_at")),
            finished_at=_maybe_datetime(data.get("finished_at")),
            duration_ms=data.get("duration_ms"),
            worker_id=data.get("worker_id"),
            steps=tuple(StepResult.from_api(s) for s in data.get("steps") or ()),
            error=None if error is None else RunError.from_api(error),
            event=data.get("event"),
            retry_of=_maybe_uuid(data.get("retry_of")),
            next_attempt_at=_maybe_datetime(data.get("next_attempt_at")),
            cancel_requested=bool(data.get("cancel_requested", False)),
            attempts=tuple(RunAttempt.from_api(a) for a in data.get("attempts") or ()),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list: its items and the cursor of the next page (None: the last)."""

    items: tuple[T, ...]
    next_cursor: str | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw, item: Callable[[Raw], T]) -> Page[T]:
        return cls(
            items=tuple(item(entry) for entry in data["items"]),
            next_cursor=_maybe_str(data.get("next_cursor")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class AgentToken:
    """A token as listings show it: its prefix and dates, never the token itself."""

    id: UUID
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            id=UUID(data["id"]),
            prefix=data["prefix"],
            created_at=parse_datetime(data["created_at"]),
            last_used_at=_maybe_datetime(data.get("last_used_at")),
            revoked_at=_maybe_datetime(data.get("revoked_at")),
            raw=data,
        )


QUOTA_NAMES = ("active_tasks", "queued_runs", "concurrent_runs", "event_fanout")


@dataclass(frozen=True, kw_only=True)
class AgentQuotas:
    """The per-agent limits that apply (the agent's own, else the server's defaults): active
    or paused tasks, runs waiting in the queue, runs running at once, tasks one event may
    start."""

    active_tasks: int
    queued_runs: int
    concurrent_runs: int
    event_fanout: int

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(**{name: int(data[name]) for name in QUOTA_NAMES})


@dataclass(frozen=True, kw_only=True)
class AgentQuotaOverrides:
    """The quotas an admin set for this agent; None: the server's default applies."""

    active_tasks: int | None
    queued_runs: int | None
    concurrent_runs: int | None
    event_fanout: int | None

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(**{name: _maybe_int(data.get(name)) for name in QUOTA_NAMES})


@dataclass(frozen=True, kw_only=True)
class Agent:
    """An agent and its scopes; ``tokens`` only where the server lists them
    (``agents.get``), else None; ``quotas`` and ``quota_overrides`` None only from a server
    that does not say."""

    id: UUID
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    tokens: tuple[AgentToken, ...] | None
    webhook_url: str | None = None
    quotas: AgentQuotas | None = None
    quota_overrides: AgentQuotaOverrides | None = None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(**_agent_fields(data))


def _agent_fields(data: Raw) -> dict[str, Any]:
    tokens = data.get("tokens")
    return {
        "id": UUID(data["id"]),
        "name": data["name"],
        "scopes": tuple(data.get("scopes") or ()),
        "created_at": parse_datetime(data["created_at"]),
        "updated_at": parse_datetime(data["updated_at"]),
        "deleted_at": _maybe_datetime(data.get("deleted_at")),
        "tokens": None if tokens is None else tuple(AgentToken.from_api(t) for t in tokens),
        "webhook_url": _maybe_str(data.get("webhook_url")),
        "quotas": _maybe(AgentQuotas.from_api, data.get("quotas")),
        "quota_overrides": _maybe(AgentQuotaOverrides.from_api, data.get("quota_overrides")),
        "raw": data,
    }


@dataclass(frozen=True, kw_only=True)
class AgentWithToken(Agent):
    """An agent plus a new ``token``, which the server shows this once."""

    token: str = field(repr=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(**_agent_fields(data), token=data["token"])


@dataclass(frozen=True, kw_only=True)
class WebhookSecret:
    """A new webhook signing ``secret`` (``whsec_...``, shown this once); with
    ``keep_previous``, ``previous_valid_until`` says until when the old one signs too."""

    secret: str = field(repr=False)
    agent_id: UUID
    created_at: datetime
    previous_valid_until: datetime | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            secret=data["secret"],
            agent_id=UUID(data["agent_id"]),
            created_at=parse_datetime(data["created_at"]),
            previous_valid_until=_maybe_datetime(data.get("previous_valid_until")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A catalog entry: its address, transport and schemas."""

    address: str
    transport: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    timeout_seconds: float
    endpoint: str | None
    server: str | None
    tool: str | None
    source: str
    created_at: datetime | None
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            address=data["address"],
            transport=data["transport"],
            description=data.get("description", ""),
            input_schema=data.get("input_schema") or {},
            output_schema=data.get("output_schema") or {},
            timeout_seconds=data.get("timeout_seconds", 0.0),
            endpoint=data.get("endpoint"),
            server=data.get("server"),
            tool=data.get("tool"),
            source=data.get("source", "catalog"),
            created_at=_maybe_datetime(data.get("created_at")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class QueuedRun:
    """A run that a published event queued."""

    task_id: UUID
    run_id: UUID
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(task_id=UUID(data["task_id"]), run_id=UUID(data["run_id"]), raw=data)


@dataclass(frozen=True, kw_only=True)
class EventPublished:
    """The answer to ``events.publish``: the event's id and one run per matching task."""

    event_id: UUID
    runs: tuple[QueuedRun, ...]
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        runs = tuple(QueuedRun.from_api(r) for r in data.get("runs") or ())
        return cls(event_id=UUID(data["event_id"]), runs=runs, raw=data)


@dataclass(frozen=True, kw_only=True)
class Preview:
    """A schedule's next occurrences, with the offset of the schedule's zone."""

    occurrences: tuple[datetime, ...]
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(occurrences=tuple(parse_datetime(o) for o in data["occurrences"]), raw=data)


@dataclass(frozen=True, kw_only=True)
class TaskValidation:
    """The answer to ``tasks.validate``: whether the document is valid, and every problem."""

    valid: bool
    problems: tuple[Problem, ...]
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        problems = tuple(Problem.from_api(p) for p in data.get("problems") or ())
        return cls(valid=bool(data["valid"]), problems=problems, raw=data)


@dataclass(frozen=True, kw_only=True)
class Worker:
    """A worker process in the registry; ``live`` when it heartbeated recently."""

    id: str
    host: str
    pid: int
    concurrency: int
    inflight: int
    processed: int
    started_at: datetime
    last_seen_at: datetime
    live: bool
    raw: Raw = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Raw) -> Self:
        return cls(
            id=str(data["id"]),
            host=data["host"],
            pid=int(data["pid"]),
            concurrency=int(data["concurrency"]),
            inflight=int(data.get("inflight", 0)),
            processed=int(data.get("processed", 0)),
            started_at=parse_datetime(data["started_at"]),
            last_seen_at=parse_datetime(data["last_seen_at"]),
            live=bool(data["live"]),
            raw=data,
        )
