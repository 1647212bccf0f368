"""The API process: :func:`~api.app.create_app` served by uvicorn, once the database
answers."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import replace

import uvicorn

from api.app import create_app
from api.live import RunFeed
from api.mcp.hosts import bind_host_pattern
from engine.settings import Settings
from store.db import wait_for_database

log = logging.getLogger("ordinaut.api")


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
    """Wait for the database (SIGINT/SIGTERM end the wait at once), then serve the REST API
    until SIGINT/SIGTERM (uvicorn handles the signals)."""
    assert settings.database_url
    if not asyncio.run(_database_answers(settings.database_url)):
        log.info("api stopped before the database was reachable")
        return
    app = create_app(with_bind_host(settings, host))
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    _Server(config, app.state.run_feed).run()


async def _database_answers(url: str) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await wait_for_database(url, stop, name="ordinaut-api")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def with_bind_host(settings: Settings, host: str) -> Settings:
    """``settings`` whose MCP endpoint also answers the address the API binds: a client on
    another machine reaching ``--host 10.0.0.5`` sends ``Host: 10.0.0.5:8080``."""
    pattern = bind_host_pattern(host)
    if pattern is None:
        return settings
    return replace(settings, mcp_allowed_hosts=(*settings.mcp_allowed_hosts, pattern))
