"""``/tools``: the tool catalog (files in ``catalogs/`` plus tools registered at runtime)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from api.body import json_body, json_body_openapi
from api.deps import Admin, Conn, ToolsRead
from api.operations import tools as operations
from api.operations.tools import runtime_item
from api.pagination import DEFAULT_LIMIT, CursorParam, Limit
from api.responses import INVALID, TOOL_NOT_FOUND, error
from api.schemas import Timestamp
from engine.catalog import TOOL_ENTRY_SCHEMA, file_catalog, validate_entry
from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from store import tools as tools_store

router = APIRouter(prefix="/tools", tags=["tools"])


EXAMPLE_TOOL = {
    "address": "weather.current",
    "transport": "mcp",
    "server": "https://mcp.example.com/mcp",
    "tool": "current_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "output_schema": {
        "type": "object",
        "properties": {"temperature": {"type": "number"}},
        "required": ["temperature"],
    },
    "timeout_seconds": 20,
}


class _ToolFields(BaseModel):
    address: str = Field(examples=["debug.echo"])
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    timeout_seconds: float
    source: Literal["catalog", "runtime"] = Field(
        description="`catalog`: shipped in catalogs/*.json; `runtime`: registered by POST /tools."
    )
    created_at: Timestamp | None = None


class BuiltinTool(_ToolFields):
    """A tool built into the workers."""

    transport: Literal["builtin"]


class HttpTool(_ToolFields):
    """A tool that the workers call by POSTing the arguments to ``endpoint``."""

    transport: Literal["http"]
    endpoint: str | None = Field(
        default=None,
        description="Where arguments are POSTed (runtime tools: shown to admins only).",
    )


class McpTool(_ToolFields):
    """A tool on an MCP server."""

    transport: Literal["mcp"]
    server: str | None = Field(
        default=None,
        description="A command line (stdio) or an http(s) URL (runtime tools: shown to "
        "admins only).",
    )
    tool: str = Field(description="The tool's name on the server.")


# One of the three, told apart by ``transport`` (a discriminated union in the OpenAPI).
Tool = Annotated[BuiltinTool | HttpTool | McpTool, Field(discriminator="transport")]


class ToolPage(BaseModel):
    items: list[Tool]
    next_cursor: str | None


@router.get(
    "",
    operation_id="tools_list",
    response_model=ToolPage,
    summary="List the tool catalog by address (scope tools:read)",
)
async def list_tools(
    principal: ToolsRead, conn: Conn, limit: Limit = DEFAULT_LIMIT, cursor: CursorParam = None
) -> Any:
    items = await operations.all_tools(conn, principal)
    after = _decode_cursor(cursor)
    if after is not None:
        items = [item for item in items if item["address"] > after]
    next_cursor = _encode_cursor(items[limit - 1]["address"]) if len(items) > limit else None
    return {"items": items[:limit], "next_cursor": next_cursor}


@router.get(
    "/{address}",
    operation_id="tools_get",
    response_model=Tool,
    summary="One tool with its schemas (scope tools:read)",
    responses=TOOL_NOT_FOUND,
)
async def get_tool(address: str, principal: ToolsRead, conn: Conn) -> Any:
    return await operations.one_tool(conn, principal, address)


@router.post(
    "",
    operation_id="tools_create",
    status_code=status.HTTP_201_CREATED,
    response_model=Tool,
    summary="Register an http or mcp tool at runtime (scope admin)",
    description="Persisted; every worker sees it at once (NOTIFY) without a restart. "
    "Endpoints registered here are trusted: the SSRF guard of `http.request` does not apply.",
    responses={
        **error(409, "A tool with this address exists."),
        **INVALID,
    },
    openapi_extra=json_body_openapi(TOOL_ENTRY_SCHEMA, EXAMPLE_TOOL, name="ToolCreate"),
)
async def register_tool(request: Request, principal: Admin, conn: Conn) -> Any:
    spec = validate_entry(await json_body(request))
    if spec.transport == "builtin":
        raise ValidationFailed(
            [Problem("$.transport", "builtin tools ship with Ordinaut; use http or mcp", "enum")]
        )
    if spec.address in file_catalog():
        raise Conflict(f"{spec.address!r} is a catalog tool (catalogs/*.json)")
    row = await tools_store.insert_runtime_tool(
        conn, definition=spec.as_dict(), created_by=principal.agent_id
    )
    return runtime_item(row, principal)


@router.delete(
    "/{address}",
    operation_id="tools_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a runtime tool (scope admin)",
    description="Runs of tasks that still use it fail with `unknown_tool` (not retried).",
    responses={
        **TOOL_NOT_FOUND,
        **error(409, "A catalog tool cannot be removed."),
    },
)
async def delete_tool(address: str, principal: Admin, conn: Conn) -> Response:
    if address in file_catalog():
        raise Conflict(f"{address!r} is a catalog tool (catalogs/*.json); it cannot be removed")
    if not await tools_store.delete_runtime_tool(conn, address):
        raise NotFound(f"no runtime tool {address!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _encode_cursor(address: str) -> str:
    return base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed([Problem("cursor", "invalid cursor", "cursor")]) from None
