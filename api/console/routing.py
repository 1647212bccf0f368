"""The console's router and what every console route shares: the session dependency, the
checks of a POST (origin, CSRF token, the mirrored REST scopes), form parsing, and error
pages instead of the API's JSON errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api.console.mirror import Mirror
from api.console.render import page, redirect, secured
from api.console.session import (
    CSRF_FIELD,
    ConsoleSession,
    NotSignedIn,
    check_csrf,
    check_origin,
    current_session,
)
from api.deps import Conn
from api.errors import status_for
from engine.errors import (
    Conflict,
    NotFound,
    OrdinautError,
    RateLimited,
    ValidationFailed,
)
from observability.logging import bind_log_context

Form = dict[str, list[str]]
TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Invalid input",
    429: "Slow down",
    503: "Database unavailable",
}


class ConsoleRoute(APIRoute):
    """A console route: errors become pages (or a redirect to the sign-in page), and every
    answer carries the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except NotSignedIn:
                return _to_sign_in(request)
            except RequestValidationError as exc:
                in_path = all(tuple(e.get("loc", ()))[:1] == ("path",) for e in exc.errors())
                if in_path:
                    return error_page(request, NotFound("there is nothing at this address"))
                return error_page(request, ValidationFailed([], "invalid filter or form value"))
            except OrdinautError as exc:
                return error_page(request, exc)
            return secured(response)

        return guarded


router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)


def _to_sign_in(request: Request) -> Response:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return redirect("/ui/login?next=" + quote(target, safe=""))


def error_page(request: Request, exc: OrdinautError) -> Response:
    status = status_for(exc)
    session: ConsoleSession | None = getattr(request.state, "console_session", None)
    response = page(
        request,
        "error.html",
        session,
        status=status,
        title=TITLES.get(status, "Something went wrong"),
        message=exc.message,
        problems=exc.problems if isinstance(exc, ValidationFailed) else [],
    )
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def signed_in(request: Request, conn: Conn) -> ConsoleSession:
    """The request's session (else the sign-in page); the agent's rate limit applies as on
    REST."""
    session = await current_session(conn, request)
    request.state.console_session = session
    bind_log_context(agent_id=str(session.principal.agent_id))
    limiter = request.app.state.rate_limiter
    retry_after = limiter.acquire(session.principal.agent_id)
    if retry_after is not None:
        raise RateLimited(
            f"rate limit of {limiter.per_minute} requests per minute exceeded; "
            f"retry in {retry_after} s",
            retry_after,
        )
    return session


Signed = Annotated[ConsoleSession, Depends(signed_in)]


def allowed(request: Request, session: ConsoleSession, mirror: Mirror) -> ConsoleSession:
    """403 unless the session's token may make the REST call ``mirror``."""
    mirror.require(request.app, session.principal)
    return session


async def read_form(request: Request) -> Form:
    """The urlencoded body of a POST (the body size is capped by the API's middleware)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ValidationFailed([], "expected a form (application/x-www-form-urlencoded)")
    raw = await request.body()
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=5000)
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailed([], "the form could not be read") from None


async def posted_form(request: Request, session: ConsoleSession, mirror: Mirror) -> Form:
    """A checked action: same origin, the session's CSRF token, and the scopes the mirrored
    REST call needs. Returns the form."""
    return check_form(request, session, await read_form(request), mirror)


def check_form(request: Request, session: ConsoleSession, form: Form, mirror: Mirror) -> Form:
    """:func:`posted_form` for a form already read (when the form says which REST call the
    action mirrors)."""
    check_origin(request)
    check_csrf(session, first(form, CSRF_FIELD))
    allowed(request, session, mirror)
    return form


def first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


async def act(target: str, work: Callable[[], Awaitable[tuple[str, str | None]]]) -> Response:
    """Run an action and go to ``target`` (or where ``work`` says: it returns its message and
    ``None`` or another target) with its outcome as a one-time message; a refused change
    (409, 422) is told on ``target`` too. Another agent's object stays a 404 page."""
    try:
        message, elsewhere = await work()
    except (Conflict, ValidationFailed) as exc:
        return redirect(target, ("error", exc.message))
    return redirect(elsewhere or target, ("success", message))


def query_string(params: dict[str, Any]) -> str:
    """``a=1&b=2`` of the non-empty values (for links that keep a list's filters)."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
