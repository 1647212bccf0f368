"""The fleet and the catalog: workers and schedulers, and the tools with their schemas.

The registry of workers and schedulers (hosts, pids) is for admins, as ``GET /workers`` is;
the catalog needs ``tools:read`` as ``GET /tools`` does, and a runtime tool's endpoint or
server (which may carry credentials) only shows to admins, as there.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.console.mirror import TOOL_READ, TOOLS_LIST, WORKERS_LIST
from api.console.render import page
from api.console.routing import Signed, allowed, router
from api.deps import Conn
from api.operations import tools as operations
from engine.clock import now_utc
from store import stats
from store import workers as workers_store

SCHEDULER_SILENT_SECONDS = 60.0


@router.get("/workers")
async def workers_page(request: Request, session: Signed, conn: Conn) -> Response:
    allowed(request, session, WORKERS_LIST)
    now = now_utc()
    workers = await workers_store.list_workers(conn)
    schedulers = await stats.list_schedulers(conn)
    return page(
        request,
        "workers.html",
        session,
        workers=workers,
        schedulers=[
            {**s, "live": (now - s["last_seen_at"]).total_seconds() < SCHEDULER_SILENT_SECONDS}
            for s in schedulers
        ],
        slots=sum(w["concurrency"] for w in workers if w["live"]),
        busy=sum(w["inflight"] for w in workers if w["live"]),
    )


@router.get("/tools")
async def tools_page(request: Request, session: Signed, conn: Conn) -> Response:
    principal = allowed(request, session, TOOLS_LIST).principal
    tools = await operations.all_tools(conn, principal)
    return page(request, "tools.html", session, tools=tools)


@router.get("/tools/{address}")
async def tool_page(request: Request, address: str, session: Signed, conn: Conn) -> Response:
    principal = allowed(request, session, TOOL_READ).principal
    tool = await operations.one_tool(conn, principal, address)
    return page(request, "tool.html", session, tool=tool)
