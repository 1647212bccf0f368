"""``ordinaut mcp``: the MCP tools over stdio, as a client of a running API."""

from __future__ import annotations

import asyncio

from engine.settings import Settings
from ops.terminal import CommandError


def run(url: str | None, token: str | None, settings: Settings, *, read_only: bool) -> int:
    """Serve until the MCP client closes stdin; a missing or refused token, or an API that
    cannot be reached, is a one-line error."""
    from api.mcp.stdio import StartFailed, serve_stdio

    if not token:
        raise CommandError("ORDINAUT_TOKEN is not set (an agent token: ordinaut agent create)")
    read_only = read_only or settings.mcp_read_only
    try:
        asyncio.run(serve_stdio(url, token, read_only=read_only, log_level=settings.log_level))
    except StartFailed as exc:
        raise CommandError(str(exc)) from None
    return 0
