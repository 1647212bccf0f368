"""A real MCP server for the tests, built with the ``mcp`` SDK (``MCPServer``).

Run it over stdio (``python -m tests.servers.mcp_server``) or over streamable HTTP
(``python -m tests.servers.mcp_server http PORT``, endpoint ``http://127.0.0.1:PORT/mcp``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

server = MCPServer("ordinaut-test-tools")
_calls = {"count": 0}


class Forecast(BaseModel):
    city: str
    days: int
    temperature: float
    sunny: bool
    tags: list[str]


@server.tool()
def forecast(city: str, days: int = 1) -> Forecast:
    """A deterministic forecast (structured content)."""
    _calls["count"] += 1
    return Forecast(
        city=city, days=days, temperature=21.5 + days, sunny=city != "London", tags=["test"]
    )


@server.tool(structured_output=False)
def plain(x: int) -> dict[str, Any]:
    """Unstructured: the dict arrives as JSON text content only."""
    _calls["count"] += 1
    return {"x": x, "doubled": x * 2}


@server.tool(structured_output=False)
def words(text: str) -> str:
    """Plain text that is not JSON."""
    _calls["count"] += 1
    return f"you said: {text}"


@server.tool()
def fail(message: str) -> str:
    """Always fails: the result has isError set and carries the message."""
    raise ToolError(message)


@server.tool()
async def slow(seconds: float) -> dict[str, Any]:
    """Sleeps, then answers."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@server.tool()
def whoami() -> dict[str, Any]:
    """The server's process id and how many tool calls it has served (session reuse)."""
    _calls["count"] += 1
    return {"pid": os.getpid(), "calls": _calls["count"]}


def main(argv: list[str]) -> None:
    if argv and argv[0] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        server.run()


if __name__ == "__main__":
    main(sys.argv[1:])
