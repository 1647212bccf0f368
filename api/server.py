"""The API process: :func:`~api.app.create_app` served by uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from engine.settings import Settings


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the REST API until SIGINT/SIGTERM (uvicorn handles the signals)."""
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
