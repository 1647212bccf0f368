"""Request dependencies: the database connection, the caller, and scope checks.

A route states what it needs with one of the aliases at the bottom (``TasksWrite``,
``Admin``, ``Caller`` ...) or ``Depends(require(scope))``. That is the single mechanism:
the OpenAPI document (security requirement and description), the audit middleware and the
authorization-matrix test all read a route's requirement from its dependencies through
:func:`route_auth`, so a route added later is covered without further bookkeeping.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.catalog import Catalog
from engine.errors import (
    OrdinautError,
    PermissionDenied,
    RateLimited,
    StoreError,
    StoreUnavailable,
    Unauthenticated,
)
from engine.settings import Settings
from engine.tokens import SCOPES, hash_token
from observability.logging import bind_log_context
from store import agents as agents_store
from store.db import Connection, Pool, Row, translated_errors

BEARER_SCHEME = "HTTPBearer"
_bearer = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    auto_error=False,
    description="An agent token: `Authorization: Bearer ord_...` (shown once when the agent "
    "or the token is created). Each operation names the scope it needs; `admin` implies all.",
)


@dataclass(frozen=True)
class Principal:
    """The authenticated agent."""

    agent_id: UUID
    name: str
    scopes: frozenset[str]
    token_id: UUID | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    @property
    def owner_filter(self) -> UUID | None:
        """Restrict queries to the caller's objects, unless the caller is an admin."""
        return None if self.is_admin else self.agent_id


@dataclass
class _Held:
    """The request's pooled connection, which a handler may give back early."""

    pool: Pool
    conn: Connection | None

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.pool.putconn(conn)


async def connection(request: Request) -> AsyncIterator[Connection]:
    """A pooled connection for this request (autocommit; open a transaction to group).

    The pool raises the engine's errors (:mod:`store.db`): a database that cannot be reached
    (or no free connection in time) is a 503, a value the database refuses as data (a NUL
    character, a number out of range) a 422 — :mod:`api.errors` maps them. A handler that
    waits (``?wait=N``) gives it back first with :func:`release_connection`.
    """
    pool: Pool = request.app.state.pool
    async with translated_errors():
        held = _Held(pool, await pool.checkout())
        request.state.held_connection = held
        try:
            assert held.conn is not None
            yield held.conn
        finally:
            await held.release()


async def release_connection(request: Request) -> None:
    """Give the request's connection back to the pool now (before waiting for something
    that may take a minute); the handler must not use it afterwards."""
    held: _Held | None = getattr(request.state, "held_connection", None)
    if held is not None:
        await held.release()


# scope="function": the connection goes back to the pool as soon as the handler returns,
# before the response is sent, so the audit middleware (which needs a connection of its own
# after the handler) never waits on a pool that its own requests are holding.
Conn = Annotated[Connection, Depends(connection, scope="function")]


async def settings_of(request: Request) -> Settings:
    # async on purpose: FastAPI runs plain ``def`` dependencies in a thread pool.
    settings: Settings = request.app.state.settings
    return settings


async def catalog_of(request: Request, conn: Conn) -> Catalog:
    """The tool catalog: the files plus the tools registered at runtime."""
    provider: Callable[[Connection], Awaitable[Catalog]] = request.app.state.catalog_provider
    return await provider(conn)


AppSettings = Annotated[Settings, Depends(settings_of)]
AppCatalog = Annotated[Catalog, Depends(catalog_of)]


async def principal_for_token(conn: Connection, token: str) -> Principal | None:
    """The agent owning ``token`` (looked up by its hash), or None for an unknown, revoked
    or deleted agent's token. The one look-up behind every surface: REST and MCP."""
    row = await agents_store.authenticate(conn, hash_token(token))
    return None if row is None else principal_of(row)


def principal_of(row: Row) -> Principal:
    """The principal of a token look-up's row (``id, name, scopes, token_id``)."""
    return Principal(row["id"], row["name"], frozenset(row["scopes"]), row["token_id"])


def still_grants(principal: Principal, scope: str) -> Callable[[Connection], Awaitable[bool]]:
    """Whether ``principal``'s token still grants ``scope`` over the same objects: the
    token is not revoked, its agent not deleted, the scope not taken away, and an admin is
    still an admin (a stream opened as admin shows every agent's runs). Open streams ask
    it now and then (:meth:`api.live.RunFeed.follow`)."""

    async def ask(conn: Connection) -> bool:
        if principal.token_id is None:
            return False
        row = await agents_store.token_holder(conn, principal.token_id)
        if row is None:
            return False
        now = principal_of(row)
        return now.has(scope) and now.owner_filter == principal.owner_filter

    return ask


async def authenticate(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The agent owning the bearer token; 401 without a valid one, 429 over its rate.

    No cache: the look-up is one indexed statement, and a deleted agent or a revoked token
    stops working on its very next request, in every API process.
    """
    if credentials is None:
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    principal = await principal_for_token(conn, credentials.credentials)
    if principal is None:
        raise Unauthenticated("invalid or revoked token")
    request.state.principal = principal
    bind_log_context(agent_id=str(principal.agent_id))
    retry_after = request.app.state.rate_limiter.acquire(principal.agent_id)
    if retry_after is not None:
        raise RateLimited(
            f"rate limit of {request.app.state.rate_limiter.per_minute} requests per minute "
            f"exceeded; retry in {retry_after} s",
            retry_after,
        )
    return principal


# id() of each scope check -> its scope (the checks live for ever in require's cache, and
# dependency callables need not be hashable).
_SCOPE_OF: dict[int, str] = {}


@functools.cache
def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that demands ``scope`` (``admin`` implies every scope).

    One function per scope (cached), so FastAPI solves it once per request however many
    parameters use it.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.has(scope):
            raise PermissionDenied(f"this call needs the {scope!r} scope")
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    _SCOPE_OF[id(check)] = scope
    return check


@dataclass(frozen=True)
class RouteAuth:
    """What a route demands: a valid token at all, and which scopes."""

    authenticated: bool
    scopes: frozenset[str]

    @property
    def label(self) -> str:
        """``tasks:write``, ``any`` (any valid token) or ``none`` (public)."""
        if not self.authenticated:
            return "none"
        return ", ".join(sorted(self.scopes)) or "any"

    @property
    def read_only(self) -> bool:
        """Every scope it needs only reads (``POST /tasks/validate``, previews)."""
        return bool(self.scopes) and all(s.endswith(":read") for s in self.scopes)


async def auth_failure(request: Request) -> OrdinautError | None:
    """The 401/403 that the route's dependencies would have raised, for errors that happen
    before they run (FastAPI parses a model body first): without a valid token, a broken
    body must still be a 401, not a 422 that describes the route to a stranger."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or getattr(request.state, "principal", None):
        return None
    needed = route_auth(route)
    if not needed.authenticated:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    try:
        async with request.app.state.pool.connection() as conn:
            principal = await principal_for_token(conn, token.strip())
    except StoreError:
        return StoreUnavailable("database unavailable")
    if principal is None:
        return Unauthenticated("invalid or revoked token")
    missing = sorted(scope for scope in needed.scopes if not principal.has(scope))
    if missing:
        return PermissionDenied(f"this call needs the {missing[0]!r} scope")
    return None


def route_auth(route: APIRoute) -> RouteAuth:
    """The requirement a route declares through its dependencies (see module docstring)."""
    authenticated = False
    scopes: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        call = dependant.call
        if call is authenticate:
            authenticated = True
        elif id(call) in _SCOPE_OF:
            authenticated = True
            scopes.add(_SCOPE_OF[id(call)])
        pending.extend(dependant.dependencies)
    return RouteAuth(authenticated, frozenset(scopes))


Caller = Annotated[Principal, Depends(authenticate)]
TasksRead = Annotated[Principal, Depends(require("tasks:read"))]
TasksWrite = Annotated[Principal, Depends(require("tasks:write"))]
RunsRead = Annotated[Principal, Depends(require("runs:read"))]
RunsWrite = Annotated[Principal, Depends(require("runs:write"))]
EventsPublish = Annotated[Principal, Depends(require("events:publish"))]
ToolsRead = Annotated[Principal, Depends(require("tools:read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
