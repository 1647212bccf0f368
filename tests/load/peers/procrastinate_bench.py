"""Procrastinate driven through its documented API: ``schema_manager.apply_schema_async``,
``Task.batch_defer_async``, and ``App.run_worker_async`` with one no-op async task.

Run inside ``.bench-venv`` (see ``tests/load/peers/requirements.txt``):

    python -m tests.load.peers.procrastinate_bench setup --dsn URL
    python -m tests.load.peers.procrastinate_bench enqueue --dsn URL --runs 20000
    python -m tests.load.peers.procrastinate_bench work --dsn URL --stats FILE --concurrency 50
    python -m tests.load.peers.procrastinate_bench unfinished --dsn URL

The worker keeps Procrastinate's defaults (its psycopg connector's pool, LISTEN/NOTIFY on,
finished jobs kept) and runs ``concurrency`` jobs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from procrastinate import App, PsycopgConnector

from tests.load.peers.common import HandlerStats, chunks, parse_args

STATS = HandlerStats()


def make_app(dsn: str) -> App:
    return App(connector=PsycopgConnector(conninfo=dsn))


def register(app: App) -> None:
    @app.task(name="noop")
    async def noop() -> None:
        STATS.job()


async def setup(dsn: str) -> None:
    app = make_app(dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def enqueue(dsn: str, runs: int) -> None:
    app = make_app(dsn)
    register(app)
    async with app.open_async():
        task = app.tasks["noop"]
        for size in chunks(runs):
            await task.batch_defer_async(*({} for _ in range(size)))


async def unfinished(dsn: str) -> None:
    app = make_app(dsn)
    async with app.open_async():
        queues = await app.job_manager.list_queues_async()
        print(sum(queue["todo"] + queue["doing"] for queue in queues))


async def work(dsn: str, stats_path: Path, concurrency: int) -> None:
    app = make_app(dsn)
    register(app)
    flusher = asyncio.create_task(STATS.flush_forever(stats_path))
    try:
        async with app.open_async():
            # SIGINT/SIGTERM stop the worker gracefully (install_signal_handlers default).
            await app.run_worker_async(concurrency=concurrency, wait=True)
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        STATS.write(stats_path)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.command == "setup":
        asyncio.run(setup(args.dsn))
    elif args.command == "enqueue":
        asyncio.run(enqueue(args.dsn, args.runs))
    elif args.command == "unfinished":
        asyncio.run(unfinished(args.dsn))
    else:
        asyncio.run(work(args.dsn, args.stats, args.concurrency))


if __name__ == "__main__":
    main()
