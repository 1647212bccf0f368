"""The OpenAPI document, completed from what the routes declare.

Routers state their scope with the dependencies of :mod:`api.deps`; this module reads it
back (:func:`api.deps.route_auth`) and adds to every operation, including routes added
later: the security requirement with the scope, the scope in the description and as
``x-required-scope``, the audit action as ``x-audit-action``, and the error answers every
route can give (401, 403, 404, 405, 413, 422, 429, 500, 503) in the one error format, so a
generated client returns the error body instead of raising on an undeclared status. FastAPI's own
validation-error schema is replaced by that format, which is what the API really answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.audit import is_audited, route_audit
from api.body import BODY_COMPONENTS
from api.components import COMPONENTS
from api.deps import BEARER_SCHEME, route_auth
from api.schemas import ErrorResponse

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id: the client's `X-Request-ID` when well formed "
        "(1..128 of `A-Za-z0-9._:-`), else a new one. Also in every error body.",
        "schema": {"type": "string"},
    }
}
_ERROR_EXAMPLES: dict[int, tuple[str, str, str]] = {
    401: ("unauthenticated", "missing bearer token (Authorization: Bearer <token>)", ""),
    403: ("forbidden", "this call needs the 'tasks:write' scope", ""),
    404: ("not_found", "task 0b6c2f6e-8d1e-4f7a-9a3e-2f1d5c4b3a21 not found", ""),
    409: ("conflict", "Idempotency-Key 'k1' was already used with a different request", ""),
    405: ("method_not_allowed", "Method Not Allowed", ""),
    413: ("payload_too_large", "request body larger than 1048576 bytes", ""),
    422: ("validation_error", "$.schedule_expr: not a valid cron expression", "$.schedule_expr"),
    429: ("rate_limited", "rate limit of 600 requests per minute exceeded; retry in 1 s", ""),
    500: ("internal", "internal error (this is a bug)", ""),
    503: ("store_unavailable", "database unavailable: PoolTimeout", ""),
}
_ERROR_TEXT = {
    401: "Missing, invalid or revoked token.",
    403: "The token lacks the required scope.",
    404: "Not found, or not yours (another agent's objects are never revealed).",
    409: "Conflict.",
    405: "The path does not serve this method; `Allow` lists those it serves.",
    413: "The request body is over `ORDINAUT_MAX_BODY_BYTES`.",
    422: "Invalid input; `details` names each problem by its path "
    "(`$.field` in the body, `query.name` — an unknown query parameter too —, `path.name`, "
    "`header.name`).",
    429: "Over the agent's rate limit; `Retry-After` says how many seconds to wait.",
    500: "A bug in the server (details in its log, under the same request id).",
    503: "The database cannot be reached; retry later.",
}


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every API route of ``app`` as ``(path template, route)``, through included routers.
    Routes outside the OpenAPI document (the web console's) are not API routes.

    The route is the object the router puts in ``scope["route"]`` when it serves a request,
    so what is derived from it here (scope, audit action) is what the middleware sees.
    """
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield context.path_format or route.path_format, route


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the completed document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(_error_schemas())
    components.update(COMPONENTS)
    components.update(BODY_COMPONENTS)
    for path, route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                _complete(route, method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _error_schemas() -> dict[str, Any]:
    document = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = document.pop("$defs", {})
    schemas["ErrorResponse"] = document
    return schemas


def _complete(route: APIRoute, method: str, operation: dict[str, Any]) -> None:
    auth = route_auth(route)
    notes: list[str] = []
    if auth.authenticated:
        operation["security"] = [{BEARER_SCHEME: sorted(auth.scopes)}]
        operation["x-required-scope"] = auth.label
        notes.append(
            f"**Scope:** `{auth.label}` (or `admin`)."
            if auth.scopes
            else "**Scope:** any valid token."
        )
    else:
        operation["security"] = []
        notes.append("**No authentication.**")
    if is_audited(route, method):
        action = route_audit(route).action(method)
        operation["x-audit-action"] = action
        notes.append(f"Recorded in the audit log as `{action}`.")
    description = operation.get("description", "")
    operation["description"] = " ".join(notes) + ("\n\n" + description if description else "")
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in _error_statuses(route, method, operation, auth.authenticated, auth.scopes):
        _error_response(responses, status)
    for response in responses.values():
        if isinstance(response, dict) and "$ref" not in response:
            response.setdefault("headers", {}).update(_REQUEST_ID_HEADER)


def _error_statuses(
    route: APIRoute,
    method: str,
    operation: dict[str, Any],
    authenticated: bool,
    scopes: frozenset[str],
) -> list[int]:
    # Every route: a wrong method (405), an unknown query parameter (422), a bug (500).
    statuses = [405, 422, 500]
    if authenticated:
        statuses += [401, 429, 503]
        if scopes:
            statuses.append(403)
    if route.param_convertors:
        statuses.append(404)
    if method in ("POST", "PUT", "PATCH"):
        statuses.append(413)
    return sorted(statuses)


def _error_response(responses: dict[str, Any], status: int) -> None:
    """Document ``status`` with the common error body, keeping a route's own description."""
    existing = responses.get(str(status), {})
    code, message, path = _ERROR_EXAMPLES[status]
    example = {
        "error": {
            "code": code,
            "message": message,
            "details": [{"path": path, "message": "…", "type": "invalid"}] if path else [],
            "request_id": "8f14e45fceea167a5a36dedd4bea2543",
        }
    }
    description = existing.get("description")
    if not description or description in ("Validation Error", "Successful Response"):
        description = _ERROR_TEXT[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR_REF, "example": example}},
    }
    if status == 405:
        response["headers"] = {
            "Allow": {"description": "The methods the path serves.", "schema": {"type": "string"}}
        }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
        }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    responses[str(status)] = response
