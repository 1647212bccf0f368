"""The REST call a console page or action stands for, and what follows from it.

Each console route names the REST operation it mirrors (``Mirror("POST",
"/tasks/{task_id}/pause")``). The scopes it needs and the audit action it records are read
from that REST route, through the same functions the API uses (:func:`api.deps.route_auth`,
:func:`api.audit.action_entry`): a page or button demands exactly what the REST call
demands, and leaves the same trace in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from api.audit import action_entry
from api.deps import Principal, route_auth
from api.openapi import api_routes
from engine.errors import PermissionDenied
from store import audit as audit_store
from store.db import Connection


@dataclass(frozen=True)
class Mirror:
    """A REST operation: its method and route template."""

    method: str
    path: str

    def route(self, app: FastAPI) -> APIRoute:
        """The API's route for this operation (a KeyError names a mirror that has none)."""
        routes: dict[tuple[str, str], APIRoute] | None = getattr(
            app.state, "console_rest_routes", None
        )
        if routes is None:
            routes = {
                (method, path): route
                for path, route in api_routes(app)
                for method in route.methods or ()
            }
            app.state.console_rest_routes = routes
        return routes[(self.method, self.path)]

    def scopes(self, app: FastAPI) -> frozenset[str]:
        return route_auth(self.route(app)).scopes

    def allows(self, app: FastAPI, principal: Principal) -> bool:
        """Whether ``principal`` may make this REST call."""
        return all(principal.has(scope) for scope in self.scopes(app))

    def require(self, app: FastAPI, principal: Principal) -> None:
        """403 unless ``principal`` may make this REST call."""
        missing = sorted(scope for scope in self.scopes(app) if not principal.has(scope))
        if missing:
            raise PermissionDenied(f"this needs the {missing[0]!r} scope")


@dataclass(frozen=True)
class Done:
    """One object an action changed, for the audit log."""

    subject_id: str | None
    status: int = 200
    result_id: str | None = None


async def record(
    conn: Connection,
    request: Request,
    mirror: Mirror,
    principal: Principal,
    done: Sequence[Done],
) -> None:
    """Write the audit entries the REST call would have written, one per object changed."""
    route = mirror.route(request.app)
    request_id = getattr(request.state, "request_id", None)
    entries = []
    for item in done:
        extra: dict[str, Any] = {"via": "console"}
        if item.result_id is not None and item.result_id != item.subject_id:
            extra["result_id"] = item.result_id
        entries.append(
            action_entry(
                route,
                mirror.method,
                principal=principal,
                subject_id=item.subject_id,
                status=item.status,
                request_id=request_id,
                extra=extra,
            )
        )
    await audit_store.insert_entries(conn, entries)


TASKS_LIST = Mirror("GET", "/tasks")
TASK_READ = Mirror("GET", "/tasks/{task_id}")
TASK_PAUSE = Mirror("POST", "/tasks/{task_id}/pause")
TASK_RESUME = Mirror("POST", "/tasks/{task_id}/resume")
TASK_CANCEL = Mirror("POST", "/tasks/{task_id}/cancel")
TASK_SNOOZE = Mirror("POST", "/tasks/{task_id}/snooze")
TASK_RUN_NOW = Mirror("POST", "/tasks/{task_id}/run_now")
RUNS_LIST = Mirror("GET", "/runs")
RUN_READ = Mirror("GET", "/runs/{run_id}")
RUN_CANCEL = Mirror("POST", "/runs/{run_id}/cancel")
RUN_RETRY = Mirror("POST", "/runs/{run_id}/retry")
TOOLS_LIST = Mirror("GET", "/tools")
TOOL_READ = Mirror("GET", "/tools/{address}")
AGENTS_LIST = Mirror("GET", "/agents")
AGENT_READ = Mirror("GET", "/agents/{agent_id}")
AGENT_CREATE = Mirror("POST", "/agents")
AGENT_DELETE = Mirror("DELETE", "/agents/{agent_id}")
AGENT_TOKEN = Mirror("POST", "/agents/{agent_id}/tokens")
AUDIT_LIST = Mirror("GET", "/audit")
WORKERS_LIST = Mirror("GET", "/workers")
ALL = (
    TASKS_LIST,
    TASK_READ,
    TASK_PAUSE,
    TASK_RESUME,
    TASK_CANCEL,
    TASK_SNOOZE,
    TASK_RUN_NOW,
    RUNS_LIST,
    RUN_READ,
    RUN_CANCEL,
    RUN_RETRY,
    TOOLS_LIST,
    TOOL_READ,
    AGENTS_LIST,
    AGENT_READ,
    AGENT_CREATE,
    AGENT_DELETE,
    AGENT_TOKEN,
    AUDIT_LIST,
    WORKERS_LIST,
)
