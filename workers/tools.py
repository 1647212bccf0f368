"""The worker's tool caller: builtin, ``http`` and ``mcp`` transports behind one router.

Built once per worker process from the settings. It owns what must outlive a run: the
HTTP connection pools, the MCP sessions (stdio server processes) and the circuit breakers,
and it injects ``events.publish``, the one builtin that needs the database.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from engine.errors import StoreError, ToolFailed, ToolInputInvalid
from engine.pipeline import CallContext
from engine.schedules.events import TopicError, parse_topic
from engine.tools import ToolRouter
from engine.tools.breaker import CircuitBreakers
from engine.tools.builtin import BuiltinTransport, Handler
from engine.tools.http import HttpRequestTool, HttpTransport
from engine.tools.mcp import McpSessions, McpTransport
from engine.tools.ssrf import AllowList
from ops.settings import Settings
from store import events as events_store
from store.db import Connection

log = logging.getLogger("ordinaut.worker")

USER_AGENT = "ordinaut-worker"


@dataclass
class WorkerTools:
    """The router handed to the executor, and what to close at shutdown."""

    router: ToolRouter
    http_client: httpx.AsyncClient
    request_client: httpx.AsyncClient
    mcp: McpTransport

    async def aclose(self) -> None:
        await self.mcp.aclose()
        await self.http_client.aclose()
        await self.request_client.aclose()


def build_tools(settings: Settings, pool: AsyncConnectionPool[Connection]) -> WorkerTools:
    """Every transport, configured from ``settings``."""
    breakers = CircuitBreakers(
        failure_threshold=settings.breaker_failures,
        cooldown_seconds=settings.breaker_cooldown_seconds,
    )
    # Registered endpoints are trusted and reused: keep connections alive.
    http_client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
    # Agents' URLs: connections go to checked addresses; no keep-alive (a pooled TLS
    # connection must never serve another host name) and no proxies from the environment.
    request_client = httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    http_request = HttpRequestTool(
        request_client,
        allow=AllowList.parse(settings.http_allow),
        breakers=breakers,
        max_response_bytes=settings.http_max_response_bytes,
    )
    mcp = McpTransport(McpSessions(), breakers)
    builtin = BuiltinTransport(
        extra={"http.request": http_request, "events.publish": events_publisher(pool)}
    )
    http = HttpTransport(http_client, breakers, settings.http_max_response_bytes)
    router = ToolRouter({"builtin": builtin, "http": http, "mcp": mcp})
    return WorkerTools(router, http_client, request_client, mcp)


def events_publisher(pool: AsyncConnectionPool[Connection]) -> Handler:
    """``events.publish {topic, payload}``: publish as the task's owner and start only that
    owner's matching event tasks (even for an admin: a pipeline never starts other agents'
    tasks). Once per run and step: a retried run gets the first publication's answer."""

    async def publish(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
        try:
            topic = parse_topic(arguments["topic"])
        except TopicError as exc:
            raise ToolInputInvalid(f"events.publish: {exc}") from None
        owner = uuid.UUID(context.agent_id) if context.agent_id else None
        try:
            async with pool.connection() as conn, conn.transaction():
                event_id, runs = await events_store.publish_event(
                    conn,
                    topic=topic,
                    payload=arguments.get("payload", {}),
                    published_by=owner,
                    owner_filter=owner,
                    source=context.idempotency_key,  # a retried run does not publish twice
                )
        except (psycopg.Error, OSError, StoreError) as exc:
            raise ToolFailed(f"events.publish: {exc}", retryable=True) from None
        refs = [{"task_id": str(r["task_id"]), "run_id": str(r["run_id"])} for r in runs]
        return {"event_id": str(event_id), "runs": refs}

    return publish
