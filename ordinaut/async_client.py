"""``AsyncClient``: the asyncio client. Each method runs one operation of
:mod:`ordinaut._operations` through :class:`~ordinaut._drivers.AsyncDriver` (the same
operations as :class:`ordinaut.Client`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

import ordinaut._operations as ops
from ordinaut._config import resolve
from ordinaut._drivers import AsyncDriver
from ordinaut._operations import Id, Values, When
from ordinaut._protocol import Context, Op
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

P = ParamSpec("P")
T = TypeVar("T")


class _Namespace:
    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver

    async def _run(
        self, op: Callable[Concatenate[Context, P], Op[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await self._driver.run(op(self._driver.context, *args, **kwargs))

    async def _iterate(self, page: Callable[..., Op[Page[T]]], **filters: Any) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            answer = await self._run(page, cursor=cursor, **filters)
            for item in answer.items:
                yield item
            if answer.next_cursor is None:
                return
            cursor = answer.next_cursor


class Tasks(_Namespace):
    """``/tasks``: create, read, change and run tasks."""

    async def create(
        self, document: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Task:
        """Create a task (or get the existing one with the same ``dedupe_key``)."""
        return await self._run(ops.create_task, document, idempotency_key=idempotency_key)

    async def validate(self, document: Mapping[str, Any]) -> TaskValidation:
        """Check a task document without saving it: ``valid`` and every problem."""
        return await self._run(ops.validate_task, document)

    async def get(self, task_id: Id) -> Task:
        """One task, with ``next_run_at``."""
        return await self._run(ops.get_task, task_id)

    def list(
        self, *, status: Values = None, schedule_kind: Values = None, limit: int | None = None
    ) -> AsyncIterator[Task]:
        """Every task (newest first) across pages of ``limit``; an admin sees everyone's."""
        return self._iterate(ops.task_page, status=status, schedule_kind=schedule_kind, limit=limit)

    async def page(
        self,
        *,
        status: Values = None,
        schedule_kind: Values = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of tasks; pass its ``next_cursor`` as ``cursor`` for the next."""
        return await self._run(
            ops.task_page, status=status, schedule_kind=schedule_kind, limit=limit, cursor=cursor
        )

    async def update(self, task_id: Id, patch: Mapping[str, Any]) -> Task:
        """Change some fields of a task (validated like a create)."""
        return await self._run(ops.update_task, task_id, patch)

    async def pause(self, task_id: Id) -> Task:
        """Pause a task (idempotent)."""
        return await self._run(ops.change_task, task_id, "pause")

    async def resume(self, task_id: Id) -> Task:
        """Resume a paused task from now on (idempotent)."""
        return await self._run(ops.change_task, task_id, "resume")

    async def cancel(self, task_id: Id) -> Task:
        """Cancel a task for good (idempotent)."""
        return await self._run(ops.change_task, task_id, "cancel")

    async def delete(self, task_id: Id) -> None:
        """Cancel and hide a task; afterwards it is a 404."""
        return await self._run(ops.delete_task, task_id)

    async def run_now(self, task_id: Id, *, wait: float | None = None) -> Run:
        """Queue a run now; with ``wait`` seconds, return it once final (else WaitTimeout)."""
        return await self._run(ops.run_task_now, task_id, wait=wait)

    async def snooze(self, task_id: Id, delay_seconds: float) -> Task:
        """Delay the task's next pending occurrence."""
        return await self._run(ops.snooze_task, task_id, delay_seconds)

    async def preview(self, task_id: Id, count: int = 10, after: When = None) -> Preview:
        """The task's next ``count`` occurrences after ``after`` (default now)."""
        return await self._run(ops.preview_task, task_id, count=count, after=after)


class Runs(_Namespace):
    """``/runs``: run history, cancel, retry, and waiting for a run to end."""

    async def get(self, run_id: Id) -> Run:
        """One run with its step results and error."""
        return await self._run(ops.get_run, run_id)

    def list(
        self,
        *,
        task_id: Id | None = None,
        status: Values = None,
        trigger: Values = None,
        since: When = None,
        until: When = None,
        limit: int | None = None,
    ) -> AsyncIterator[Run]:
        """Every matching run (newest first) across pages of ``limit``."""
        return self._iterate(
            ops.run_page,
            task_id=task_id,
            status=status,
            trigger=trigger,
            since=since,
            until=until,
            limit=limit,
        )

    async def page(
        self,
        *,
        task_id: Id | None = None,
        status: Values = None,
        trigger: Values = None,
        since: When = None,
        until: When = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Run]:
        """One page of runs; pass its ``next_cursor`` as ``cursor`` for the next."""
        return await self._run(
            ops.run_page,
            task_id=task_id,
            status=status,
            trigger=trigger,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    async def retry(self, run_id: Id) -> Run:
        """Re-queue a failed run now, or a dead one as a new run (the answer)."""
        return await self._run(ops.retry_run, run_id)

    async def cancel(self, run_id: Id) -> Run:
        """Cancel a queued, waiting or running run."""
        return await self._run(ops.cancel_run, run_id)

    # ``timeout`` is not a cancellation deadline (asyncio.timeout would lose the last state
    # seen): it bounds the server-side waits, and WaitTimeout carries the run.
    async def wait(self, run_id: Id, timeout: float = 60.0) -> Run:  # noqa: ASYNC109
        """The run once final (succeeded, dead, canceled); WaitTimeout after ``timeout`` s."""
        return await self._run(ops.wait_run, run_id, timeout=timeout)


class Events(_Namespace):
    """``/events``: publish a topic to the event tasks that match it."""

    async def publish(
        self, topic: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> EventPublished:
        """Publish ``topic`` (payload None: the server's default ``{}``); the runs it queued."""
        return await self._run(ops.publish_event, topic, payload, idempotency_key=idempotency_key)


class Schedules(_Namespace):
    """``/schedules``: schedule arithmetic without saving anything."""

    async def preview(
        self,
        schedule_kind: str,
        schedule_expr: str,
        timezone: str | None = None,
        count: int = 10,
        after: When = None,
    ) -> Preview:
        """A schedule's next ``count`` occurrences after ``after`` (default now)."""
        return await self._run(
            ops.preview_schedule, schedule_kind, schedule_expr, timezone, count, after
        )


class Tools(_Namespace):
    """``/tools``: the tool catalog."""

    def list(self) -> AsyncIterator[Tool]:
        """Every tool, by address."""
        return self._iterate(ops.tool_page)

    async def page(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Tool]:
        """One page of tools; pass its ``next_cursor`` as ``cursor`` for the next."""
        return await self._run(ops.tool_page, limit=limit, cursor=cursor)

    async def get(self, address: str) -> Tool:
        """One tool with its schemas."""
        return await self._run(ops.get_tool, address)


class Workers(_Namespace):
    """``/workers``: the worker registry (admin)."""

    def list(self) -> AsyncIterator[Worker]:
        """Every registered worker, oldest first, live or not."""
        return self._iterate(ops.worker_page)


class Agents(_Namespace):
    """``/agents``: who am I; agents and their tokens (admin)."""

    async def me(self) -> Agent:
        """The calling agent and its scopes."""
        return await self._run(ops.me)

    def list(
        self, *, include_deleted: bool = False, name: str | None = None
    ) -> AsyncIterator[Agent]:
        """Every agent (newest first)."""
        return self._iterate(ops.agent_page, include_deleted=include_deleted, name=name)

    async def get(self, agent_id: Id) -> Agent:
        """One agent with its tokens (prefixes only)."""
        return await self._run(ops.get_agent, agent_id)

    async def create(self, name: str, scopes: Sequence[str]) -> AgentWithToken:
        """Create an agent; the answer holds its token, shown this once."""
        return await self._run(ops.create_agent, name, scopes)

    async def update(
        self,
        agent_id: Id,
        name: str | None = None,
        scopes: Sequence[str] | None = None,
        quotas: Mapping[str, int | None] | None = None,
    ) -> Agent:
        """Rename an agent, replace its scopes, or set some of its quotas
        (``{"queued_runs": 50}``; None resets one to the server's default)."""
        return await self._run(ops.update_agent, agent_id, name=name, scopes=scopes, quotas=quotas)

    async def delete(self, agent_id: Id) -> None:
        """Delete an agent; its tokens stop working at once."""
        return await self._run(ops.delete_agent, agent_id)

    async def create_token(self, agent_id: Id, *, keep_existing: bool = False) -> AgentWithToken:
        """A new token (shown once); the agent's other tokens are revoked unless kept."""
        return await self._run(ops.create_token, agent_id, keep_existing=keep_existing)

    async def set_webhook_url(self, agent_id: Id, url: str | None) -> Agent:
        """Where the agent's completion webhooks go (``"me"``: the caller); None stops them."""
        return await self._run(ops.set_webhook_url, agent_id, url)

    async def create_webhook_secret(
        self, agent_id: Id = "me", *, keep_previous: bool = False
    ) -> WebhookSecret:
        """A new signing secret, shown this once. The old one stops signing at once, or,
        with ``keep_previous``, signs every delivery too for 24 hours."""
        return await self._run(ops.create_webhook_secret, agent_id, keep_previous=keep_previous)


class AsyncClient:
    """The asyncio Ordinaut client (the same methods as :class:`ordinaut.Client`, awaited;
    lists are async iterators).

    ``url`` and ``token`` default to ``ORDINAUT_URL`` (else ``http://127.0.0.1:8080``) and
    ``ORDINAUT_TOKEN``. ``timeout``: seconds per request; ``max_retries``: how often a
    request is sent again after a 429, a 503 or a connection failure (see the README);
    ``transport``: an ``httpx`` async transport (``httpx.ASGITransport(app)`` calls an app
    in process, ``httpx.MockTransport`` ...).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config = resolve(url, token, timeout=timeout, max_retries=max_retries)
        self.url = config.url
        self._http = httpx.AsyncClient(
            base_url=config.url, headers=config.headers, timeout=config.timeout, transport=transport
        )
        self._driver = AsyncDriver(self._http, config)
        self.tasks = Tasks(self._driver)
        self.runs = Runs(self._driver)
        self.events = Events(self._driver)
        self.schedules = Schedules(self._driver)
        self.tools = Tools(self._driver)
        self.agents = Agents(self._driver)
        self.workers = Workers(self._driver)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(url={self.url!r})"
