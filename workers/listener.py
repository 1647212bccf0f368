"""LISTEN connections that reconnect with backoff: the worker's (new due work, cancel
requests) and its tool catalog's (runtime tools changed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import Notify

from engine.errors import StoreError
from store.db import Connection, connect
from store.due_work import CANCEL_CHANNEL, listen_for_work

log = logging.getLogger("ordinaut.worker")


async def listen(
    database_url: str,
    *,
    on_wake: Callable[[], None],
    on_cancel: Callable[[str], None],
    worker_id: str,
) -> None:
    """Forever: call ``on_wake`` for new work (and after every reconnect, since notifications
    sent meanwhile were lost) and ``on_cancel(run_id)`` for a cancel request."""

    def dispatch(notification: Notify) -> None:
        if notification.channel == CANCEL_CHANNEL:
            on_cancel(notification.payload)
        else:
            on_wake()

    await hold_listening(
        database_url,
        name="ordinaut-worker-listen",
        subscribe=listen_for_work,
        on_connect=on_wake,
        on_notify=dispatch,
        what="listen connection",
        log_extra={"worker_id": worker_id},
    )


async def hold_listening(
    database_url: str,
    *,
    name: str,
    subscribe: Callable[[Connection], Awaitable[None]],
    on_connect: Callable[[], None],
    on_notify: Callable[[Notify], None],
    what: str,
    log_extra: dict[str, Any] | None = None,
) -> None:
    """Forever: hold a connection subscribed by ``subscribe``; ``on_connect`` after each
    (re)connect, ``on_notify`` for each notification; reconnect with backoff (0.1 s to 5 s)."""
    delay = 0.1
    while True:
        try:
            conn = await connect(database_url, name=name)
            async with conn:
                await subscribe(conn)
                delay = 0.1
                on_connect()
                async for notification in conn.notifies():
                    on_notify(notification)
        except (psycopg.Error, OSError, StoreError) as exc:
            log.warning("%s lost: %s", what, exc, extra=log_extra)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
