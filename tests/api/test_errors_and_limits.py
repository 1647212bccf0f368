"""One error format for every 4xx/5xx, request ids, and the limits: body size (413),
rate (429), page size."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from tests.api.conftest import client_for, quick_task
from tests.support import ADMIN_TOKEN

QUICK_TASK_PIPELINE = [{"id": "e", "uses": "debug.echo", "with": {"x": 1}}]


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient):
    error_of(await client.get("/nowhere"), 404, "not_found")
    response = await client.put("/tasks")
    error_of(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_me_is_not_mistaken_for_an_agent_id(client: httpx.AsyncClient):
    response = await client.delete("/agents/me")
    error_of(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, PATCH"
    # PATCH /agents/me sets the caller's webhook URL; it is not PATCH /agents/{id}.
    renamed = await client.patch("/agents/me", json={"name": "x"})
    assert error_of(renamed, 422, "validation_error")["details"][-1]["path"] == "$.name"
    error_of(await client.get("/agents/not-a-uuid"), 404, "not_found")
    # Likewise for routes whose literal segment sits where another route has an id.
    literal = await client.get("/tasks/validate")
    error_of(literal, 405, "method_not_allowed")
    assert literal.headers["allow"] == "POST"


async def test_a_body_that_is_not_utf8_is_a_422(client: httpx.AsyncClient):
    for path in ("/agents", "/tasks"):
        response = await client.post(
            path, content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
        error = error_of(response, 422, "validation_error")
        assert error["details"][0]["path"] == "$"


async def test_query_and_path_validation_name_the_parameter(client: httpx.AsyncClient):
    error = error_of(await client.get("/tasks", params={"limit": 501}), 422, "validation_error")
    assert error["details"][0]["path"] == "query.limit"
    error = error_of(await client.get("/tasks", params={"limit": 0}), 422, "validation_error")
    assert error["details"][0]["path"] == "query.limit"
    error = error_of(await client.get("/tasks/not-a-uuid"), 422, "validation_error")
    assert error["details"][0]["path"] == "path.task_id"
    error = error_of(
        await client.get("/runs", params={"since": "yesterday"}), 422, "validation_error"
    )
    assert error["details"][0]["path"] == "query.since"
    error = error_of(
        await client.get("/tasks", params={"cursor": "bogus"}), 422, "validation_error"
    )
    assert error["details"][0]["path"] == "query.cursor"


async def test_body_validation_names_json_paths(client: httpx.AsyncClient):
    error = error_of(
        await client.post("/tasks", json={"title": 5, "payload": []}), 422, "validation_error"
    )
    assert {"$.title", "$.payload"} <= {d["path"] for d in error["details"]}
    broken = await client.post(
        "/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert error_of(broken, 422, "validation_error")["details"][0]["path"] == "$"
    deep = json.dumps({"title": "t", "payload": {"params": json.loads("[" * 200 + "]" * 200)}})
    error = error_of(await client.post("/tasks", content=deep), 422, "validation_error")
    assert "nested deeper" in error["message"]


async def test_nul_characters_are_422_not_500(client: httpx.AsyncClient):
    response = await client.get("/audit", params={"action": "tasks.\x00create"})
    error_of(response, 422, "validation_error")


async def test_values_jsonb_refuses_are_422_with_their_path(client: httpx.AsyncClient):
    def task(city: str) -> dict[str, Any]:
        return quick_task(payload={"params": {"city": city}, "pipeline": QUICK_TASK_PIPELINE})

    error = error_of(
        await client.post("/tasks", json=task("Chi\x00sinau")), 422, "validation_error"
    )
    assert error["details"][0]["path"] == "$.payload.params.city"
    assert "NUL" in error["details"][0]["message"]
    assert (await client.post("/tasks", json=task("a \\u0000 in text"))).status_code == 201
    for raw in ('"\\udc80"', "NaN", "-Infinity"):  # a lone surrogate, non-finite numbers
        body = json.dumps(task("Chisinau")).replace('"Chisinau"', raw)
        response = await client.post(
            "/tasks", content=body, headers={"content-type": "application/json"}
        )
        error_of(response, 422, "validation_error")


async def test_401_says_how_to_authenticate(app: FastAPI):
    async with client_for(app) as anonymous:
        response = await anonymous.get("/tasks")
    error_of(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_request_ids_are_accepted_echoed_and_replaced_when_malformed(
    client: httpx.AsyncClient,
):
    response = await client.get("/tasks", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"
    failed = await client.get("/nowhere", headers={"X-Request-ID": "trace-43"})
    assert failed.json()["error"]["request_id"] == "trace-43"
    replaced = await client.get("/tasks", headers={"X-Request-ID": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_an_unexpected_exception_is_a_500_in_the_common_format(app: FastAPI):
    @app.get("/test-only-boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("kaboom")

    async with client_for(app, ADMIN_TOKEN) as http:
        response = await http.get("/test-only-boom", headers={"X-Request-ID": "boom-1"})
    error = error_of(response, 500, "internal")
    assert "kaboom" not in response.text
    assert error["request_id"] == "boom-1"


async def test_a_body_over_the_limit_is_413_before_parsing(app_factory):
    app = await app_factory(max_body_bytes=1000)
    task = quick_task(description="x" * 2000)
    async with client_for(app, ADMIN_TOKEN) as http:
        declared = await http.post("/tasks", json=task)
        error_of(declared, 413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked upload
            raw = json.dumps(task).encode()
            for start in range(0, len(raw), 300):
                yield raw[start : start + 300]

        streamed = await http.post(
            "/tasks", content=chunks(), headers={"content-type": "application/json"}
        )
        error_of(streamed, 413, "payload_too_large")
        # Routes with a model body (parsed by FastAPI) get the same answer.
        big_agent = {"name": "n" * 100, "scopes": ["tasks:read"] * 200}
        error_of(await http.post("/agents", json=big_agent), 413, "payload_too_large")
        small = await http.post("/tasks", json=quick_task())
        assert small.status_code == 201
        assert (await http.get("/audit", params={"action": "tasks.create"})).json()["items"]


async def test_rate_limit_is_per_agent_with_retry_after(app_factory, fresh_db):
    app = await app_factory(rate_limit_per_minute=3)
    async with client_for(app, ADMIN_TOKEN) as admin:
        created = await admin.post("/agents", json={"name": "chatty", "scopes": ["tasks:read"]})
        statuses = [(await admin.get("/agents/me")).status_code for _ in range(2)]
        assert statuses == [200, 200]
        limited = await admin.get("/agents/me")
        error = error_of(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert "3 requests per minute" in error["message"]
    async with client_for(app, created.json()["token"]) as chatty:
        # Another agent has its own bucket.
        results = await asyncio.gather(*(chatty.get("/tasks") for _ in range(4)))
        assert sorted(r.status_code for r in results) == [200, 200, 200, 429]


async def test_page_sizes_are_bounded(client: httpx.AsyncClient):
    for path in ("/tasks", "/runs", "/agents", "/audit", "/tools"):
        assert (await client.get(path, params={"limit": 500})).status_code == 200, path
        response = await client.get(path, params={"limit": 501})
        assert response.status_code == 422, path
