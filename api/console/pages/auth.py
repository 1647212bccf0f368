"""Sign-in and sign-out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.console.render import page, redirect, safe_next
from api.console.routing import Signed, first, read_form, router
from api.console.session import (
    CSRF_FIELD,
    NotSignedIn,
    check_csrf,
    check_origin,
    current_session,
    sign_in,
    sign_out,
)
from api.deps import AppSettings, Conn


@router.get("/login")
async def login_page(request: Request, conn: Conn, next: str | None = None) -> Response:
    try:
        await current_session(conn, request)
    except NotSignedIn:
        return page(request, "login.html", None, next=safe_next(next), error=None)
    return redirect(safe_next(next))


@router.post("/login")
async def login(request: Request, conn: Conn, settings: AppSettings) -> Response:
    check_origin(request)
    form = await read_form(request)
    token = (first(form, "token") or "").strip()
    target = safe_next(first(form, "next"))
    response = redirect(target)
    if token and len(token) <= 1000:
        opened = await sign_in(
            conn, response, request, token=token, hours=settings.console_session_hours
        )
        if opened:
            return response
    return page(
        request,
        "login.html",
        None,
        status=401,
        next=target,
        error="That token is not valid (unknown, revoked, or its agent was deleted).",
    )


@router.post("/logout")
async def logout(request: Request, session: Signed, conn: Conn) -> Response:
    check_origin(request)
    form = await read_form(request)
    check_csrf(session, first(form, CSRF_FIELD))
    response = redirect("/ui/login", ("success", "Signed out."))
    await sign_out(conn, request, response)
    return response
