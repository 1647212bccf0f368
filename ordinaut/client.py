"""``Client``: the blocking client. Each method runs one operation of
:mod:`ordinaut._operations` through :class:`~ordinaut._drivers.SyncDriver`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

import ordinaut._operations as ops
from ordinaut._config import resolve
from ordinaut._drivers import SyncDriver
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
    def __init__(self, driver: SyncDriver) -> None:
        self._driver = driver

    def _run(
        self, op: Callable[Concatenate[Context, P], Op[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return self._driver.run(op(self._driver.context, *args, **kwargs))

    def _iterate(self, page: Callable[..., Op[Page[T]]], **filters: Any) -> Iterator[T]:
        cursor: str | None = None
        while True:
            answer = self._run(page, cursor=cursor, **filters)
            yield from answer.items
            if answer.next_cursor is None:
                return
            cursor = answer.next_cursor


class Tasks(_Namespace):
    """``/tasks``: create, read, change and run tasks."""

    def create(self, document: Mapping[str, Any], *, idempotency_key: str | None = None) -> Task:
        """Create a task (or get the existing one with the same ``dedupe_key``)."""
        return self._run(ops.create_task, document, idempotency_key=idempotency_key)

    def validate(self, document: Mapping[str, Any]) -> TaskValidation:
        """Check a task document without saving it: ``valid`` and every problem."""
        return self._run(ops.validate_task, document)

    def get(self, task_id: Id) -> Task:
        """One task, with ``next_run_at``."""
        return self._run(ops.get_task, task_id)

    def list(
        self, *, status: Values = None, schedule_kind: Values = None, limit: int | None = None
    ) -> Iterator[Task]:
        """Every task (newest first) across pages of ``limit``; an admin sees everyone's."""
        return self._iterate(ops.task_page, status=status, schedule_kind=schedule_kind, limit=limit)

    def page(
        self,
        *,
        status: Values = None,
        schedule_kind: Values = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Task]:
        """One page of tasks; pass its ``next_cursor`` as ``cursor`` for the next."""
        return self._run(
            ops.task_page, status=status, schedule_kind=schedule_kind, limit=limit, cursor=cursor
        )

    def update(self, task_id: Id, patch: Mapping[str, Any]) -> Task:
        """Change some fields of a task (validated like a create)."""
        return self._run(ops.update_task, task_id, patch)

    def pause(self, task_id: Id) -> Task:
        """Pause a task (idempotent)."""
        return self._run(ops.change_task, task_id, "pause")

    def resume(self, task_id: Id) -> Task:
        """Resume a paused task from now on (idempotent)."""
        return self._run(ops.change_task, task_id, "resume")

    def cancel(self, task_id: Id) -> Task:
        """Cancel a task for good (idempotent)."""
        return self._run(ops.change_task, task_id, "cancel")

    def delete(self, task_id: Id) -> None:
        """Cancel and hide a task; afterwards it is a 404."""
        return self._run(ops.delete_task, task_id)

    def run_now(self, task_id: Id, *, wait: float | None = None) -> Run:
        """Queue a run now; with ``wait`` seconds, return it once final (else WaitTimeout)."""
        return self._run(ops.run_task_now, task_id, wait=wait)

    def snooze(self, task_id: Id, delay_seconds: float) -> Task:
        """Delay the task's next pending occurrence."""
        return self._run(ops.snooze_task, task_id, delay_seconds)

    def preview(self, task_id: Id, count: int = 10, after: When = None) -> Preview:
        """The task's next ``count`` occurrences after ``after`` (default now)."""
        return self._run(ops.preview_task, task_id, count=count, after=after)


class Runs(_Namespace):
    """``/runs``: run history, cancel, retry, and waiting for a run to end."""

    def get(self, run_id: Id) -> Run:
        """One run with its step results and error."""
        return self._run(ops.get_run, run_id)

    def list(
        self,
        *,
        task_id: Id | None = None,
        status: Values = None,
        trigger: Values = None,
        since: When = None,
        until: When = None,
        limit: int | None = None,
    ) -> Iterator[Run]:
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

    def page(
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
        return self._run(
            ops.run_page,
            task_id=task_id,
            status=status,
            trigger=trigger,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    def retry(self, run_id: Id) -> Run:
        """Re-queue a failed run now, or a dead one as a new run (the answer)."""
        return self._run(ops.retry_run, run_id)

    def cancel(self, run_id: Id) -> Run:
        """Cancel a queued, waiting or running run."""
        return self._run(ops.cancel_run, run_id)

    def wait(self, run_id: Id, timeout: float = 60.0) -> Run:
        """The run once final (succeeded, dead, canceled); WaitTimeout after ``timeout`` s."""
        return self._run(ops.wait_run, run_id, timeout=timeout)


class Events(_Namespace):
    """``/events``: publish a topic to the event tasks that match it."""

    def publish(
        self, topic: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> EventPublished:
        """Publish ``topic`` (payload None: the server's default ``{}``); the runs it queued."""
        return self._run(ops.publish_event, topic, payload, idempotency_key=idempotency_key)


class Schedules(_Namespace):
    """``/schedules``: schedule arithmetic without saving anything."""

    def preview(
        self,
        schedule_kind: str,
        schedule_expr: str,
        timezone: str | None = None,
        count: int = 10,
        after: When = None,
    ) -> Preview:
        """A schedule's next ``count`` occurrences after ``after`` (default now)."""
        return self._run(ops.preview_schedule, schedule_kind, schedule_expr, timezone, count, after)


class Tools(_Namespace):
    """``/tools``: the tool catalog."""

    def list(self) -> Iterator[Tool]:
        """Every tool, by address."""
        return self._iterate(ops.tool_page)

    def page(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Tool]:
        """One page of tools; pass its ``next_cursor`` as ``cursor`` for the next."""
        return self._run(ops.tool_page, limit=limit, cursor=cursor)

    def get(self, address: str) -> Tool:
        """One tool with its schemas."""
        return self._run(ops.get_tool, address)


class Workers(_Namespace):
    """``/workers``: the worker registry (admin)."""

    def list(self) -> Iterator[Worker]:
        """Every registered worker, oldest first, live or not."""
        return self._iterate(ops.worker_page)


class Agents(_Namespace):
    """``/agents``: who am I; agents and their tokens (admin)."""

    def me(self) -> Agent:
        """The calling agent and its scopes."""
        return self._run(ops.me)

    def list(self, *, include_deleted: bool = False, name: str | None = None) -> Iterator[Agent]:
        """Every agent (newest first)."""
        return self._iterate(ops.agent_page, include_deleted=include_deleted, name=name)

    def get(self, agent_id: Id) -> Agent:
        """One agent with its tokens (prefixes only)."""
        return self._run(ops.get_agent, agent_id)

    def create(self, name: str, scopes: Sequence[str]) -> AgentWithToken:
        """Create an agent; the answer holds its token, shown this once."""
        return self._run(ops.create_agent, name, scopes)

    def update(
        self,
        agent_id: Id,
        name: str | None = None,
        scopes: Sequence[str] | None = None,
        quotas: Mapping[str, int | None] | None = None,
    ) -> Agent:
        """Rename an agent, replace its scopes, or set some of its quotas
        (``{"queued_runs": 50}``; None resets one to the server's default)."""
        return self._run(ops.update_agent, agent_id, name=name, scopes=scopes, quotas=quotas)

    def delete(self, agent_id: Id) -> None:
        """Delete an agent; its tokens stop working at once."""
        return self._run(ops.delete_agent, agent_id)

    def create_token(self, agent_id: Id, *, keep_existing: bool = False) -> AgentWithToken:
        """A new token (shown once); the agent's other tokens are revoked unless kept."""
        return self._run(ops.create_token, agent_id, keep_existing=keep_existing)

    def set_webhook_url(self, agent_id: Id, url: str | None) -> Agent:
        """Where the agent's completion webhooks go (``"me"``: the caller); None stops them."""
        return self._run(ops.set_webhook_url, agent_id, url)

    def create_webhook_secret(
        self, agent_id: Id = "me", *, keep_previous: bool = False
    ) -> WebhookSecret:
        """A new signing secret, shown this once. The old one stops signing at once, or,
        with ``keep_previous``, signs every delivery too for 24 hours."""
        return self._run(ops.create_webhook_secret, agent_id, keep_previous=keep_previous)


class Client:
    """The blocking Ordinaut client.

    ``url`` and ``token`` default to ``ORDINAUT_URL`` (else ``http://127.0.0.1:8080``) and
    ``ORDINAUT_TOKEN``. ``timeout``: seconds per request; ``max_retries``: how often a
    request is sent again after a 429, a 503 or a connection failure (see the README);
    ``transport``: an ``httpx`` transport (``httpx.MockTransport``, a WSGI app ...).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = resolve(url, token, timeout=timeout, max_retries=max_retries)
        self.url = config.url
        self._http = httpx.Client(
            base_url=config.url, headers=config.headers, timeout=config.timeout, transport=transport
        )
        self._driver = SyncDriver(self._http, config)
        self.tasks = Tasks(self._driver)
        self.runs = Runs(self._driver)
        self.events = Events(self._driver)
        self.schedules = Schedules(self._driver)
        self.tools = Tools(self._driver)
        self.agents = Agents(self._driver)
        self.workers = Workers(self._driver)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"
