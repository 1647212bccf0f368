"""``/mcp`` on the API process: MCP over streamable HTTP, with Ordinaut's agent tokens.

Two exact routes join the API's router (never a mount, which would redirect ``POST /mcp``
to ``/mcp/`` and take over paths it does not serve):

- ``POST /mcp``: the SDK's streamable HTTP transport, stateless and answering plain JSON, so
  that any API process behind a load balancer can answer any request (nothing is kept
  between requests; no key has to be shared). Before it: the ``Host`` check (421), the
  bearer token through the SDK's ``TokenVerifier`` machinery (401 whose ``WWW-Authenticate``
  names the metadata below; 503 when the database is unreachable). Other methods are a 405:
  stateless, the server has no stream to offer a ``GET``.
- ``GET /.well-known/oauth-protected-resource/mcp``: the RFC 9728 metadata of the resource.

URLs in both are those of ``ORDINAUT_PUBLIC_URL`` when set, else of the request (its scheme
and the ``Host`` it was sent to, which the check accepted).

The tools call the REST API of the same app in process (:class:`InProcessBackend`), with the
caller's own token, so every call is an ordinary REST request: authenticated again, scoped,
rate limited, audited (with ``details.mcp_tool`` naming the tool) and logged under the
``/mcp`` request's id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_document
from api.mcp.auth import AgentTokenVerifier
from api.mcp.hosts import AllowedHosts
from api.mcp.server import OrdinautMCP
from api.middleware import send_json
from engine.errors import StoreUnavailable
from engine.settings import Settings
from engine.tokens import SCOPES
from observability.logging import bound_log_context
from ordinaut import AsyncClient
from store.db import Pool

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource" + MCP_PATH
# The in-process client's base URL: requests never leave the process, the name is a label.
IN_PROCESS_URL = "http://ordinaut.in-process"


class McpEndpoint:
    """The MCP server of one API app: its routes, and the lifespan its transport needs."""

    def __init__(self, app: ASGIApp, pool: Pool, settings: Settings) -> None:
        self.server = OrdinautMCP(
            InProcessBackend(app), read_only=settings.mcp_read_only, log_level=settings.log_level
        )
        self.hosts = AllowedHosts.from_settings(settings)
        self.public_url = settings.public_url
        self.max_body_bytes = settings.max_body_bytes
        self.authentication = BearerAuthBackend(AgentTokenVerifier(pool))
        self.transport: ASGIApp | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            _Route(MCP_PATH, endpoint=_Transport(self), methods=["POST"], include_in_schema=False),
            _Route(METADATA_PATH, endpoint=self.metadata, methods=["GET"], include_in_schema=False),
        ]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the SDK's session manager (its task group runs the requests) for the block;
        a new manager each time, as a manager runs once."""
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=self.hosts.transport_security(),
            max_request_body_size=self.max_body_bytes,
        )
        manager = self.server.session_manager
        async with _in_a_task_of_its_own(manager.run()):
            self.transport = StreamableHTTPASGIApp(manager)
            try:
                yield
            finally:
                self.transport = None

    def origin(self, request: Request) -> str:
        """Where clients reach this API: ``ORDINAUT_PUBLIC_URL``, else the request's."""
        if self.public_url:
            return self.public_url
        return f"{request.url.scheme}://{request.url.netloc}"

    async def metadata(self, request: Request) -> Response:
        """RFC 9728 protected-resource metadata of ``/mcp``."""
        if not self.hosts.allows(request.headers.get("host")):
            return _misdirected(request.scope)
        origin = self.origin(request)
        # The API issues its tokens itself (POST /agents), so it names itself as their
        # issuer; /docs documents the resource.
        document = ProtectedResourceMetadata.model_validate(
            {
                "resource": origin + MCP_PATH,
                "authorization_servers": [origin],
                "scopes_supported": list(SCOPES),
                "resource_name": "Ordinaut",
                "resource_documentation": origin + "/docs",
            }
        )
        return JSONResponse(
            document.model_dump(mode="json", exclude_none=True),
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )


@asynccontextmanager
async def _in_a_task_of_its_own(context: AbstractAsyncContextManager[Any]) -> AsyncIterator[None]:
    """Hold ``context`` open for the block from a task of its own: an anyio task group must
    be left by the task that entered it, and an app's lifespan may start and end in
    different tasks (test fixtures do)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with context:
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold(), name="mcp-session-manager")
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiting.cancel()
        task.result()  # raises why the context could not be entered
    try:
        yield
    finally:
        stop.set()
        await task


class _Route(Route):
    """An exact route that names itself in the request's scope, as the API's routes do, so
    that metrics and logs label its requests with its path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope = {**child_scope, "route": self}
        return match, child_scope


class _Transport:
    """``POST /mcp``: host check, bearer authentication, then the SDK's transport."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if not self.endpoint.hosts.allows(request.headers.get("host")):
            await _misdirected(scope)(scope, receive, send)
            return
        transport = self.endpoint.transport
        if transport is None:
            raise RuntimeError("the MCP endpoint is used outside the app's lifespan")
        metadata_url = build_resource_metadata_url(
            AnyHttpUrl(self.endpoint.origin(request) + MCP_PATH)
        )
        app = AuthenticationMiddleware(
            AuthContextMiddleware(RequireAuthMiddleware(transport, [], metadata_url)),
            backend=self.endpoint.authentication,
        )
        try:
            await app(scope, receive, send)
        except StoreUnavailable as exc:  # raised by the token look-up, before any answer
            document = error_document(_request_id(scope), exc.code, exc.message)
            await send_json(send, 503, document, [(b"retry-after", b"1")])


def _misdirected(scope: Scope) -> Response:
    host = Request(scope).headers.get("host")
    message = (
        f"this server does not answer MCP requests for host {host!r} (DNS-rebinding "
        "protection; see ORDINAUT_MCP_ALLOWED_HOSTS and ORDINAUT_PUBLIC_URL)"
    )
    document = error_document(_request_id(scope), "misdirected_request", message)
    return JSONResponse(document, status_code=421)


def _request_id(scope: Scope) -> str | None:
    request_id: str | None = scope.get("state", {}).get("request_id")
    return request_id


class InProcessBackend:
    """Tools call the app's REST API in process, as the MCP caller."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def scopes(self) -> frozenset[str] | None:
        access = get_access_token()
        return None if access is None else frozenset(access.scopes)

    @asynccontextmanager
    async def client(self, tool: str) -> AsyncIterator[AsyncClient]:
        access = get_access_token()
        # Always a string: None would make the client read ORDINAUT_TOKEN from the
        # environment of the API process.
        token = access.token if access is not None else ""
        transport = httpx.ASGITransport(
            app=_tagged(self.app, tool, bound_log_context().get("request_id")),
            raise_app_exceptions=False,
        )
        # No retries: nothing is lost in process, and a 429 or 503 is for the model to see.
        async with AsyncClient(IN_PROCESS_URL, token, transport=transport, max_retries=0) as client:
            yield client


def _tagged(app: ASGIApp, tool: str, request_id: Any) -> ASGIApp:
    """``app`` seeing requests marked as made by the MCP tool ``tool`` (the audit log
    records it; an HTTP client cannot set this) and carrying the ``/mcp`` request's id."""

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = list(scope["headers"])
            if isinstance(request_id, str):
                headers.append((b"x-request-id", request_id.encode("latin-1")))
            scope = {**scope, "headers": headers, "state": {"mcp_tool": tool}}
        await app(scope, receive, send)

    return tagged
