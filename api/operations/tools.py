"""Tool catalog reads: the files in ``catalogs/`` plus the tools registered at runtime."""

from __future__ import annotations

from typing import Any

from api.deps import Principal
from engine.catalog import ToolSpec, file_catalog
from engine.errors import NotFound
from store import tools as tools_store
from store.db import Connection, Row


def catalog_item(spec: ToolSpec) -> dict[str, Any]:
    return {**spec.as_dict(), "source": "catalog"}


def runtime_item(row: Row, principal: Principal) -> dict[str, Any]:
    spec = ToolSpec.from_dict(row["definition"])
    item = {**spec.as_dict(), "source": "runtime", "created_at": row["created_at"]}
    if not principal.is_admin:
        # Where a runtime tool lives is the operator's business: an endpoint URL or an MCP
        # command line may carry credentials. Agents need the address and the schemas.
        item.pop("endpoint", None)
        item.pop("server", None)
    return item


async def all_tools(conn: Connection, principal: Principal) -> list[dict[str, Any]]:
    """Every tool, by address, as ``principal`` may see it."""
    files = file_catalog()
    items = [catalog_item(spec) for spec in files.values()]
    rows = await tools_store.list_runtime_tools(conn)
    items += [runtime_item(row, principal) for row in rows if row["address"] not in files]
    items.sort(key=lambda item: str(item["address"]))
    return items


async def one_tool(conn: Connection, principal: Principal, address: str) -> dict[str, Any]:
    """One tool; 404 when no tool has this address."""
    spec = file_catalog().get(address)
    if spec is not None:
        return catalog_item(spec)
    row = await tools_store.get_runtime_tool(conn, address)
    if row is None:
        raise NotFound(f"no tool {address!r}")
    return runtime_item(row, principal)
