"""The worker's tool catalog: the files plus the runtime tools, cached in memory.

The hot path (one lookup per run) never queries the database. The cache is reloaded:

- when ``POST /tools`` / ``DELETE /tools`` commit (a NOTIFY on ``ordinaut_tools``),
- after the LISTEN connection (re)connects (notifications sent meanwhile were lost),
- every ``refresh_seconds`` as a safety net.

A failed reload keeps the last good catalog and is retried at the next occasion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from engine.catalog import Catalog, file_catalog
from engine.errors import StoreError
from store import tools as tools_store
from store.db import Pool
from store.notify import hold_listening

log = logging.getLogger("ordinaut.worker")

DEFAULT_REFRESH_SECONDS = 60.0


@dataclass
class CatalogCache:
    """A ``CatalogProvider`` (``await cache()`` → :class:`Catalog`) kept fresh by NOTIFY."""

    database_url: str
    pool: Pool
    refresh_seconds: float = DEFAULT_REFRESH_SECONDS
    _catalog: Catalog = field(default_factory=file_catalog)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    loads: int = 0

    async def __call__(self) -> Catalog:
        return self._catalog

    async def start(self) -> None:
        """Load once (best effort), then keep the cache fresh in the background."""
        await self.reload()
        self._tasks = [
            asyncio.create_task(self._listen(), name="catalog-listen"),
            asyncio.create_task(self._reloader(), name="catalog-reload"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def reload(self) -> bool:
        """Read the runtime tools now; False (keeping the old catalog) when that failed."""
        try:
            async with self.pool.connection(timeout=10) as conn:
                runtime = await tools_store.runtime_tool_specs(conn)
        except StoreError as exc:
            log.warning("tool catalog reload failed: %s", exc.message)
            return False
        self._catalog = file_catalog().with_tools(runtime)
        self.loads += 1
        return True

    async def _reloader(self) -> None:
        """Reload when told to, or every ``refresh_seconds``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.refresh_seconds)
            self._changed.clear()
            await self.reload()

    async def _listen(self) -> None:
        await hold_listening(
            self.database_url,
            name="ordinaut-worker-tools",
            channels=[tools_store.TOOLS_CHANNEL],
            on_connect=self._changed.set,  # whatever changed while we were not listening
            on_notify=lambda _notification: self._changed.set(),
            what="tool catalog listener connection",
        )
