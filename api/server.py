"""The API process: :func:`~api.app.create_app` served by uvicorn."""

from __future__ import annotations

from dataclasses import replace

import uvicorn

from api.app import create_app
from api.mcp.hosts import bind_host_pattern
from engine.settings import Settings


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the REST API until SIGINT/SIGTERM (uvicorn handles the signals)."""
    app = create_app(with_bind_host(settings, host))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")


def with_bind_host(settings: Settings, host: str) -> Settings:
    """``settings`` whose MCP endpoint also answers the address the API binds: a client on
    another machine reaching ``--host 10.0.0.5`` sends ``Host: 10.0.0.5:8080``."""
    pattern = bind_host_pattern(host)
    if pattern is None:
        return settings
    return replace(settings, mcp_allowed_hosts=(*settings.mcp_allowed_hosts, pattern))
