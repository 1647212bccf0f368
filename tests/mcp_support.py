"""MCP clients for tests: the SDK's ``Client`` over streamable HTTP, with a bearer token,
against a real server or an app in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

# The 2025 handshake (initialize, what most MCP hosts speak today) and the 2026-07-28
# per-request protocol that the SDK's client picks by default: the server serves both.
MODES = ("legacy", "auto")


@asynccontextmanager
async def mcp_client(
    base_url: str,
    token: str | None,
    *,
    mode: str = "legacy",
    transport: httpx2.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Client]:
    """A connected client of ``base_url``/mcp sending ``Authorization: Bearer <token>``."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    http = httpx2.AsyncClient(base_url=base_url, headers=sent, transport=transport, timeout=90)
    async with http:
        target = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with Client(target, mode=mode) as client:
            yield client


def in_process(app: Any) -> httpx2.AsyncBaseTransport:
    """A transport that calls ``app`` in process."""
    return httpx2.ASGITransport(app=app)


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def text(result: CallToolResult) -> str:
    """The text of a tool result (its first content block)."""
    block = result.content[0]
    assert block.type == "text"
    return block.text


async def call_ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content
