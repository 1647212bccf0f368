"""Every REST operation of the client, written once (sans-IO, see :mod:`ordinaut._protocol`).

Each function takes the :class:`~ordinaut._protocol.Context` first and returns an
``Op[T]``; :class:`ordinaut.Client` and :class:`ordinaut.AsyncClient` run the same
operations through their drivers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote
from uuid import UUID

from ordinaut._protocol import Context, Op, Request, call, fetch, now, sleep
from ordinaut.errors import ValidationError, WaitTimeout
from ordinaut.models import (
    Agent,
    AgentWithToken,
    EventPublished,
    Page,
    Preview,
    Run,
    Task,
    TaskValidation,
    Tool,
    WebhookSecret,
    Worker,
)

Id: TypeAlias = UUID | str
Values: TypeAlias = str | Sequence[str] | None
When: TypeAlias = datetime | str | None
Params: TypeAlias = tuple[tuple[str, str], ...]

# The longest the server holds a ``?wait=N`` request (DESIGN §4); N may have a fraction.
MAX_SERVER_WAIT = 60
# Pauses between polls when the server answered sooner than asked (an older server that
# does not hold requests): doubling from FIRST_PAUSE up to MAX_PAUSE, never past the deadline.
FIRST_PAUSE = 0.25
MAX_PAUSE = 2.0


L = TypeVar("L")


def _path(*parts: object) -> str:
    """A URL path from segments, each percent-encoded (an id cannot add a segment)."""
    return "/" + "/".join(quote(str(part), safe="") for part in parts)


def _values(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        return (_text(value),)
    return tuple(_text(item) for item in value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):  # 30.0 → "30", 29.75 → "29.75" (whole milliseconds)
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _params(**values: object) -> Params:
    """Query parameters without the None ones; a sequence repeats its name
    (``status=["dead", "failed"]`` → ``status=dead&status=failed``)."""
    return tuple((name, item) for name, value in values.items() for item in _values(value))


def _aware(name: str, value: When) -> When:
    """``value`` unchanged; a naive datetime is refused (the server could only guess its zone)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value


def _list(
    ctx: Context,
    path: str,
    params: Params,
    item: Callable[[Mapping[str, Any]], L],
    **filters: Values,
) -> Op[Page[L]]:
    query = params + _params(**filters)
    return (yield from fetch(ctx, Request("GET", path, query), partial(Page.from_api, item=item)))


def create_task(
    ctx: Context, document: Mapping[str, Any], *, idempotency_key: str | None = None
) -> Op[Task]:
    request = Request("POST", "/tasks", json=dict(document), idempotency_key=idempotency_key)
    return (yield from fetch(ctx, request, Task.from_api))


def validate_task(ctx: Context, document: Mapping[str, Any]) -> Op[TaskValidation]:
    request = Request("POST", "/tasks/validate", json=dict(document), idempotent=True)
    return (yield from fetch(ctx, request, TaskValidation.from_api))


def get_task(ctx: Context, task_id: Id) -> Op[Task]:
    return (yield from fetch(ctx, Request("GET", _path("tasks", task_id)), Task.from_api))


def task_page(
    ctx: Context,
    *,
    status: Values = None,
    schedule_kind: Values = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[Page[Task]]:
    params = _params(limit=limit, cursor=cursor)
    return (
        yield from _list(
            ctx, "/tasks", params, Task.from_api, status=status, schedule_kind=schedule_kind
        )
    )


def update_task(ctx: Context, task_id: Id, patch: Mapping[str, Any]) -> Op[Task]:
    request = Request("PATCH", _path("tasks", task_id), json=dict(patch))
    return (yield from fetch(ctx, request, Task.from_api))


def change_task(ctx: Context, task_id: Id, action: str) -> Op[Task]:
    """``pause``, ``resume`` or ``cancel``: repeating one changes nothing (safe to retry)."""
    request = Request("POST", _path("tasks", task_id, action), idempotent=True)
    return (yield from fetch(ctx, request, Task.from_api))


def delete_task(ctx: Context, task_id: Id) -> Op[None]:
    yield from call(ctx, Request("DELETE", _path("tasks", task_id)))


def run_task_now(ctx: Context, task_id: Id, *, wait: float | None = None) -> Op[Run]:
    path = _path("tasks", task_id, "run_now")
    if wait is None:
        return (yield from fetch(ctx, Request("POST", path), Run.from_api))
    deadline = (yield from now()) + wait
    run, held = yield from _held(ctx, "POST", path, wait)
    return (yield from _until_final(ctx, run, deadline, wait, held=held))


def snooze_task(ctx: Context, task_id: Id, delay_seconds: float) -> Op[Task]:
    request = Request(
        "POST", _path("tasks", task_id, "snooze"), json={"delay_seconds": delay_seconds}
    )
    return (yield from fetch(ctx, request, Task.from_api))


def preview_task(ctx: Context, task_id: Id, *, count: int = 10, after: When = None) -> Op[Preview]:
    params = _params(count=count, after=after)
    request = Request("GET", _path("tasks", task_id, "preview"), params)
    return (yield from fetch(ctx, request, Preview.from_api))


def get_run(ctx: Context, run_id: Id) -> Op[Run]:
    return (yield from fetch(ctx, Request("GET", _path("runs", run_id)), Run.from_api))


def run_page(
    ctx: Context,
    *,
    task_id: Id | None = None,
    status: Values = None,
    trigger: Values = None,
    since: When = None,
    until: When = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[Page[Run]]:
    params = _params(
        task_id=task_id,
        since=_aware("since", since),
        until=_aware("until", until),
        limit=limit,
        cursor=cursor,
    )
    return (yield from _list(ctx, "/runs", params, Run.from_api, status=status, trigger=trigger))


def retry_run(ctx: Context, run_id: Id) -> Op[Run]:
    return (yield from fetch(ctx, Request("POST", _path("runs", run_id, "retry")), Run.from_api))


def cancel_run(ctx: Context, run_id: Id) -> Op[Run]:
    return (yield from fetch(ctx, Request("POST", _path("runs", run_id, "cancel")), Run.from_api))


def wait_run(ctx: Context, run_id: Id, *, timeout: float = 60.0) -> Op[Run]:
    """The run once it is final; :class:`~ordinaut.errors.WaitTimeout` (with the last state
    seen) when ``timeout`` seconds pass first."""
    deadline = (yield from now()) + timeout
    run, held = yield from _poll(ctx, run_id, timeout)
    return (yield from _until_final(ctx, run, deadline, timeout, held=held))


def _until_final(ctx: Context, run: Run, deadline: float, timeout: float, *, held: bool) -> Op[Run]:
    """Poll until ``run`` is final or ``deadline`` (monotonic) passes. After an answer that
    came much sooner than asked (``held`` False: the server does not long-poll), pause
    before asking again, so a server that answers at once is not asked in a busy loop."""
    pause = FIRST_PAUSE
    while not run.is_final:
        remaining = deadline - (yield from now())
        if remaining <= 0:
            raise WaitTimeout(run, timeout)
        if not held:
            yield from sleep(min(pause, remaining))
            pause = min(2 * pause, MAX_PAUSE)
            remaining = deadline - (yield from now())
        run, held = yield from _poll(ctx, run.id, remaining)
    return run


def _poll(ctx: Context, run_id: Id, remaining: float) -> Op[tuple[Run, bool]]:
    """``GET /runs/{id}?wait=N`` for the seconds left (at most 60)."""
    return (yield from _held(ctx, "GET", _path("runs", run_id), remaining))


def _held(ctx: Context, method: str, path: str, remaining: float) -> Op[tuple[Run, bool]]:
    """``method path?wait=N`` (N: the seconds left, at most 60). A server without
    ``wait`` refuses the unknown parameter (422 naming ``query.wait``, before doing
    anything): the request is sent again without it, and so are later ones."""
    asked = _server_wait(remaining)
    if ctx.server.long_polls:
        request = Request(method, path, _params(wait=asked), wait=asked)
        try:
            return (yield from _timed(ctx, request, asked))
        except ValidationError as exc:
            if not any(problem.path == "query.wait" for problem in exc.problems):
                raise
            ctx.server.long_polls = False
    return (yield from fetch(ctx, Request(method, path), Run.from_api)), False


def _timed(ctx: Context, request: Request, asked: float) -> Op[tuple[Run, bool]]:
    """The run that ``request`` answers, and whether the server held the request for at
    least half of the ``asked`` seconds (one that does not long-poll answers at once)."""
    started = yield from now()
    run = yield from fetch(ctx, request, Run.from_api)
    elapsed = (yield from now()) - started
    return run, asked > 0 and elapsed >= asked / 2


def _server_wait(seconds: float) -> float:
    """Seconds to ask the server to wait: never past the deadline (rounded down to the
    millisecond), at most 60."""
    return math.floor(min(max(seconds, 0.0), MAX_SERVER_WAIT) * 1000) / 1000


def publish_event(
    ctx: Context, topic: str, payload: Any = None, *, idempotency_key: str | None = None
) -> Op[EventPublished]:
    body: dict[str, Any] = {"topic": topic}
    if payload is not None:
        body["payload"] = payload
    request = Request("POST", "/events", json=body, idempotency_key=idempotency_key)
    return (yield from fetch(ctx, request, EventPublished.from_api))


def preview_schedule(
    ctx: Context,
    schedule_kind: str,
    schedule_expr: str,
    timezone: str | None = None,
    count: int = 10,
    after: When = None,
) -> Op[Preview]:
    body: dict[str, Any] = {
        "schedule_kind": schedule_kind,
        "schedule_expr": schedule_expr,
        "count": count,
    }
    if timezone is not None:
        body["timezone"] = timezone
    if after is not None:
        body["after"] = _text(after)
    request = Request("POST", "/schedules/preview", json=body, idempotent=True)
    return (yield from fetch(ctx, request, Preview.from_api))


def tool_page(
    ctx: Context, *, limit: int | None = None, cursor: str | None = None
) -> Op[Page[Tool]]:
    return (yield from _list(ctx, "/tools", _params(limit=limit, cursor=cursor), Tool.from_api))


def get_tool(ctx: Context, address: str) -> Op[Tool]:
    return (yield from fetch(ctx, Request("GET", _path("tools", address)), Tool.from_api))


def me(ctx: Context) -> Op[Agent]:
    return (yield from fetch(ctx, Request("GET", "/agents/me"), Agent.from_api))


def agent_page(
    ctx: Context,
    *,
    include_deleted: bool = False,
    name: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Op[Page[Agent]]:
    deleted = include_deleted or None
    params = _params(include_deleted=deleted, name=name, limit=limit, cursor=cursor)
    return (yield from _list(ctx, "/agents", params, Agent.from_api))


def get_agent(ctx: Context, agent_id: Id) -> Op[Agent]:
    return (yield from fetch(ctx, Request("GET", _path("agents", agent_id)), Agent.from_api))


def create_agent(ctx: Context, name: str, scopes: Sequence[str]) -> Op[AgentWithToken]:
    request = Request("POST", "/agents", json={"name": name, "scopes": list(scopes)})
    return (yield from fetch(ctx, request, AgentWithToken.from_api))


def update_agent(
    ctx: Context,
    agent_id: Id,
    *,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    quotas: Mapping[str, int | None] | None = None,
) -> Op[Agent]:
    body: dict[str, Any] = {} if name is None else {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if quotas is not None:
        body["quotas"] = dict(quotas)
    # Sets the given fields to the given values: repeating it changes nothing.
    request = Request("PATCH", _path("agents", agent_id), json=body, idempotent=True)
    return (yield from fetch(ctx, request, Agent.from_api))


def delete_agent(ctx: Context, agent_id: Id) -> Op[None]:
    yield from call(ctx, Request("DELETE", _path("agents", agent_id)))


def create_token(ctx: Context, agent_id: Id, *, keep_existing: bool = False) -> Op[AgentWithToken]:
    params = _params(keep_existing=keep_existing or None)
    request = Request("POST", _path("agents", agent_id, "tokens"), params)
    return (yield from fetch(ctx, request, AgentWithToken.from_api))


def set_webhook_url(ctx: Context, agent_id: Id, url: str | None) -> Op[Agent]:
    request = Request(
        "PATCH", _path("agents", agent_id), json={"webhook_url": url}, idempotent=True
    )
    return (yield from fetch(ctx, request, Agent.from_api))


def create_webhook_secret(
    ctx: Context, agent_id: Id, *, keep_previous: bool = False
) -> Op[WebhookSecret]:
    params = _params(keep_previous=keep_previous or None)
    request = Request("POST", _path("agents", agent_id, "webhook-secret"), params)
    return (yield from fetch(ctx, request, WebhookSecret.from_api))


def worker_page(ctx: Context, *, cursor: str | None = None) -> Op[Page[Worker]]:
    return (yield from _list(ctx, "/workers", _params(cursor=cursor), Worker.from_api))
