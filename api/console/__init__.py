"""The web console under ``/ui``: server-rendered pages (Jinja2) over the same operations,
scopes and isolation as the REST API, with htmx (vendored in ``static/``) for live parts.

:func:`install_console` adds its routes and static files to the API app. Its routes are
outside the OpenAPI document (``include_in_schema=False``) and outside
:func:`api.openapi.api_routes`: they authenticate with a session cookie, not a bearer token.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console.pages import admin, auth, fleet, overview, runs, tasks  # noqa: F401
from api.console.pages.fallback import not_found
from api.console.render import HERE
from api.console.routing import router

# Importing the pages added their routes; the 404 page for any other address comes last.
router.add_api_route("/{rest:path}", not_found, methods=["GET"])


def install_console(app: FastAPI) -> None:
    """Serve the console at ``/ui`` and its static files at ``/ui/static``."""
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
