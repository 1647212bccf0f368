"""The scheduler's and workers' /metrics and /health server (observability/http.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from observability.http import HealthCheck, serve_metrics


class Health:
    """A health check whose answer the test changes."""

    def __init__(self) -> None:
        self.healthy = True
        self.fail = False

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.fail:
            raise RuntimeError("check crashed")
        return self.healthy, {"last_tick_age_seconds": 0.5}


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def base_url(health: HealthCheck) -> AsyncIterator[str]:
    server = await serve_metrics("127.0.0.1", 0, health)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_metrics_are_prometheus_text(base_url):
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in response.text


async def test_health_is_200_or_503_with_details(base_url, health):
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{base_url}/health?verbose=1")
        health.healthy = False
        bad = await client.get(f"{base_url}/health")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "last_tick_age_seconds": 0.5}
    assert bad.status_code == 503
    assert bad.json()["status"] == "unhealthy"


async def test_a_crashing_check_answers_500_and_the_server_survives(base_url, health):
    async with httpx.AsyncClient() as client:
        health.fail = True
        crashed = await client.get(f"{base_url}/health")
        health.fail = False
        after = await client.get(f"{base_url}/health")
    assert crashed.status_code == 500
    assert after.status_code == 200


async def test_other_paths_and_methods(base_url):
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{base_url}/nope")
        post = await client.post(f"{base_url}/metrics")
    assert missing.status_code == 404
    assert post.status_code == 405


async def test_garbage_and_silent_clients_do_not_break_it(base_url):
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x00" * 100_000 + b"\r\n\r\n")  # an over-long request line
    await writer.drain()
    await reader.read()  # the server closes the connection
    writer.close()
    _, idle = await asyncio.open_connection(host, int(port))
    idle.close()  # connects and leaves without a word
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{base_url}/metrics")).status_code == 200
