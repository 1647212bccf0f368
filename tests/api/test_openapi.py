"""The OpenAPI document is truthful: every route with its scope, its errors in the common
format, its audit action, and examples (the quick-start task among them, which works)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from api.deps import route_auth
from api.openapi import api_routes
from engine.document import STEP_SCHEMA, TASK_SCHEMA
from engine.examples import QUICK_START_TASK

PUBLIC = {("get", "/health"), ("get", "/health/ready"), ("get", "/metrics")}
ERROR_REF = "#/components/schemas/ErrorResponse"


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def error_ref(operation: dict[str, Any], status: int) -> str:
    response = operation["responses"][str(status)]
    return response["content"]["application/json"]["schema"]["$ref"]


async def test_every_route_is_documented(app: FastAPI, client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    documented = {(m, p) for m, p, _ in operations(document)}
    for path, route in api_routes(app):
        for method in route.methods or ():
            assert (method.lower(), path) in documented, f"{method} {path} missing"


async def test_scopes_errors_and_audit_actions_are_declared(app: FastAPI, client):
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    routes = {(m.lower(), p): r for p, r in api_routes(app) for m in r.methods or ()}
    for method, path, operation in operations(document):
        label = f"{method.upper()} {path}"
        if (method, path) in PUBLIC:
            assert operation["security"] == [], label
            continue
        auth = route_auth(routes[(method, path)])
        assert operation["security"] == [{"HTTPBearer": sorted(auth.scopes)}], label
        assert operation["x-required-scope"] == auth.label, label
        scope_note = f"`{auth.label}`" if auth.scopes else "any valid token"
        assert scope_note in operation["description"], label
        for status in (401, 429, 503):
            assert error_ref(operation, status) == ERROR_REF, (label, status)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], label
        assert "Retry-After" in operation["responses"]["429"]["headers"], label
        if auth.scopes:
            assert error_ref(operation, 403) == ERROR_REF, label
        if "{" in path:
            assert error_ref(operation, 404) == ERROR_REF, label
        if method in ("post", "put", "patch"):
            assert error_ref(operation, 413) == ERROR_REF, label
        if operation.get("parameters"):
            assert error_ref(operation, 422) == ERROR_REF, label
        for response in operation["responses"].values():
            assert "X-Request-ID" in response["headers"], label
        mutating = method in ("post", "put", "patch", "delete") and not auth.read_only
        assert ("x-audit-action" in operation) == mutating, label


async def test_the_quick_start_example_is_the_task_schema_and_works(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    media = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert media["schema"] == {"$ref": "#/components/schemas/TaskCreate"}
    schemas = document["components"]["schemas"]
    create = schemas["TaskCreate"]
    assert create["properties"]["payload"] == {"$ref": "#/components/schemas/TaskPayload"}
    assert {**create["properties"], "payload": TASK_SCHEMA["properties"]["payload"]} == (
        TASK_SCHEMA["properties"]
    )
    assert create["required"] == TASK_SCHEMA["required"]
    step_ref = schemas["TaskPayload"]["properties"]["pipeline"]["items"]
    assert schemas[step_ref["$ref"].rsplit("/", 1)[1]] == STEP_SCHEMA
    example = media["example"]
    assert example["payload"]["pipeline"][0]["uses"] == "debug.echo"
    created = await client.post("/tasks", json=example)
    assert created.status_code == 201, created.text
    header = {p["name"]: p for p in document["paths"]["/tasks"]["post"]["parameters"]}[
        "Idempotency-Key"
    ]
    assert header["in"] == "header" and header["required"] is False


async def test_request_and_response_schemas_carry_examples(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["AgentCreate"]["examples"]
    assert schemas["AgentWithToken"]["properties"]["token"]["examples"]
    assert schemas["ErrorResponse"]["properties"]["error"]
    not_found = document["paths"]["/tasks/{task_id}"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["example"]["error"]["code"] == "not_found"


async def test_every_task_answer_is_the_task_component(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    task_ref = {"$ref": "#/components/schemas/Task"}
    answers = [
        ("post", "/tasks", "201"),
        ("get", "/tasks/{task_id}", "200"),
        ("patch", "/tasks/{task_id}", "200"),
        ("post", "/tasks/{task_id}/pause", "200"),
        ("post", "/tasks/{task_id}/snooze", "200"),
    ]
    for method, path, status in answers:
        response = document["paths"][path][method]["responses"][status]
        assert response["content"]["application/json"]["schema"] == task_ref, (method, path)
    task = document["components"]["schemas"]["Task"]
    created = await client.post("/tasks", json=QUICK_START_TASK)
    assert set(created.json()) == set(task["properties"]) == set(task["required"])
