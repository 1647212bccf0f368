"""The ``mcp`` transport: real MCP through the ``mcp`` SDK (``mcp.Client``).

A tool's ``server`` is either an ``http(s)://`` URL (streamable HTTP) or a command line
(stdio; split shell-style, e.g. ``python -m my_server --flag``; the child gets the SDK's
default environment and the worker's working directory). The call is ``tools/call`` of the
tool's ``tool`` name with the rendered arguments.

Sessions are expensive to open (a stdio server starts a process: about 2 s) and safe to
share (JSON-RPC multiplexes concurrent requests), so each worker keeps **one session per
server**, opened on first use and reused by every run. A session whose connection breaks is
dropped and reopened on the next call; a call that fails on a *reused* session because the
connection closed is retried once on a fresh session (the server restarted meanwhile).

Results: ``structuredContent`` when present (a non-object value becomes ``{"result":
value}``); otherwise the text content parsed as JSON (an object as is, another JSON value as
``{"result": value}``, text that is not JSON as ``{"text": "..."}``); other content blocks as
``{"content": [...]}``. ``isError`` is a retryable step error carrying the text. Protocol
errors: invalid params / unknown method are not retryable; the rest are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import ToolSpec
from engine.errors import StepError, ToolFailed
from engine.pipeline import CallContext
from workers.tools.breaker import CircuitBreakers
from workers.tools.router import hiding, within_deadline

log = logging.getLogger("ordinaut.tools.mcp")

DEFAULT_CONNECT_TIMEOUT_SECONDS = 30.0
# JSON-RPC error codes (MCP's mcp_types.jsonrpc): the request itself is wrong.
_NOT_RETRYABLE_CODES = frozenset({-32700, -32600, -32601, -32602})
_CONNECTION_CLOSED = -32000


class _Broken(Exception):
    """The session's connection failed; the call may be retried on a fresh session."""


def client_target(server: str) -> Any:
    """What ``mcp.Client`` connects to: a URL as is, a command line as stdio parameters."""
    from mcp import StdioServerParameters

    if server.startswith(("http://", "https://")):
        return server
    argv = shlex.split(server)
    if not argv:
        raise ToolFailed("empty MCP server command line", retryable=False)
    return StdioServerParameters(command=argv[0], args=argv[1:])


@dataclass
class _Session:
    """One open ``mcp.Client``, owned by a background task.

    The SDK's client lives in anyio task groups, which must be entered and left by the same
    task; the owner task does both, and the calls (from any task) go through its session.
    """

    server: str
    connect_timeout: float
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    client: Any = None
    error: str | None = None
    calls: int = 0
    owner: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        return not self.closing.is_set() and (not self.ready.is_set() or self.client is not None)

    async def own(self) -> None:
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(self.connect_timeout):
                    self.client = await stack.enter_async_context(
                        Client(client_target(self.server))
                    )
                self.ready.set()
                await self.closing.wait()
        except BaseException as exc:  # an ExceptionGroup from the SDK's task groups, too
            self.error = _describe(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            self.closing.set()
            self.ready.set()

    def close(self) -> None:
        self.closing.set()


@dataclass
class McpSessions:
    """A per-worker pool of MCP sessions, one per server (see the module docstring)."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    _sessions: dict[str, _Session] = field(default_factory=dict)

    async def call_tool(self, server: str, name: str, arguments: dict[str, Any]) -> Any:
        """``tools/call`` on ``server``; returns the SDK's ``CallToolResult``."""
        session = await self._session(server)
        try:
            return await self._call(session, name, arguments)
        except _Broken as exc:
            if session.calls <= 1:
                raise ToolFailed(f"MCP server {server}: {exc}", retryable=True) from None
        log.info("MCP session to %s broke; reconnecting once", server)
        fresh = await self._session(server)
        try:
            return await self._call(fresh, name, arguments)
        except _Broken as exc:
            raise ToolFailed(f"MCP server {server}: {exc}", retryable=True) from None

    async def _session(self, server: str) -> _Session:
        session = self._sessions.get(server)
        if session is None or not session.usable:
            session = _Session(server, self.connect_timeout)
            self._sessions[server] = session
            session.owner = asyncio.create_task(session.own(), name=f"mcp-session {server}")
        await session.ready.wait()
        if session.client is None:
            self._drop(session)
            raise ToolFailed(
                f"cannot connect to MCP server {server}: {session.error}", retryable=True
            )
        return session

    async def _call(self, session: _Session, name: str, arguments: dict[str, Any]) -> Any:
        from mcp import MCPError

        session.calls += 1
        try:
            return await session.client.call_tool(name, arguments)
        except MCPError as exc:
            if exc.code == _CONNECTION_CLOSED:
                self._drop(session)
                raise _Broken(exc.message) from None
            raise ToolFailed(
                f"MCP server {session.server}: error {exc.code}: {exc.message}",
                retryable=exc.code not in _NOT_RETRYABLE_CODES,
            ) from None
        except (StepError, asyncio.CancelledError):
            raise
        except Exception as exc:  # transport failures surface as many unrelated types
            self._drop(session)
            raise _Broken(_describe(exc)) from None

    def _drop(self, session: _Session) -> None:
        session.close()
        if self._sessions.get(session.server) is session:
            del self._sessions[session.server]

    async def aclose(self, grace_seconds: float = 5.0) -> None:
        """Close every session (stops stdio server processes)."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            session.close()
        owners = [s.owner for s in sessions if s.owner is not None]
        if owners:
            _, pending = await asyncio.wait(owners, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*owners, return_exceptions=True)


@dataclass
class McpTransport:
    """The ``mcp`` transport: a circuit breaker and the deadline around each call."""

    sessions: McpSessions = field(default_factory=McpSessions)
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)

    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]:
        if not tool.server or not tool.tool:
            raise ToolFailed(f"tool {tool.address!r} needs server and tool", retryable=False)
        async with (
            hiding(tool.server, "<server>"),
            self.breakers.guard(tool.server),
            within_deadline(context),
        ):
            result = await self.sessions.call_tool(tool.server, tool.tool, arguments)
        return tool_output(result, f"{tool.address} ({tool.tool})")

    async def aclose(self) -> None:
        await self.sessions.aclose()


def tool_output(result: Any, what: str) -> dict[str, Any]:
    """The step output of a ``CallToolResult`` (see the module docstring)."""
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    if result.is_error:
        message = " ".join(texts).strip() or "the tool reported an error"
        raise ToolFailed(f"{what}: {message}", retryable=True)
    if result.structured_content is not None:
        value = result.structured_content
        return value if isinstance(value, dict) else {"result": value}
    if texts and len(texts) == len(result.content):
        text = "".join(texts)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested beyond parsing
            return {"text": text}
        return value if isinstance(value, dict) else {"result": value}
    return {"content": [block.model_dump(mode="json", by_alias=True) for block in result.content]}


def _describe(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups for the real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
