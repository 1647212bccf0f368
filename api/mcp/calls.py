"""What each MCP tool does: one REST call (or two, to wait) through the Python client.

Each function takes the caller's :class:`ordinaut.AsyncClient` and the tool's validated
arguments and returns the REST answer unchanged (the client's ``raw`` JSON), so a tool's
structured result is exactly what the route answers. Errors are the client's: the server
turns them into tool errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from api.mcp.schemas import DEFAULT_PAGE_SIZE
from ordinaut import AsyncClient, OrdinautError, Run, WaitTimeout

log = logging.getLogger("ordinaut.api.mcp")

Arguments = Mapping[str, Any]
Call = Callable[[AsyncClient, Arguments], Awaitable[Mapping[str, Any]]]


def _raw(result: Any) -> Mapping[str, Any]:
    raw: Mapping[str, Any] = result.raw
    return raw


async def create_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(
        await client.tasks.create(args["task"], idempotency_key=args.get("idempotency_key"))
    )


async def validate_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.validate(args["task"]))


async def list_tasks(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.tasks.page(
        status=args.get("status"),
        schedule_kind=args.get("schedule_kind"),
        limit=args.get("limit", DEFAULT_PAGE_SIZE),
        cursor=args.get("cursor"),
    )
    return _raw(page)


async def get_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.get(args["task_id"]))


async def update_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.update(args["task_id"], args["patch"]))


async def pause_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.pause(args["task_id"]))


async def resume_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.resume(args["task_id"]))


async def cancel_task(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.tasks.cancel(args["task_id"]))


async def run_task_now(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    """Queue the run, then wait for it in a separate call: once queued, the run exists, and
    a failure while waiting (the token may lack ``runs:read``) must not hide it."""
    run = await client.tasks.run_now(args["task_id"])
    wait = float(args.get("wait_seconds", 0))
    if wait <= 0:
        return _raw(run)
    return _raw(await _wait(client, run, wait))


async def wait_for_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    run = await client.runs.get(args["run_id"])
    return _raw(await _wait(client, run, float(args.get("timeout_seconds", 30))))


async def _wait(client: AsyncClient, run: Run, seconds: float) -> Run:
    """``run`` once final, or its latest state when ``seconds`` pass (or waiting fails)."""
    if run.is_final or seconds <= 0:
        return run
    try:
        return await client.runs.wait(run.id, timeout=seconds)
    except WaitTimeout as timeout:
        return timeout.run
    except OrdinautError as exc:
        log.info("waiting for run %s stopped: %s", run.id, exc)
        return run


async def list_runs(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.runs.page(
        task_id=args.get("task_id"),
        status=args.get("status"),
        since=args.get("since"),
        until=args.get("until"),
        limit=args.get("limit", DEFAULT_PAGE_SIZE),
        cursor=args.get("cursor"),
    )
    return _raw(page)


async def get_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.get(args["run_id"]))


async def cancel_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.cancel(args["run_id"]))


async def retry_run(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.runs.retry(args["run_id"]))


async def preview_schedule(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    preview = await client.schedules.preview(
        args["schedule_kind"],
        args["schedule_expr"],
        timezone=args.get("timezone"),
        count=args.get("count", 10),
        after=args.get("after"),
    )
    return _raw(preview)


async def publish_event(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    published = await client.events.publish(
        args["topic"], args.get("payload"), idempotency_key=args.get("idempotency_key")
    )
    return _raw(published)


async def list_tools(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    page = await client.tools.page(
        limit=args.get("limit", DEFAULT_PAGE_SIZE), cursor=args.get("cursor")
    )
    return _raw(page)


async def whoami(client: AsyncClient, args: Arguments) -> Mapping[str, Any]:
    return _raw(await client.agents.me())
