"""``/docs``: Swagger UI from files vendored in the package (``api/static/swagger-ui``,
Swagger UI 5.35.0 from the npm package ``swagger-ui-dist``), so the reference works
without network access. ReDoc is not served (it would need another 1 MB bundle)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
STATIC_PATH = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets (create the app with ``docs_url=None``)."""
    app.mount(STATIC_PATH, StaticFiles(directory=ASSETS), name="swagger-ui")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API reference",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{STATIC_PATH}/favicon-32x32.png",
        )

    app.add_route("/docs", docs, include_in_schema=False)
