"""LISTEN/NOTIFY: held subscriptions that reconnect by themselves.

Notifications are sent by the statements that cause them (``pg_notify`` inside the write,
so they go out at commit). Listeners hold one connection each: the worker's (new work,
cancel requests), its tool catalog's (runtime tools changed) and the API's (runs that
finished, for waiters and streams).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from engine.errors import StoreError
from store.db import connect, translated_errors

log = logging.getLogger("ordinaut.store")

INITIAL_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class Notification:
    channel: str
    payload: str


async def hold_listening(
    database_url: str,
    *,
    name: str,
    channels: Sequence[str],
    on_connect: Callable[[], None],
    on_notify: Callable[[Notification], None],
    what: str,
    log_extra: dict[str, Any] | None = None,
) -> None:
    """Forever: hold a connection that LISTENs on ``channels``; call ``on_connect`` after
    each (re)connect (notifications sent while nobody listened are lost: look again then)
    and ``on_notify`` for each notification; reconnect with backoff (0.1 s to 5 s)."""
    delay = INITIAL_BACKOFF_SECONDS
    while True:
        try:
            conn = await connect(database_url, name=name)
            async with translated_errors(), conn:
                for channel in channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                delay = INITIAL_BACKOFF_SECONDS
                on_connect()
                async for notification in conn.notifies():
                    on_notify(Notification(notification.channel, notification.payload))
        except StoreError as exc:
            log.warning("%s lost: %s", what, exc.message, extra=log_extra)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)
