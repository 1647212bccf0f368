"""The OpenAPI document is truthful: every route with its scope, its errors in the common
format, its audit action, and examples (the quick-start task among them, which works)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI

from api.components import ENUM_COMPONENTS
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
    # The document's enums are components of their own (one enum type in generated clients),
    # each exactly the engine's declaration.
    properties = dict(create["properties"])
    for field, name in ENUM_COMPONENTS.items():
        assert properties[field] == {"$ref": f"#/components/schemas/{name}"}
        properties[field] = {k: v for k, v in schemas[name].items() if k != "type"}
    assert {**properties, "payload": TASK_SCHEMA["properties"]["payload"]} == (
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


def walk_schemas(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, schema-like dict) in ``node``."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += walk_schemas(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk_schemas(value, f"{path}[{index}]")
    return found


async def test_operation_ids_are_explicit_short_and_unique(app: FastAPI, client):
    document = (await client.get("/openapi.json")).json()
    seen = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(seen) == len(set(seen))
    for path, route in api_routes(app):
        assert route.operation_id, f"{path} has no explicit operation_id"
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", route.operation_id), route.operation_id
    tasks = {op["operationId"] for m, p, op in operations(document) if p.startswith("/tasks")}
    assert {"tasks_create", "tasks_list", "tasks_get", "tasks_run_now"} <= tasks


async def test_every_timestamp_is_a_date_time(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    timestamps = 0
    for name, schema in document["components"]["schemas"].items():
        for field, spec in (schema.get("properties") or {}).items():
            if field.endswith("_at") or field in ("scheduled_for", "at"):
                variants = spec.get("anyOf", [spec])
                formats = [v.get("format") for v in variants if v.get("type") != "null"]
                assert formats == ["date-time"], (name, field, spec)
                timestamps += 1
    assert timestamps >= 20


async def test_components_are_named_and_reused(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in ("Run", "StepResult", "RunError", "Task", "TaskCreate", "TaskPatch", "Readiness"):
        assert name in schemas, name
    run_answer = document["paths"]["/runs/{run_id}"]["get"]["responses"]["200"]
    assert run_answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Run"
    }
    # No inline object schema for a request body: each is a named component.
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            assert set(schema) == {"$ref"}, (method, path)
    assert schemas["ErrorInfo"]["required"] == ["code", "message", "details", "request_id"]
    list_runs = {p["name"]: p for p in document["paths"]["/runs"]["get"]["parameters"]}
    assert list_runs["status"]["schema"]["anyOf"][0] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/RunStatus"},
    }
    assert list_runs["trigger"]["schema"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/RunTrigger"
    }


async def test_tools_are_one_of_with_a_transport_discriminator(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    answer = document["paths"]["/tools/{address}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert {v["$ref"].rsplit("/", 1)[1] for v in schema["oneOf"]} == {
        "BuiltinTool",
        "HttpTool",
        "McpTool",
    }
    assert schema["discriminator"]["propertyName"] == "transport"


async def test_405_and_500_are_declared_everywhere_and_health_is_typed(client):
    document = (await client.get("/openapi.json")).json()
    for method, path, operation in operations(document):
        for status in (405, 422, 500):
            assert error_ref(operation, status) == ERROR_REF, (method, path, status)
    ready = document["paths"]["/health/ready"]["get"]["responses"]
    for answer in ("200", "503"):
        assert ready[answer]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Readiness"
        }
    assert "Liveness" in document["components"]["schemas"]
