"""The worker's tool caller: builtin, ``http`` and ``mcp`` transports behind one router.

Built once per worker process from the settings. It owns what must outlive a run: the
HTTP connection pools, the MCP sessions (stdio server processes) and the circuit breakers,
and it adds ``events.publish``, the one builtin that needs the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from engine.settings import Settings
from store.db import Pool
from workers.tools.breaker import CircuitBreakers
from workers.tools.builtin import BuiltinTransport
from workers.tools.events import events_publisher
from workers.tools.http import HttpRequestTool, HttpTransport
from workers.tools.mcp import McpSessions, McpTransport
from workers.tools.router import ToolRouter
from workers.tools.ssrf import AllowList

USER_AGENT = "ordinaut-worker"


@dataclass
class Transports:
    """The router handed to the executor, and what to close at shutdown."""

    router: ToolRouter
    http_client: httpx.AsyncClient
    request_client: httpx.AsyncClient
    mcp: McpTransport

    async def aclose(self) -> None:
        await self.mcp.aclose()
        await self.http_client.aclose()
        await self.request_client.aclose()


def build_transports(settings: Settings, pool: Pool) -> Transports:
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
    publish = events_publisher(
        pool,
        max_payload_bytes=settings.max_body_bytes,
        fanout_limit=settings.quota_event_fanout,
    )
    builtin = BuiltinTransport(extra={"http.request": http_request, "events.publish": publish})
    http = HttpTransport(http_client, breakers, settings.http_max_response_bytes)
    router = ToolRouter({"builtin": builtin, "http": http, "mcp": mcp})
    return Transports(router, http_client, request_client, mcp)
