"""The API's /health, /health/ready and /metrics: no token, truthful readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from api.app import create_app
from engine.settings import Settings
from tests.conftest import drop_database, empty_database


@asynccontextmanager
async def client_for(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of a fresh app whose lifespan (the pool) is running."""
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_liveness_needs_no_token_and_no_database():
    async with client_for("postgresql://127.0.0.1:1/nothing") as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "instance": None}


async def test_ready_when_the_database_is_migrated(shared_db_url):
    async with client_for(shared_db_url) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "reason": "migrations at head", "instance": None}


async def test_not_ready_when_migrations_are_missing(server_url):
    url = empty_database(server_url)
    try:
        async with client_for(url) as client:
            response = await client.get("/health/ready")
    finally:
        drop_database(server_url, url)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "migrations not at head" in body["reason"]


async def test_not_ready_when_the_database_is_unreachable():
    async with client_for("postgresql://127.0.0.1:1/nothing") as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["reason"]


async def test_metrics_count_requests_by_route_template(shared_db_url):
    async with client_for(shared_db_url) as client:
        await client.get("/health")
        await client.get("/tasks/00000000-0000-0000-0000-000000000000")  # 401, templated
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'ordinaut_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="/tasks/{task_id}",status="401"' in text
    assert "00000000-0000" not in text  # raw paths never become labels
    assert "ordinaut_http_request_duration_seconds_bucket" in text
