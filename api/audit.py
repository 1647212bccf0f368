"""The audit log of every mutating call, recorded by middleware so no router has to
remember it.

A call is *mutating* when its method is POST, PUT, PATCH or DELETE and the route needs a
scope that is not read-only (``POST /tasks/validate`` and the previews need only
``tasks:read`` and change nothing). When such a call is answered with a status below 400,
:class:`AuditMiddleware` writes one ``audit_log`` row: the actor (the authenticated agent),
the action (``tasks.create``, ``tasks.pause``, ``runs.cancel`` ... derived from the method
and the route template, or a route's ``openapi_extra={"x-audit-action": ...}``), the
subject (type from the path, id from the path parameters or the created object's ``id``),
details (method, route, status, the request body redacted and shortened) and the request id.

The row is written after the handler has finished and its connection is back in the pool,
and before the last byte of the response is sent: a client that has its answer can read
the entry. Writing it can never turn a success into an error: a failure (database down,
timeout) is logged and the response goes out unchanged.

The same moment serves *response hooks*: a dependency can ask to see the final status and
body (the ``Idempotency-Key`` support stores the answer this way); hooks run in the audit
entry's transaction, also for failed calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Principal, RouteAuth, route_auth
from observability.logging import redact
from store import audit as audit_store
from store.db import Connection

log = logging.getLogger("ordinaut.api.audit")

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_VERBS = {"POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}
_REQUEST_CAPTURE_BYTES = 64 * 1024
_RESPONSE_CAPTURE_BYTES = 1024 * 1024
_RECORD_TIMEOUT_SECONDS = 5.0
_MAX_STRING = 500
_MAX_ITEMS = 50
_MAX_DEPTH = 8
_MAX_SUMMARY_BYTES = 16 * 1024

ResponseHook = Callable[[Connection, int, bytes | None], Awaitable[None]]


def add_response_hook(request: Request, hook: ResponseHook) -> None:
    """Call ``hook(conn, status, body)`` once the response of this request is final."""
    hooks: list[ResponseHook] = request.scope.setdefault("state", {}).setdefault(
        "response_hooks", []
    )
    hooks.append(hook)


@dataclass(frozen=True)
class RouteAudit:
    """What the audit needs to know about a route, computed once per route."""

    auth: RouteAuth
    action_override: str | None
    subject_type: str
    first_param: str | None
    literals: tuple[str, ...]
    ends_with_param: bool

    def action(self, method: str) -> str:
        if self.action_override:
            return self.action_override
        name = ".".join(self.literals)
        if self.ends_with_param or len(self.literals) == 1:
            return f"{name}.{_VERBS.get(method, method.lower())}"
        return name


# id(route) -> (route, what the audit needs). Holding the route keeps its id from being
# reused by another object; routes live as long as the process anyway.
_ROUTE_CACHE: dict[int, tuple[APIRoute, RouteAudit]] = {}


def route_audit(route: APIRoute) -> RouteAudit:
    cached = _ROUTE_CACHE.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    segments = [s for s in route.path.strip("/").split("/") if s]
    params = [s[1:-1].split(":", 1)[0] for s in segments if s.startswith("{")]
    literals = tuple(s for s in segments if not s.startswith("{"))
    override = (route.openapi_extra or {}).get("x-audit-action")
    first = literals[0] if literals else "root"
    described = RouteAudit(
        auth=route_auth(route),
        action_override=override if isinstance(override, str) else None,
        subject_type=first[:-1] if first.endswith("s") else first,
        first_param=params[0] if params else None,
        literals=literals,
        ends_with_param=bool(segments) and segments[-1].startswith("{"),
    )
    _ROUTE_CACHE[id(route)] = (route, described)
    return described


def is_audited(route: APIRoute, method: str) -> bool:
    """Whether a successful ``method`` call of ``route`` is written to the audit log."""
    auth = route_audit(route).auth
    return method in MUTATING_METHODS and auth.authenticated and not auth.read_only


class AuditMiddleware:
    """Records audit entries and runs response hooks (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING_METHODS:
            await self.app(scope, receive, send)
            return
        request_body = bytearray()
        request_truncated = False
        status = 0
        replayed = False
        response_body = bytearray()
        response_truncated = False
        recorded = False

        async def tee_receive() -> Message:
            nonlocal request_truncated
            message = await receive()
            if message["type"] == "http.request" and not request_truncated:
                request_body.extend(message.get("body", b""))
                if len(request_body) > _REQUEST_CAPTURE_BYTES:
                    request_truncated = True
                    request_body.clear()
            return message

        async def intercept(message: Message) -> None:
            nonlocal status, replayed, response_truncated, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
                replayed = any(
                    name == b"idempotent-replayed" for name, _ in message.get("headers", [])
                )
            elif message["type"] == "http.response.body" and not recorded:
                if not response_truncated:
                    response_body.extend(message.get("body", b""))
                    if len(response_body) > _RESPONSE_CAPTURE_BYTES:
                        response_truncated = True
                        response_body.clear()
                if not message.get("more_body", False):
                    recorded = True
                    entry = None
                    if not replayed:
                        body = None if request_truncated else bytes(request_body)
                        entry = _entry(scope, status, body, response_body)
                    answer = None if response_truncated else bytes(response_body)
                    await _record(scope, status, answer, entry)
            await send(message)

        try:
            await self.app(scope, tee_receive, intercept)
        except Exception:
            if not recorded:
                recorded = True
                await _record(scope, 500, None, None)
            raise


async def _record(
    scope: Scope, status: int, response_body: bytes | None, entry: dict[str, Any] | None
) -> None:
    """Run the response hooks and write the audit entry; never raises."""
    hooks: list[ResponseHook] = scope.get("state", {}).get("response_hooks", [])
    if not hooks and entry is None:
        return
    try:
        async with asyncio.timeout(_RECORD_TIMEOUT_SECONDS):
            async with scope["app"].state.pool.connection() as conn:
                if not hooks:  # one statement: autocommit, no BEGIN/COMMIT round trips
                    assert entry is not None  # returned above otherwise
                    await audit_store.insert_entries(conn, [entry])
                    return
                async with conn.transaction():
                    for hook in hooks:
                        await hook(conn, status, response_body)
                    if entry is not None:
                        await audit_store.insert_entries(conn, [entry])
    except Exception:
        log.error(
            "could not record the audit entry or response hooks of %s %s",
            scope["method"],
            scope.get("path"),
            exc_info=True,
        )


def _entry(
    scope: Scope, status: int, request_body: bytes | None, response_body: bytes | bytearray
) -> dict[str, Any] | None:
    """The audit row for a finished call, or None when the call is not audited (checked
    before the response is parsed: most answers are never looked at)."""
    route = scope.get("route")
    if status >= 400 or not isinstance(route, APIRoute):
        return None
    method = scope["method"]
    if not is_audited(route, method):
        return None
    response = _json_or_none(response_body)
    described = route_audit(route)
    principal: Principal | None = scope.get("state", {}).get("principal")
    path_params: dict[str, Any] = scope.get("path_params", {})
    subject_id = _subject_id(described, path_params, response)
    details: dict[str, Any] = {"method": method, "route": route.path, "status": status}
    mcp_tool = scope.get("state", {}).get("mcp_tool")
    if mcp_tool is not None:  # set by the MCP endpoint's in-process calls only
        details["mcp_tool"] = mcp_tool
    if isinstance(response, dict) and response.get("id") is not None:
        result_id = str(response["id"])
        if result_id != subject_id:
            details["result_id"] = result_id
    query = scope.get("query_string", b"")
    if query:
        details["query"] = summarize(dict(parse_qsl(query.decode("latin-1"))))
    if request_body is None:
        details["body"] = {"truncated": True}
    elif request_body:
        details["body"] = summarize_body(request_body)
    return {
        "actor_id": principal.agent_id if principal else None,
        "actor_name": principal.name if principal else None,
        "action": described.action(method),
        "subject_type": described.subject_type,
        "subject_id": subject_id,
        "details": details,
        "request_id": scope.get("state", {}).get("request_id"),
    }


def action_entry(
    route: APIRoute,
    method: str,
    *,
    principal: Principal,
    subject_id: str | None,
    status: int,
    request_id: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The audit row of ``method`` on ``route`` performed by other means than the REST call
    (the web console): the same action and subject type as the call would record."""
    described = route_audit(route)
    details: dict[str, Any] = {"method": method, "route": route.path, "status": status}
    return {
        "actor_id": principal.agent_id,
        "actor_name": principal.name,
        "action": described.action(method),
        "subject_type": described.subject_type,
        "subject_id": subject_id,
        "details": {**details, **(extra or {})},
        "request_id": request_id,
    }


def _subject_id(described: RouteAudit, path_params: dict[str, Any], response: Any) -> str | None:
    if described.first_param is not None and described.first_param in path_params:
        return str(path_params[described.first_param])
    if isinstance(response, dict):
        for key in ("id", f"{described.subject_type}_id", "address"):
            if response.get(key) is not None:
                return str(response[key])
    return None


def _json_or_none(raw: bytes | bytearray) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def summarize_body(raw: bytes) -> Any:
    """A request body as the audit log keeps it: JSON with secret-looking keys redacted,
    long strings and lists shortened; a note for anything else."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return {"non_json_bytes": len(raw)}
    return summarize(document)


def summarize(value: Any) -> Any:
    summary = _shorten(redact(value), 0)
    if len(json.dumps(summary, default=str)) <= _MAX_SUMMARY_BYTES:
        return summary
    if isinstance(summary, dict):
        return {"truncated": True, "keys": sorted(str(k) for k in summary)[:_MAX_ITEMS]}
    return {"truncated": True}


def _shorten(value: Any, depth: int) -> Any:
    if depth >= _MAX_DEPTH and isinstance(value, dict | list):
        return "…"
    if isinstance(value, str):
        return value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…"
    if isinstance(value, list):
        items = [_shorten(item, depth + 1) for item in value[:_MAX_ITEMS]]
        return items + (["…"] if len(value) > _MAX_ITEMS else [])
    if isinstance(value, dict):
        return {
            str(key): _shorten(item, depth + 1)
            for key, item in list(value.items())[: _MAX_ITEMS * 4]
        }
    return value
