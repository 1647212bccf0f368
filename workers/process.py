"""The worker process: the pool, the tool catalog and transports, the :class:`Worker`, and
``/metrics`` + ``/health`` on the metrics port."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engine.settings import Settings
from observability import metrics
from observability.http import serve_metrics
from observability.logging import bind_log_context
from store.db import create_pool, wait_for_database
from workers.catalog import CatalogCache
from workers.tools.transports import build_transports
from workers.worker import Worker

log = logging.getLogger("ordinaut")


class WorkerProcess:
    """One worker process: ``await WorkerProcess(settings, 10).run(stop)`` until ``stop``."""

    def __init__(
        self, settings: Settings, concurrency: int, metrics_port: int | None = None
    ) -> None:
        assert settings.database_url
        self.settings = settings
        self.concurrency = concurrency
        self.metrics_port = metrics_port
        # Connections: the lease and completion round trips, heartbeats, maintenance and
        # events.publish; more than eight in flight gains nothing.
        self.pool = create_pool(
            settings.database_url,
            max_size=min(concurrency, 8) + 2,
            name="ordinaut-worker",
            check_on_checkout=False,
        )
        # The tool catalog is cached (files + runtime tools, refreshed on NOTIFY).
        self.catalog = CatalogCache(settings.database_url, self.pool)

    async def run(self, stop: asyncio.Event) -> None:
        assert self.settings.database_url
        if not await wait_for_database(self.settings.database_url, stop, name="ordinaut-worker"):
            log.info("worker stopped before the database was reachable")
            return
        await self.pool.open(wait=False)
        await self.catalog.start()
        # The transports (HTTP pools, MCP sessions, circuit breakers) live as long as the
        # process.
        transports = build_transports(self.settings, self.pool)
        worker = Worker(
            self.settings,
            self.pool,
            self.catalog,
            concurrency=self.concurrency,
            tools=transports.router,
        )
        metrics.register("worker")
        # Every log line of this process (and of the runs' tasks it creates) names the worker.
        bind_log_context(worker_id=worker.worker_id)

        async def health() -> tuple[bool, dict[str, Any]]:
            return worker.health()

        server = (
            await serve_metrics("0.0.0.0", self.metrics_port, health) if self.metrics_port else None
        )
        log.info("worker started", extra={"worker_id": worker.worker_id})
        await worker.run(stop)
        await transports.aclose()
        await self.catalog.stop()
        if server:
            server.close()
        await self.pool.close()
        log.info("worker stopped", extra={"worker_id": worker.worker_id})
