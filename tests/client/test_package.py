"""The package itself: what it imports, where it reads the environment, its configuration,
forward-compatible parsing, request encoding, and AsyncClient in process over
``httpx.ASGITransport`` (as the MCP server will call the API)."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest

import ordinaut
from engine import quotas as engine_quotas
from ordinaut import (
    Agent,
    APIError,
    AsyncClient,
    Client,
    Problem,
    Run,
    Task,
    UnexpectedResponseError,
    ValidationError,
)
from ordinaut import models as client_models
from tests.client.fakes import (
    RUN_ID,
    URL,
    Script,
    agent_document,
    answer,
    run_document,
    task_document,
)
from tests.client.harness import collect, raised, resolve
from tests.support import ADMIN_TOKEN

PACKAGE = Path(ordinaut.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (relative imports excluded)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_imports_only_the_standard_library_and_httpx():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        foreign = {
            name
            for name in imports_of(path)
            if name not in sys.stdlib_module_names and name not in ("httpx", "ordinaut")
        }
        assert not foreign, f"{path.name} imports {foreign}"
    assert "httpx" in imports_of(PACKAGE / "_drivers.py")


def test_only_the_config_module_reads_the_environment():
    readers = {
        path.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
    }
    assert readers == {"_config.py"}


def test_url_and_token_come_from_the_environment_unless_given(monkeypatch):
    script = Script(answer(200, agent_document()))
    monkeypatch.setenv("ORDINAUT_URL", "http://from-env:9000")
    monkeypatch.setenv("ORDINAUT_TOKEN", "env-token")
    with Client(transport=script.transport()) as c:
        c.agents.me()
    with Client("http://given:1", "given-token", transport=script.transport()) as c:
        c.agents.me()
    monkeypatch.delenv("ORDINAUT_URL")
    monkeypatch.delenv("ORDINAUT_TOKEN")
    with Client(transport=script.transport()) as c:
        c.agents.me()
    sent = [(str(r.url), r.headers.get("authorization")) for r in script.requests]
    assert sent == [
        ("http://from-env:9000/agents/me", "Bearer env-token"),
        ("http://given:1/agents/me", "Bearer given-token"),
        ("http://127.0.0.1:8080/agents/me", None),
    ]
    assert script.requests[0].headers["user-agent"].startswith("ordinaut-python/")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "localhost:8080"}, "http:// or https://"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_configuration_fails_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        Client(**options)


def test_results_ignore_unknown_fields_and_keep_them_in_raw():
    failure = {"step_id": "s", "type": "tool_error", "message": "no", "retryable": True}
    document = run_document(
        "succeeded",
        attempts=[
            {
                "number": 1,
                "worker_id": "w1",
                "started_at": "2026-03-30T06:00:00+00:00",
                "finished_at": "2026-03-30T06:00:00.25+00:00",
                "duration_ms": 250,
                "error": failure,
                "region": "eu",
            }
        ],
        steps=[
            {
                "id": "s",
                "uses": "debug.echo",
                "status": "succeeded",
                "started_at": "2026-03-30T06:00:01.5+00:00",
                "duration_ms": 3,
                "attempt": 2,
                "output": {"v": 1},
                "error": None,
                "tries": [
                    {
                        "try": 1,
                        "started_at": "2026-03-30T06:00:01+00:00",
                        "duration_ms": 2,
                        "error": {"type": "tool_error"},
                        "backoff_ms": 500,
                    }
                ],
                "skip_reason": None,
            }
        ],
        webhook={"delivered": True},
        finished_at="2026-03-30T09:00:02+03:00",
    )
    run = Run.from_api(document)
    assert run.id == UUID(RUN_ID) and run.is_final
    assert run.finished_at == datetime(2026, 3, 30, 6, 0, 2, tzinfo=UTC)
    assert run.finished_at.utcoffset() == timedelta(hours=3)
    assert run.steps[0].started_at == datetime(2026, 3, 30, 6, 0, 1, 500000, tzinfo=UTC)
    (attempt,) = run.attempts
    assert (attempt.number, attempt.worker_id, attempt.duration_ms) == (1, "w1", 250)
    assert attempt.error is not None and attempt.error.type == "tool_error"
    assert attempt.finished_at == datetime(2026, 3, 30, 6, 0, 0, 250000, tzinfo=UTC)
    (tried,) = run.steps[0].tries
    assert (tried.number, tried.backoff_ms, tried.duration_ms) == (1, 500, 2)
    assert run.raw["webhook"] == {"delivered": True} and attempt.raw["region"] == "eu"
    assert "skip_reason" in run.steps[0].raw
    task = Task.from_api(task_document(owner_webhook="x"))
    assert task.raw["owner_webhook"] == "x" and task.next_run_at is not None
    older = Run.from_api(run_document("queued"))
    assert older.attempts == () and all(step.tries == () for step in older.steps)


def test_an_agent_without_quotas_parses_and_the_quota_names_are_the_servers():
    """An older server's agent (no quotas) parses with None; the client's list of quota
    names (it cannot import the server's) is the server's."""
    agent = Agent.from_api(
        {
            "id": RUN_ID,
            "name": "old",
            "scopes": ["tasks:read"],
            "created_at": "2026-03-30T06:00:00+00:00",
            "updated_at": "2026-03-30T06:00:00+00:00",
        }
    )
    assert agent.quotas is None and agent.quota_overrides is None and agent.webhook_url is None
    assert client_models.QUOTA_NAMES == engine_quotas.QUOTA_NAMES


async def test_multi_valued_filters_repeat_the_parameter(open_client):
    page = {"items": [run_document("dead"), run_document("succeeded")], "next_cursor": "a/b+c="}
    script = Script(answer(200, page), answer(200, {"items": [], "next_cursor": None}))
    async with open_client(URL, "t", transport=script.transport()) as c:
        runs = await collect(c.runs.list(status=["dead", "failed"], task_id=RUN_ID, limit=2))
    first, second = script.requests
    assert first.url.params.multi_items() == [
        ("task_id", RUN_ID),
        ("limit", "2"),
        ("status", "dead"),
        ("status", "failed"),
    ]
    assert second.url.params["cursor"] == "a/b+c="  # the opaque cursor, URL-encoded
    # The server filters; the client passes on what it answered.
    assert [r.status for r in runs] == ["dead", "succeeded"]


async def test_naive_times_in_run_filters_are_refused(open_client):
    async with open_client(URL, "t", transport=Script(answer(200, {})).transport()) as c:
        with pytest.raises(ValueError, match="timezone-aware"):
            await resolve(c.runs.page(since=datetime(2026, 1, 1)))


async def test_a_success_that_is_not_the_expected_json_is_an_unexpected_response(open_client):
    script = Script(
        httpx.Response(200, text="<html>captive portal</html>"), answer(200, {"name": "x"})
    )
    async with open_client(URL, "t", transport=script.transport()) as c:
        error = await raised(UnexpectedResponseError, lambda: c.agents.me())
        assert error.status == 200 and "not JSON" in str(error)
        error = await raised(UnexpectedResponseError, lambda: c.agents.me())
        assert "KeyError" in str(error)


def test_an_error_line_names_the_code_message_and_every_problem_path():
    problems = (Problem("$.a", "bad a"), Problem("$.b[0]", "bad\nb", "type"))
    error = ValidationError(422, "validation_error", "$.a: bad a", problems=problems)
    assert str(error) == "422 validation_error: $.a: bad a ($.b[0]: bad b)"
    assert isinstance(error, APIError) and error.problems == problems


async def test_async_client_in_process_over_asgi_transport(fresh_db):
    from api.app import create_app
    from engine.settings import Settings

    app = create_app(Settings(database_url=fresh_db, bootstrap_admin_token=ADMIN_TOKEN))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(url="http://api", token=ADMIN_TOKEN, transport=transport) as c:
            assert (await c.agents.me()).name == "admin"
            document = {
                "title": "in process",
                "schedule_kind": "once",
                "schedule_expr": "2030-01-01T00:00:00Z",
                "payload": {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]},
            }
            task = await c.tasks.create(document, idempotency_key="k")
            assert (await c.tasks.create(document, idempotency_key="k")).id == task.id
            assert [t.id async for t in c.tasks.list()] == [task.id]
            queued = await c.tasks.run_now(task.id)
            assert queued.status == "queued" and queued.task_id == task.id
        async with AsyncClient(url="http://api", token="ord_wrong", transport=transport) as c:
            with pytest.raises(ordinaut.AuthenticationError):
                await c.agents.me()
