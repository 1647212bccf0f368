"""What each process and database command of the CLI does (``ordinaut up`` is
:mod:`ops.supervisor`)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from engine.settings import Settings
from ops.database import apply_migrations, create_agent, embedded
from ops.embedded_pg import EmbeddedPostgresError
from ops.terminal import CommandError, say


def db(settings: Settings, action: str) -> int:
    cluster = embedded(settings)
    try:
        if action == "start":
            print(cluster.start())
        elif action == "stop":
            if not cluster.stop():
                say("embedded PostgreSQL is not running")
        else:
            url = cluster.url()
            if url is None:
                say("embedded PostgreSQL is not running (ordinaut db start)")
                return 1
            print(url)
    except EmbeddedPostgresError as exc:
        raise CommandError(str(exc)) from None
    return 0


def migrate(settings: Settings) -> int:
    applied = asyncio.run(apply_migrations(settings))
    say(
        f"applied {len(applied)} migration(s): {', '.join(applied)}"
        if applied
        else "migrations already at head"
    )
    return 0


def api(settings: Settings, host: str, port: int) -> int:
    from api.server import serve

    serve(settings, host, port)
    return 0


def scheduler(settings: Settings, metrics_port: int | None) -> int:
    from scheduler.process import SchedulerProcess

    asyncio.run(_until_signalled(SchedulerProcess(settings, metrics_port).run))
    return 0


def worker(settings: Settings, concurrency: int, metrics_port: int | None) -> int:
    from workers.process import WorkerProcess

    asyncio.run(_until_signalled(WorkerProcess(settings, concurrency, metrics_port).run))
    return 0


def agent_create(settings: Settings, name: str, scopes: list[str]) -> int:
    line, token = asyncio.run(create_agent(settings, name, scopes))
    say(line)
    say("its token (shown once, store it now):")
    print(token)
    return 0


async def _until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; SIGINT or SIGTERM sets ``stop`` (the process then shuts down)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)
