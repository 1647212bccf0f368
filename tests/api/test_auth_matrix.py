"""The authorization matrix: every API route of the app (enumerated, so routes added later
are included) x no token, bad tokens, a revoked token, the wrong scope, the right scope,
and another agent's object.

A route with a path parameter this file does not know fails the test until someone says
whether that parameter names an agent's own object (isolation: another agent's → 404) or a
shared one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.deps import route_auth
from api.openapi import api_routes
from engine.tokens import SCOPES
from tests.api.conftest import AgentHandle, client_for, quick_task
from tests.support import ADMIN_TOKEN

# Routes anyone may call (DESIGN section 4). Everything else needs a token.
PUBLIC = {("GET", "/health"), ("GET", "/health/ready"), ("GET", "/metrics")}
PUBLIC_DOCS = ("/openapi.json", "/docs", "/docs/static/swagger-ui-bundle.js")
# Path parameters naming an object that belongs to one agent: another agent gets a 404.
OWNED_PARAMS = {"task_id", "run_id"}
# Path parameters naming shared or admin-managed objects (no per-agent ownership).
SHARED_PARAMS = {"agent_id", "address"}
NON_ADMIN_SCOPES = [scope for scope in SCOPES if scope != "admin"]


class Objects:
    """A fresh owner agent with a task and a queued run, per route (routes may delete)."""

    def __init__(self, owner: AgentHandle, task_id: str, run_id: str, victim: str) -> None:
        self.owner = owner
        self.values = {
            "task_id": task_id,
            "run_id": run_id,
            "agent_id": victim,
            "address": "debug.echo",
        }

    def path(self, template: str) -> str:
        for name, value in self.values.items():
            template = template.replace("{" + name + "}", value)
            template = template.replace("{" + name + ":path}", value)
        return template


async def make_objects(make_agent: Any) -> Objects:
    owner = await make_agent(*NON_ADMIN_SCOPES)
    created = await owner.client.post("/tasks", json=quick_task())
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    queued = await owner.client.post(f"/tasks/{task_id}/run_now")
    assert queued.status_code == 202, queued.text
    victim = await make_agent("tasks:read")
    return Objects(owner, task_id, queued.json()["id"], victim.id)


def sample(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A small value satisfying ``schema`` (enough to get past body validation)."""
    if "$ref" in schema:
        return sample(components[schema["$ref"].rsplit("/", 1)[1]], components, depth)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return sample(options[0], components, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: sample(properties[name], components, depth + 1)
            for name in schema.get("required", [])
        }
    if kind == "array":
        count = schema.get("minItems", 0)
        return [sample(schema.get("items", {}), components, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return "x" * max(1, schema.get("minLength", 1))
    return {}


def body_for(openapi: dict[str, Any], path: str, method: str) -> Any:
    operation = openapi["paths"][path][method.lower()]
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    return sample(media.get("schema", {}), openapi.get("components", {}).get("schemas", {}))


async def call(
    http: httpx.AsyncClient, method: str, url: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if body is not None:
        kwargs["json"] = body
    return await http.request(method, url, **kwargs)


def is_stream(openapi: dict[str, Any], path: str, method: str) -> bool:
    """Whether the route answers an endless stream (server-sent events)."""
    answers = openapi["paths"][path][method.lower()]["responses"]
    return "text/event-stream" in answers.get("200", {}).get("content", {})


async def stream_status(app: FastAPI, method: str, url: str, token: str) -> int:
    """The status a streaming route answers; then the client goes away (httpx's ASGI
    transport waits for the whole body, which a stream never finishes)."""
    path, _, query = url.partition("?")
    started, gone = asyncio.Event(), asyncio.Event()
    answer: dict[str, int] = {}
    requested = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            started.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"api"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("api", 80),
    }
    served = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(started.wait(), timeout=10)
    gone.set()
    await asyncio.wait_for(served, timeout=10)
    return answer["status"]


def assert_error(response: httpx.Response, status: int, label: str) -> None:
    assert response.status_code == status, f"{label}: {response.status_code} {response.text}"
    error = response.json()["error"]
    assert error["code"] and error["message"], label
    assert error["request_id"] == response.headers["x-request-id"], label


def test_every_route_declares_its_requirement(app: FastAPI):
    routes = list(api_routes(app))
    assert len(routes) >= 20
    for path, route in routes:
        for method in route.methods or ():
            auth = route_auth(route)
            if (method, path) in PUBLIC:
                assert not auth.authenticated, f"{method} {path} should be public"
            else:
                assert auth.authenticated, f"{method} {path} has no require()/Caller dependency"
        params = set(route.param_convertors)
        unknown = params - OWNED_PARAMS - SHARED_PARAMS
        assert not unknown, f"{path}: classify the path parameter(s) {unknown} in this test"


async def test_the_matrix(app: FastAPI, client: httpx.AsyncClient, make_agent: Any):
    openapi = (await client.get("/openapi.json")).json()
    anonymous = client_for(app)
    other = await make_agent(*NON_ADMIN_SCOPES)  # never owns the objects below
    revoked = await make_agent(*NON_ADMIN_SCOPES)
    assert (await client.post(f"/agents/{revoked.id}/tokens")).status_code == 201
    by_scopes: dict[frozenset[str], AgentHandle] = {}
    checked = 0
    async with anonymous:
        for path, route in api_routes(app):
            auth = route_auth(route)
            for method in sorted(route.methods or ()):
                if (method, path) in PUBLIC:
                    response = await anonymous.request(method, path)
                    assert response.status_code == 200, f"{method} {path}: {response.text}"
                    continue
                objects = await make_objects(make_agent)
                url = objects.path(path)
                body = body_for(openapi, path, method)
                label = f"{method} {path}"

                response = await call(anonymous, method, url, body)
                assert_error(response, 401, f"{label} without a token")
                assert response.headers["www-authenticate"] == "Bearer"
                if body is not None:  # a broken body must not be judged before the token
                    for raw in (b"{broken", b"\xff\xfe"):
                        response = await anonymous.request(
                            method, url, content=raw, headers={"content-type": "application/json"}
                        )
                        assert_error(response, 401, f"{label} without a token, broken body")
                for bad in ("Bearer nope", "Bearer ", "Basic YWRtaW46YWRtaW4=", "ord_x"):
                    response = await call(anonymous, method, url, body, {"Authorization": bad})
                    assert_error(response, 401, f"{label} with {bad!r}")
                response = await call(revoked.client, method, url, body)
                assert_error(response, 401, f"{label} with a revoked token")

                if auth.scopes:
                    lacking = frozenset(NON_ADMIN_SCOPES) - auth.scopes
                    if lacking not in by_scopes:
                        by_scopes[lacking] = await make_agent(*sorted(lacking))
                    response = await call(by_scopes[lacking].client, method, url, body)
                    assert_error(response, 403, f"{label} without {sorted(auth.scopes)}")
                    if body is not None:
                        response = await by_scopes[lacking].client.request(
                            method,
                            url,
                            content=b"{broken",
                            headers={"content-type": "application/json"},
                        )
                        assert_error(response, 403, f"{label} without the scope, broken body")

                if set(route.param_convertors) & OWNED_PARAMS:
                    response = await call(other.client, method, url, body)
                    assert_error(response, 404, f"{label} on another agent's object")

                if is_stream(openapi, path, method):
                    owner_status = await stream_status(app, method, url, objects.owner.token)
                    assert owner_status == 200, f"{label} by the owner: {owner_status}"
                    admin_status = await stream_status(app, method, url, ADMIN_TOKEN)
                    assert admin_status == 200, f"{label} as admin: {admin_status}"
                    checked += 1
                    continue
                if "admin" not in auth.scopes:  # the owner's own call passes auth
                    response = await call(objects.owner.client, method, url, body)
                    assert response.status_code not in (401, 403, 404), (
                        f"{label} by the owner: {response.status_code} {response.text}"
                    )
                response = await call(client, method, url, body)  # admin passes everything
                assert response.status_code not in (401, 403), f"{label} as admin"
                checked += 1
    assert checked >= 15


@pytest.mark.parametrize("path", PUBLIC_DOCS)
async def test_docs_are_public(app: FastAPI, path: str):
    async with client_for(app) as anonymous:
        response = await anonymous.get(path)
    assert response.status_code == 200


async def test_a_deleted_agent_is_refused_at_once_on_every_kind_of_route(
    client: httpx.AsyncClient, make_agent: Any
):
    agent = await make_agent(*NON_ADMIN_SCOPES)
    assert (await agent.client.get("/tasks")).status_code == 200
    assert (await client.delete(f"/agents/{agent.id}")).status_code == 204
    for method, path in (("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/agents/me")):
        response = await agent.client.request(method, path, json=quick_task())
        assert response.status_code == 401, (method, path, response.text)
