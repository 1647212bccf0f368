"""Fixtures for the client tests: a real ``ordinaut api`` and ``ordinaut worker`` on a
database of the test's own, and both clients (``Client`` and ``AsyncClient``) behind one
awaitable face, so each test runs once per client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ordinaut import AsyncClient, Client
from tests.support import ADMIN_TOKEN, Cluster, cluster


@dataclass
class Live:
    """A running API (and worker) and its URL."""

    url: str
    cluster: Cluster


@pytest.fixture
def live(fresh_db: str, tmp_path: Path) -> Iterator[Live]:
    with cluster(fresh_db, tmp_path, ORDINAUT_RATE_LIMIT_PER_MINUTE="0") as running:
        api = running.api()
        running.worker(concurrency=4)
        yield Live(f"http://127.0.0.1:{api.port}", running)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client the test drives: ``Client`` or ``AsyncClient``."""
    return str(request.param)


@pytest.fixture
def open_client(kind: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``async with open_client(url, token) as c``: a client of the test's kind (the
    environment's ORDINAUT_* variables removed, so only the arguments count)."""
    monkeypatch.delenv("ORDINAUT_URL", raising=False)
    monkeypatch.delenv("ORDINAUT_TOKEN", raising=False)

    @asynccontextmanager
    async def opened(
        url: str, token: str | None = ADMIN_TOKEN, **options: Any
    ) -> AsyncIterator[Client | AsyncClient]:
        if kind == "sync":
            with Client(url, token, **options) as client:
                yield client
        else:
            async with AsyncClient(url, token, **options) as asynchronous:
                yield asynchronous

    return opened
