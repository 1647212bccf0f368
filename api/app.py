"""``create_app(settings)``: the FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.audit import AuditMiddleware
from api.console import install_console
from api.docs import install_docs
from api.errors import install_error_handlers
from api.live import RunFeed
from api.mcp.http import McpEndpoint
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from api.openapi import install_openapi
from api.query import reject_unknown_query
from api.ratelimit import RateLimiter
from api.routers import (
    agents,
    audit,
    events,
    health,
    runs,
    schedules,
    task_lifecycle,
    tasks,
    tools,
    webhooks,
    workers,
)
from engine.catalog import Catalog, file_catalog
from engine.settings import Settings
from engine.tokens import display_prefix, hash_token
from observability import metrics
from store import agents as agents_store
from store import migrate
from store import tools as tools_store
from store.db import Connection, Pool, create_pool

log = logging.getLogger("ordinaut.api")

DESCRIPTION = """
Ordinaut schedules **tasks** for AI agents: a schedule (once, cron, RFC 5545 RRULE or an
event topic) plus a **pipeline** of tool calls whose arguments are `${...}` JMESPath
templates over earlier results.

Authenticate with `Authorization: Bearer <token>`. Each route names the scope it needs;
`admin` implies every scope. Errors always answer
`{"error": {"code", "message", "details": [{"path", "message", "type"}], "request_id"}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings`` (``settings.database_url`` must be set)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url")
    pool = create_pool(
        settings.database_url,
        max_size=settings.pool_max_size,
        name="ordinaut-api",
        timeout=settings.pool_timeout_seconds,
    )
    # One LISTEN connection per process for every waiting request and open stream.
    feed = RunFeed(settings, pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=False)
        await _bootstrap_admin(pool, settings)
        await feed.start()
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            await feed.close()
            await pool.close()

    app = FastAPI(
        title="Ordinaut",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.run_feed = feed
    app.state.catalog_provider = _catalog_provider
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    install_error_handlers(app)
    metrics.register("api")  # the HTTP metrics the middleware records
    # Added innermost first: RequestContext (request id, metrics, last-resort 500) wraps
    # BodyLimit (413 before parsing) wraps Audit (audit log, response hooks).
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    install_openapi(app)
    install_docs(app)
    for module in (
        health,
        tasks,
        task_lifecycle,
        schedules,
        events,
        runs,
        agents,
        tools,
        webhooks,
        audit,
        workers,
    ):
        app.include_router(module.router)
    mcp_endpoint = McpEndpoint(app, pool, settings)
    app.router.routes.extend(mcp_endpoint.routes())
    install_console(app)
    return app


async def _catalog_provider(conn: Connection) -> Catalog:
    """The files' tools plus the runtime tools (read fresh: submit-time validation must
    know a tool registered a moment ago)."""
    return file_catalog().with_tools(await tools_store.runtime_tool_specs(conn))


async def _bootstrap_admin(pool: Pool, settings: Settings) -> None:
    """Ensure the ``admin`` agent owns ``ORDINAUT_BOOTSTRAP_ADMIN_TOKEN`` (when set)."""
    token = settings.bootstrap_admin_token
    if not token:
        return
    async with pool.connection() as conn:
        at_head, reason = await migrate.is_at_head(conn)
        if not at_head:
            log.warning("bootstrap admin skipped: %s (run `ordinaut migrate`)", reason)
            return
        async with conn.transaction():
            await agents_store.ensure_admin_token(
                conn, token_hash=hash_token(token), prefix=display_prefix(token)
            )
