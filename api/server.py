"""The API process: :func:`~api.app.create_app` served by uvicorn."""

from __future__ import annotations

import socket

import uvicorn

from api.app import create_app
from api.live import RunFeed
from engine.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn waits for open responses before it stops; requests waiting for a run and
    run streams would hold it up for a minute or for ever. They are told first."""

    def __init__(self, config: uvicorn.Config, feed: RunFeed) -> None:
        super().__init__(config)
        self.feed = feed

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.feed.shut()
        await super().shutdown(sockets)


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the REST API until SIGINT/SIGTERM (uvicorn handles the signals)."""
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    _Server(config, app.state.run_feed).run()
