"""The MCP tools over stdio, for desktop MCP clients (``ordinaut mcp``).

The process needs no database: it is a client of a running API (``ORDINAUT_URL``) with one
agent token (``ORDINAUT_TOKEN``), and each tool is the same REST call as over ``/mcp``, sent
over HTTP by :class:`ordinaut.AsyncClient`. The token's scopes decide which tools are listed;
they are read from ``GET /agents/me`` at start and again at most every
:data:`SCOPES_TTL_SECONDS` (the API enforces them on every call anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.mcp.server import OrdinautMCP
from ordinaut import AsyncClient, AuthenticationError, OrdinautError, TransportError

log = logging.getLogger("ordinaut.mcp.stdio")

SCOPES_TTL_SECONDS = 30.0


class RemoteBackend:
    """Tools call the API over HTTP with the one token of this process."""

    def __init__(self, client: AsyncClient, scopes: frozenset[str]) -> None:
        self._client = client
        self._scopes = scopes
        self._read_at = time.monotonic()

    async def scopes(self) -> frozenset[str] | None:
        if time.monotonic() - self._read_at >= SCOPES_TTL_SECONDS:
            await self._refresh()
        return self._scopes

    async def _refresh(self) -> None:
        """Re-read the scopes; on failure keep the last ones (the call will say why)."""
        self._read_at = time.monotonic()
        try:
            self._scopes = frozenset((await self._client.agents.me()).scopes)
        except OrdinautError as exc:
            log.warning("could not refresh the token's scopes: %s", exc)

    @asynccontextmanager
    async def client(self, tool: str) -> AsyncIterator[AsyncClient]:
        yield self._client


class StartFailed(Exception):
    """The API refused the token or could not be reached at start (one line to show)."""


async def serve_stdio(url: str | None, token: str, *, read_only: bool, log_level: str) -> None:
    """Serve the tools on stdin/stdout until stdin closes (``url`` None: ``ORDINAUT_URL``,
    else the client's default); :class:`StartFailed` when the token or the API is unusable."""
    async with AsyncClient(url, token) as client:
        try:
            agent = await client.agents.me()
        except AuthenticationError as exc:
            raise StartFailed(f"the API at {client.url} refused ORDINAUT_TOKEN: {exc}") from exc
        except TransportError as exc:
            raise StartFailed(f"cannot reach the Ordinaut API at {client.url}: {exc}") from exc
        log.info("serving MCP over stdio for agent %s against %s", agent.name, client.url)
        server = OrdinautMCP(
            RemoteBackend(client, frozenset(agent.scopes)), read_only=read_only, log_level=log_level
        )
        await server.run_stdio_async()
