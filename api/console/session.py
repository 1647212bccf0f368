"""Sign-in sessions and CSRF protection of the web console.

- **Sign-in** with an agent token opens a server-side session: a random id (256 bits) goes
  into the ``ordinaut_session`` cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` when
  the request came over HTTPS, path ``/ui``); the database keeps only its SHA-256 and the
  id of the token used (:mod:`store.console_sessions`). Every request looks the session up
  joined with the token and its agent, so a revoked token or a deleted agent ends it at once,
  and a scope change applies to the next page.
- **CSRF**: every form carries a per-session token, an HMAC of the session id (only someone
  holding the cookie can compute it), checked on every POST with a constant-time
  comparison; and every POST must come from this origin (``Origin``, else ``Referer``).
  ``SameSite=Strict`` alone would already keep the cookie off cross-site requests: these
  are the second and third lines.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from api.deps import Principal, principal_of
from engine.errors import PermissionDenied, Unauthenticated
from engine.tokens import hash_token
from store import agents as agents_store
from store import console_sessions as sessions_store
from store.db import Connection

COOKIE = "ordinaut_session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"ordinaut console csrf v1"


class NotSignedIn(Unauthenticated):
    """No valid session: the console answers with the sign-in page."""


@dataclass(frozen=True)
class ConsoleSession:
    """The signed-in agent of a console request and its session's CSRF token."""

    principal: Principal
    csrf_token: str
    id_hash: bytes


def session_hash(session_id: str) -> bytes:
    """What the database stores for a session id."""
    return hashlib.sha256(session_id.encode()).digest()


def csrf_token_for(session_id: str) -> str:
    """The session's CSRF token: an HMAC of its id (stable for the session's lifetime)."""
    digest = hmac.new(session_id.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def sign_in(
    conn: Connection, response: Response, request: Request, *, token: str, hours: float
) -> bool:
    """Open a session for ``token`` and set its cookie on ``response``; False (nothing
    opened) when the token is unknown, revoked or its agent deleted."""
    row = await agents_store.authenticate(conn, hash_token(token))
    if row is None:
        return False
    session_id = secrets.token_urlsafe(32)
    lifetime = hours * 3600
    await sessions_store.open_session(
        conn, id_hash=session_hash(session_id), token_id=row["token_id"], lifetime_seconds=lifetime
    )
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(lifetime),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=served_over_https(request),
    )
    return True


async def sign_out(conn: Connection, request: Request, response: Response) -> None:
    """Delete the request's session (if any) and clear its cookie."""
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await sessions_store.close_session(conn, session_hash(session_id))
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=served_over_https(request),
    )


def served_over_https(request: Request) -> bool:
    """The browser reached us over HTTPS: this request's scheme (uvicorn takes it from
    ``X-Forwarded-Proto`` when a trusted proxy sends one), or an https ``ORDINAUT_PUBLIC_URL``
    (a proxy that terminates TLS without saying so)."""
    public_url = request.app.state.settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


async def current_session(conn: Connection, request: Request) -> ConsoleSession:
    """The request's live session; :class:`NotSignedIn` without one."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 100:
        raise NotSignedIn("sign in with an agent token")
    id_hash = session_hash(session_id)
    row = await sessions_store.session_principal(conn, id_hash)
    if row is None:
        raise NotSignedIn("the session ended (signed out, expired, or its token was revoked)")
    return ConsoleSession(principal_of(row), csrf_token_for(session_id), id_hash)


def still_signed_in(
    session: ConsoleSession, may: Callable[[Principal], bool]
) -> Callable[[Connection], Awaitable[bool]]:
    """Whether ``session`` is still open and its principal, as it is now, still ``may``
    (and sees the same agents' objects): asked now and then by an open stream
    (:meth:`api.live.RunFeed.follow`), which a sign-out or a revoked token then closes."""

    async def ask(conn: Connection) -> bool:
        row = await sessions_store.session_principal(conn, session.id_hash, touch=False)
        if row is None:
            return False
        now = principal_of(row)
        return may(now) and now.owner_filter == session.principal.owner_filter

    return ask


def check_origin(request: Request) -> None:
    """A POST must come from a page of this console: its ``Origin`` (or, when a browser
    sends none, its ``Referer``) must name this host, as the request's ``Host`` or
    ``ORDINAUT_PUBLIC_URL`` names it (a proxy may rewrite ``Host``). 403 otherwise."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        raise PermissionDenied("the request does not say which page it comes from (Origin)")
    ours = {request.headers.get("host", "").lower()}
    public_url = request.app.state.settings.public_url
    if public_url:
        ours.add(urlsplit(public_url).netloc.lower())
    if urlsplit(source).netloc.lower() not in ours:
        raise PermissionDenied("cross-site request refused (Origin does not match this site)")


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """The form's CSRF token must be the session's; 403 otherwise."""
    if not submitted or not hmac.compare_digest(submitted, session.csrf_token):
        raise PermissionDenied("invalid or missing CSRF token: reload the page and try again")
