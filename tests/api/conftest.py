"""Fixtures for API tests: the real app in-process (httpx ``ASGITransport``, lifespan
entered, so the pool and the bootstrap admin are set up) on a database of
the test's own.

- ``app``: the app on a fresh database; ``ADMIN_TOKEN`` is its bootstrap admin token.
- ``client``: an ``httpx.AsyncClient`` for ``app`` authenticated as the admin.
- ``make_agent(*scopes, name=None)``: creates an agent through ``POST /agents`` and returns an
  :class:`AgentHandle` (``id``, ``name``, ``token``, ``client``: a client using its token).
- ``app_factory(**settings)``: an app with other settings (rate limit, body limit ...).
- ``client_for(app, token=None)``: a client for any app, with or without a token.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from engine.settings import Settings
from tests.support import ADMIN_TOKEN, auth


@asynccontextmanager
async def running_app(database_url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    """``create_app`` with its lifespan entered (rate limiting off unless overridden)."""
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_token=ADMIN_TOKEN,
        rate_limit_per_minute=overrides.pop("rate_limit_per_minute", 0),
        **overrides,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    """A client of ``app`` in-process; with ``token`` it sends ``Authorization: Bearer``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        headers=auth(token) if token else {},
    )


@pytest.fixture
async def app(fresh_db: str) -> AsyncIterator[FastAPI]:
    async with running_app(fresh_db) as running:
        yield running


@pytest.fixture
async def app_factory(fresh_db: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    """``await app_factory(rate_limit_per_minute=3)``: another app on the test's database."""
    async with AsyncExitStack() as stack:

        async def build(**overrides: Any) -> FastAPI:
            return await stack.enter_async_context(running_app(fresh_db, **overrides))

        yield build


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, ADMIN_TOKEN) as http:
        yield http


@dataclass
class AgentHandle:
    id: str
    name: str
    token: str
    scopes: list[str]
    client: httpx.AsyncClient


MakeAgent = Callable[..., Awaitable[AgentHandle]]


@pytest.fixture
async def make_agent(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[MakeAgent]:
    """Create agents with given scopes through the API (their clients close afterwards)."""
    async with AsyncExitStack() as stack:

        async def make(*scopes: str, name: str | None = None) -> AgentHandle:
            name = name or f"agent-{uuid.uuid4().hex[:8]}"
            response = await client.post("/agents", json={"name": name, "scopes": list(scopes)})
            assert response.status_code == 201, response.text
            body = response.json()
            http = await stack.enter_async_context(client_for(app, body["token"]))
            return AgentHandle(body["id"], name, body["token"], body["scopes"], http)

        yield make


QUICK_TASK = {
    "title": "t",
    "schedule_kind": "once",
    "schedule_expr": "2030-01-01T00:00:00Z",
    "payload": {"pipeline": [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]},
}


def quick_task(**overrides: Any) -> dict[str, Any]:
    """A valid task document that never runs during a test (once, in 2030)."""
    return {**QUICK_TASK, **overrides}
