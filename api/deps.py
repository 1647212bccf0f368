"""Request dependencies: the database connection, the caller, and scope checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.catalog import Catalog
from engine.errors import PermissionDenied, Unauthenticated
from engine.tokens import hash_token
from ops.settings import Settings
from store import agents as agents_store
from store.db import Connection

_bearer = HTTPBearer(
    auto_error=False, description="An agent token: `Authorization: Bearer ord_...`"
)


@dataclass(frozen=True)
class Principal:
    """The authenticated agent."""

    agent_id: UUID
    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    @property
    def owner_filter(self) -> UUID | None:
        """Restrict queries to the caller's objects, unless the caller is an admin."""
        return None if self.is_admin else self.agent_id


async def connection(request: Request) -> AsyncIterator[Connection]:
    """A pooled connection for this request (autocommit; open a transaction to group)."""
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[Connection, Depends(connection)]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def catalog_of(request: Request, conn: Conn) -> Catalog:
    """The tool catalog: the files plus the tools registered at runtime."""
    provider: Callable[[Connection], Awaitable[Catalog]] = request.app.state.catalog_provider
    return await provider(conn)


AppSettings = Annotated[Settings, Depends(settings_of)]
AppCatalog = Annotated[Catalog, Depends(catalog_of)]


async def authenticate(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The agent owning the bearer token; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    row = await agents_store.find_agent_by_token_hash(conn, hash_token(credentials.credentials))
    if row is None:
        raise Unauthenticated("invalid or revoked token")
    principal = Principal(row["id"], row["name"], frozenset(row["scopes"]))
    request.state.principal = principal
    return principal


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that demands ``scope`` (``admin`` implies every scope)."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has(scope):
            raise PermissionDenied(f"this call needs the {scope!r} scope")
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


Caller = Annotated[Principal, Depends(authenticate)]
TasksRead = Annotated[Principal, Depends(require("tasks:read"))]
TasksWrite = Annotated[Principal, Depends(require("tasks:write"))]
RunsRead = Annotated[Principal, Depends(require("runs:read"))]
RunsWrite = Annotated[Principal, Depends(require("runs:write"))]
EventsPublish = Annotated[Principal, Depends(require("events:publish"))]
ToolsRead = Annotated[Principal, Depends(require("tools:read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
