"""LISTEN for wake-ups (new due work) and cancel requests, reconnecting with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from engine.errors import StoreError
from store.db import connect
from store.due_work import CANCEL_CHANNEL, listen_for_work

log = logging.getLogger("ordinaut.worker")


async def listen(
    database_url: str,
    *,
    on_wake: Callable[[], None],
    on_cancel: Callable[[str], None],
    worker_id: str,
) -> None:
    """Forever: hold a LISTEN connection; call ``on_wake`` for new work (and after every
    reconnect, since notifications sent meanwhile were lost) and ``on_cancel(run_id)``."""
    delay = 0.1
    while True:
        try:
            conn = await connect(database_url, name="ordinaut-worker-listen")
            async with conn:
                await listen_for_work(conn)
                delay = 0.1
                on_wake()
                async for notification in conn.notifies():
                    if notification.channel == CANCEL_CHANNEL:
                        on_cancel(notification.payload)
                    else:
                        on_wake()
        except (psycopg.Error, OSError, StoreError) as exc:
            log.warning("listen connection lost: %s", exc, extra={"worker_id": worker_id})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
