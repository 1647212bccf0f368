"""Typed errors from the real server: validation problems by JSON path, no token, another
agent's objects, a missing scope, a conflict."""

from __future__ import annotations

import pytest

from ordinaut import (
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ValidationError,
)
from tests.client.harness import raised, resolve
from tests.client.test_journey import echo_task

pytestmark = pytest.mark.e2e


def bad_task() -> dict:
    task = echo_task("bad", priority=0)
    task["schedule_expr"] = "61 * * * *"
    task["payload"]["pipeline"].append({"id": "two", "uses": "no.such.tool", "with": {}})
    return task


async def test_errors_from_the_server(live, open_client):
    async with open_client(live.url) as admin:
        error = await raised(ValidationError, lambda: admin.tasks.create(bad_task()))
        paths = {p.path for p in error.problems}
        assert {"$.schedule_expr", "$.priority", "$.payload.pipeline[1].uses"} <= paths, (
            error.problems
        )
        assert all(isinstance(p, Problem) and p.message for p in error.problems)
        assert (error.status, error.code) == (422, "validation_error") and error.request_id
        line = str(error)
        assert "\n" not in line and line.startswith("422 validation_error: ")
        assert all(path in line for path in paths)

        checked = await resolve(admin.tasks.validate(bad_task()))
        assert not checked.valid and {p.path for p in checked.problems} == paths
        assert (await resolve(admin.tasks.validate(echo_task("ok")))).valid

        bad_query = await raised(ValidationError, lambda: admin.tasks.page(limit=1000))
        assert [p.path for p in bad_query.problems] == ["query.limit"]

        task = await resolve(admin.tasks.create(echo_task("admin's")))
        reader = await resolve(admin.agents.create("reader", ["tasks:read", "tasks:write"]))

    async with open_client(live.url, token=None) as anonymous:
        refused = await raised(AuthenticationError, lambda: anonymous.tasks.get(task.id))
        assert refused.status == 401 and str(refused).startswith("401 unauthenticated: ")

    async with open_client(live.url, token=reader.token) as other:
        # Another agent's task is a 404, exactly like one that does not exist.
        missing = await raised(NotFoundError, lambda: other.tasks.get(task.id))
        assert missing.code == "not_found" and str(task.id) in missing.message
        await raised(NotFoundError, lambda: other.tasks.pause(task.id))
        assert [t.id async for t in _aiter(other.tasks.list())] == []
        denied = await raised(PermissionDeniedError, lambda: other.runs.page())
        assert denied.status == 403
        await raised(PermissionDeniedError, lambda: other.agents.create("x", []))
        own = await resolve(other.tasks.create(echo_task("mine")))
        await resolve(other.tasks.cancel(own.id))
        conflict = await raised(
            ConflictError, lambda: other.tasks.update(own.id, {"title": "again"})
        )
        assert isinstance(conflict, APIError) and conflict.status == 409


async def _aiter(items):
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
