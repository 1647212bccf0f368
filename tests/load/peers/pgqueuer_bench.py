"""PgQueuer driven through its documented API: ``Queries.install``, batch ``Queries.enqueue``
with lists, and a worker process built on ``PgQueuer`` with one no-op entrypoint.

Run inside ``.bench-venv`` (see ``tests/load/peers/requirements.txt``):

    python -m tests.load.peers.pgqueuer_bench setup --dsn URL
    python -m tests.load.peers.pgqueuer_bench enqueue --dsn URL --runs 20000
    python -m tests.load.peers.pgqueuer_bench work --dsn URL --stats FILE [--batch-size 10]
    python -m tests.load.peers.pgqueuer_bench unfinished --dsn URL

The worker uses asyncpg and uvloop, as PgQueuer's own ``pgq run`` does, and PgQueuer's
defaults (dequeue batches of 10, no concurrency cap) unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import asyncpg
import uvloop
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from tests.load.peers.common import HandlerStats, chunks, parse_args

ENTRYPOINT = "noop"


async def setup(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


async def enqueue(dsn: str, runs: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(conn))
        for size in chunks(runs):
            await queries.enqueue([ENTRYPOINT] * size, [None] * size, [0] * size)
    finally:
        await conn.close()


async def unfinished(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        print(sum(row.count for row in await Queries(AsyncpgDriver(conn)).queue_size()))
    finally:
        await conn.close()


async def work(dsn: str, stats_path: Path, batch_size: int, concurrency: int) -> None:
    stats = HandlerStats()
    conn = await asyncpg.connect(dsn)
    pgq = PgQueuer.from_asyncpg_connection(conn)

    @pgq.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        stats.job()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, pgq.shutdown.set)
    flusher = asyncio.create_task(stats.flush_forever(stats_path))
    try:
        # concurrency 0 keeps PgQueuer's default: no cap on jobs in flight.
        await pgq.run(batch_size=batch_size, max_concurrent_tasks=concurrency or None)
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        stats.write(stats_path)
        await conn.close()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.command == "setup":
        uvloop.run(setup(args.dsn))
    elif args.command == "enqueue":
        uvloop.run(enqueue(args.dsn, args.runs))
    elif args.command == "unfinished":
        uvloop.run(unfinished(args.dsn))
    else:
        uvloop.run(work(args.dsn, args.stats, args.batch_size, args.concurrency))


if __name__ == "__main__":
    main()
