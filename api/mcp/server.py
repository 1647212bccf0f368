"""The MCP server: Ordinaut's tools, shown and run per caller.

:class:`OrdinautMCP` is the SDK's ``MCPServer`` with ``list_tools`` and ``call_tool``
answered from :data:`api.mcp.tools.TOOLS`: a caller sees only the tools its token's scopes
allow (all but the read-only ones are hidden in read-only mode), and calling any other is
an error. Where the REST calls go and whose token they carry is the :class:`Backend`'s
business: in process with the HTTP caller's token (:mod:`api.mcp.http`), or over HTTP with
``ORDINAUT_TOKEN`` (:mod:`api.mcp.stdio`).

Results are the REST answers as structured content (plus the same JSON as text, for clients
that read only text). Errors are tool errors (``isError``) whose text is the REST error:
status, code, message and every problem on its own line with its JSON path, so that a model
can correct its input.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, Tool

from api.mcp.tools import BY_NAME, TOOLS, OrdinautTool
from engine.errors import Problem
from ordinaut import APIError, AsyncClient, OrdinautError, TransportError

log = logging.getLogger("ordinaut.api.mcp")

INSTRUCTIONS = """\
Ordinaut runs scheduled tasks for you. A task is a schedule (once, cron, RFC 5545 rrule, or \
an event topic) plus a pipeline: steps that call tools (list_tools shows them) with \
arguments that may be ${...} JMESPath templates over params, earlier steps' outputs \
(steps.<save_as>), the event and the run. Typical use: list_tools, validate_task, \
create_task, run_task_now with wait_seconds to try it, then list_runs / get_run to see what \
happened. Errors list every problem with its JSON path; fix them all and call again."""


class Backend(Protocol):
    """Where the tools' REST calls go, on behalf of whom."""

    async def scopes(self) -> frozenset[str] | None:
        """The caller's scopes; None when there is no authenticated caller."""

    def client(self, tool: str) -> AbstractAsyncContextManager[AsyncClient]:
        """A client that calls the REST API as the caller, for one call of ``tool``."""


class OrdinautMCP(MCPServer):
    """Ordinaut's tools, filtered by the caller's scopes (and read-only mode)."""

    def __init__(self, backend: Backend, *, read_only: bool, log_level: str = "INFO") -> None:
        super().__init__(
            "ordinaut",
            title="Ordinaut",
            instructions=INSTRUCTIONS,
            version=_version(),
            log_level=log_level,  # type: ignore[arg-type]  # validated by the settings
            # Nothing is pushed to clients, and a listen stream held by one API process
            # would be useless to a client whose next request reaches another.
            subscriptions=False,
        )
        self.backend = backend
        self.read_only = read_only

    async def list_tools(self) -> list[Tool]:
        scopes = await self.backend.scopes()
        return [tool.listing() for tool in TOOLS if self._refusal(tool, scopes) is None]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        started = time.perf_counter()
        result = await self._call(name, arguments)
        log.info(
            "mcp tool %s: %s",
            name,
            text_of(result).partition("\n")[0] if result.is_error else "ok",
            extra={
                "mcp_tool": name,
                "outcome": "error" if result.is_error else "ok",
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return result

    async def _call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        tool = BY_NAME.get(name)
        if tool is None:
            return error_result(f"unknown tool {name!r}")
        refusal = self._refusal(tool, await self.backend.scopes())
        if refusal is not None:
            return error_result(refusal)
        problems = tool.argument_problems(arguments)
        if problems:
            return error_result(_problem_text("invalid arguments", problems))
        try:
            async with self.backend.client(tool.name) as client:
                answer = await tool.call(client, arguments)
        except OrdinautError as exc:
            return error_result(error_text(exc))
        return success_result(answer)

    def _refusal(self, tool: OrdinautTool, scopes: frozenset[str] | None) -> str | None:
        """Why the caller may not use ``tool`` (None: it may)."""
        if scopes is None:
            return "not authenticated"
        if self.read_only and not tool.read_only:
            return (
                f"tool {tool.name!r} is not available: this server is read-only "
                "(ORDINAUT_MCP_READ_ONLY)"
            )
        if tool.scope is not None and not ("admin" in scopes or tool.scope in scopes):
            return (
                f"tool {tool.name!r} is not available to this token: it needs the "
                f"{tool.scope!r} scope"
            )
        return None


def success_result(answer: Mapping[str, Any]) -> CallToolResult:
    """The REST answer as structured content, and as JSON text for text-only clients."""
    text = json.dumps(answer, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=dict(answer)
    )


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def error_text(exc: OrdinautError) -> str:
    """The REST error as text: ``<status> <code>: <message>``, then every problem on a line
    of its own with its JSON path, then the request id (to find the call in the logs)."""
    if isinstance(exc, TransportError):
        return f"could not reach the Ordinaut API: {exc}"
    if not isinstance(exc, APIError):
        return str(exc)
    problems = [Problem(p.path, p.message, p.type) for p in exc.problems]
    head = f"{exc.status} {exc.code}"
    if not problems:
        text = f"{head}: {exc.message}"
    elif exc.message == _joined(problems):  # the message only repeats the problems
        text = _problem_text(head, problems)
    else:
        text = f"{head}: {exc.message}\n" + _problem_lines(problems)
    return text + (f"\n(request id {exc.request_id})" if exc.request_id else "")


def _problem_text(head: str, problems: list[Problem]) -> str:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return f"{head}: {count}:\n" + _problem_lines(problems)


def _problem_lines(problems: list[Problem]) -> str:
    return "\n".join(f"- {p.path}: {p.message}" for p in problems)


def _joined(problems: list[Problem]) -> str:
    """The message the API composes from its problems."""
    return "; ".join(f"{p.path}: {p.message}" for p in problems)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ordinaut")
    except metadata.PackageNotFoundError:
        return "unknown"
