"""Server-side rendering for the console: the Jinja2 environment, its filters, pages, flash
messages, redirects and the headers every console answer carries."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined
from markupsafe import Markup, escape

from api.console.mirror import (
    AGENTS_LIST,
    AUDIT_LIST,
    RUNS_LIST,
    TASKS_LIST,
    TOOLS_LIST,
    WORKERS_LIST,
)
from api.console.session import COOKIE_PATH, CSRF_FIELD, ConsoleSession
from api.console.timeline import when
from engine.clock import now_utc
from engine.timezones import get_zone

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.undefined = StrictUndefined
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

FLASH_COOKIE = "ordinaut_flash"
FLASH_KINDS = ("success", "error")
# No inline script or style anywhere: the console works under a strict policy (timelines
# and charts are SVG attributes, not style attributes).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``, ``in 2 h``, ``just now``."""
    if value is None:
        return "—"
    seconds = ((now or now_utc()) - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for limit, unit, size in (
        (60, "s", 1),
        (3600, "min", 60),
        (86400, "h", 3600),
        (86400 * 60, "d", 86400),
        (float("inf"), "mo", 86400 * 30),
    ):
        if seconds < limit:
            amount = f"{int(seconds // size)} {unit}"
            return f"in {amount}" if future else f"{amount} ago"
    return "—"  # unreachable: the last limit is infinite


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo:
    """A zone, loaded once per process (``get_zone`` reads the tz file on every call)."""
    return get_zone(name)


def _exact(value: datetime | None, zone: str | None = None) -> str:
    """``2026-11-24 09:00:03 UTC`` (or in ``zone``, with its abbreviation)."""
    if value is None:
        return "—"
    t = value.astimezone(_zone(zone) if zone else UTC)
    # Formatted by hand: strftime costs several microseconds, and lists call this per cell.
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d} "
        f"{t.tzname() or ''}"
    )


def _zoned(value: datetime | None, zone: str, *, short: bool = False) -> str:
    """``Tue 24 Nov 2026 09:00 EET`` in a task's zone (``short``: no year when it is this
    year's)."""
    if value is None:
        return "—"
    shown = value.astimezone(_zone(zone))
    this_year = shown.year == now_utc().astimezone(_zone(zone)).year
    pattern = "%a %d %b %H:%M " if short and this_year else "%a %d %b %Y %H:%M "
    return shown.strftime(pattern) + (shown.tzname() or "")


def _time(value: datetime | str | None, zone: str | None = None) -> Markup:
    """A relative time with the exact one on hover (``console.js`` keeps it fresh). Built
    with an f-string: ``Markup.format`` costs a formatter per call, and lists call this
    twice a row. ``value`` may be ISO 8601 text (runs as ``GET /runs/{id}`` presents them)."""
    value = when(value)
    if value is None:
        return Markup('<span class="muted">—</span>')
    exact = escape(_exact(value, zone))
    return Markup(
        f'<time datetime="{value.isoformat()}" title="{exact}" data-ago>{_ago(value)}</time>'
    )


def _duration(ms: float | None) -> str:
    """``340 ms``, ``1.2 s``, ``2 min 05 s``, ``3 h 10 min``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _short(value: Any) -> str:
    return str(value)[:8]


def _count(value: int, cap: int) -> str:
    """A capped count: ``10 000+`` when it reached ``cap``."""
    shown = f"{min(value, cap):,}".replace(",", " ")
    return shown + "+" if value >= cap else shown


templates.env.filters.update(
    ago=_ago,
    exact=_exact,
    zoned=_zoned,
    time=_time,
    duration=_duration,
    pretty=_pretty,
    short=_short,
    capped=_count,
)


def navigation(app: Any, session: ConsoleSession | None) -> list[dict[str, str]]:
    """The left-hand menu: only what the signed-in token may open."""
    if session is None:
        return []
    principal = session.principal
    items = [("Overview", "/ui", None), ("Tasks", "/ui/tasks", TASKS_LIST)]
    items += [("Runs", "/ui/runs", RUNS_LIST), ("Workers", "/ui/workers", WORKERS_LIST)]
    items += [("Tools", "/ui/tools", TOOLS_LIST), ("Agents", "/ui/agents", AGENTS_LIST)]
    items += [("Audit log", "/ui/audit", AUDIT_LIST)]
    return [
        {"label": label, "href": href}
        for label, href, mirror in items
        if mirror is None or mirror.allows(app, principal)
    ]


def page(
    request: Request,
    template: str,
    session: ConsoleSession | None,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    """A full page (or, for the same template, the fragment htmx asked for)."""
    flash = _read_flash(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "principal": session.principal if session else None,
            "csrf_field": CSRF_FIELD,
            "nav": navigation(request.app, session),
            "current": request.url.path,
            "flash": flash,
            **context,
        },
        status_code=status,
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return secured(response)


def secured(response: Response) -> Response:
    """Add the console's security and no-cache headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def redirect(url: str, flash: tuple[str, str] | None = None) -> Response:
    """303 to ``url`` (a console path), optionally leaving a one-time message for it."""
    response = RedirectResponse(url, status_code=303)
    if flash is not None:
        kind, message = flash
        response.set_cookie(
            FLASH_COOKIE,
            quote(f"{kind}:{message[:500]}"),
            max_age=60,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
        )
    return secured(response)


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = unquote(raw).partition(":")
    if kind not in FLASH_KINDS or not message:
        return None
    return {"kind": kind, "message": message}


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if not value or not value.startswith("/ui") or value.startswith("/ui//"):
        return "/ui"
    if any(bad in value for bad in ("\\", "\n", "\r")):
        return "/ui"
    return value
