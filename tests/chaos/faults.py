"""The faults, one at a time, each followed by a measure of how long the system took to
recover: from the fault until a new manual run (through the API, the database and a worker)
has succeeded."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import OperationalError

from tests.chaos.load import Ledger, run_now
from tests.chaos.world import World

RESTARTS = ("pg_restart_fast", "pg_restart_immediate")
OTHER_FAULTS = ("terminate_backends", "kill_worker", "kill_scheduler")
RECOVERY_DEADLINE_SECONDS = 120.0


@dataclass(frozen=True)
class Recovery:
    """One fault: when (seconds into the chaos), how long causing it took (a restart waits
    for the server to be up again; a killed process is started again after a second), and
    seconds from the fault until the API acknowledged a run again and until that run had
    succeeded (None: not within the deadline)."""

    kind: str
    at: float
    inject_seconds: float
    api_seconds: float | None
    run_seconds: float | None


def other_faults(rng: random.Random) -> Iterator[str]:
    """The faults between restarts: each kind once per round, in a random order."""
    while True:
        round_ = list(OTHER_FAULTS)
        rng.shuffle(round_)
        yield from round_


async def inject(world: World, kind: str, rng: random.Random) -> None:
    """Cause the fault ``kind`` (a killed process is started again a second later)."""
    if kind == "pg_restart_fast":
        await asyncio.to_thread(world.pg.restart, "fast")
    elif kind == "pg_restart_immediate":
        await asyncio.to_thread(world.pg.restart, "immediate")
    elif kind == "terminate_backends":
        await terminate_backends(world)
    elif kind == "kill_worker":
        victim = rng.choice([w for w in world.workers if w.popen.poll() is None])
        victim.kill()
        world.workers.remove(victim)
        await asyncio.sleep(1)
        world.start_worker()
    elif kind == "kill_scheduler":
        world.scheduler.kill()
        await asyncio.sleep(1)
        world.start_scheduler()
    else:
        raise ValueError(f"unknown fault {kind!r}")
    world.restarted.append(kind)


async def terminate_backends(world: World) -> int:
    """``pg_terminate_backend`` every connection of an Ordinaut process (API pool, workers'
    pools and LISTEN connections, the scheduler)."""
    try:
        rows = await world.rows(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
            "WHERE application_name LIKE 'ordinaut%%' AND pid <> pg_backend_pid()"
        )
    except OperationalError:
        return 0
    return int(rows[0]["n"])


async def recover(
    world: World, ledger: Ledger, kind: str, fault_at: float, injected: float, start: float
) -> Recovery:
    """Send probe runs until one is acknowledged, then wait for it to succeed."""
    assert world.tasks is not None
    took = injected - fault_at
    give_up = time.time() + RECOVERY_DEADLINE_SECONDS
    run_id = None
    async with world.client() as client:
        while run_id is None and time.time() < give_up:
            run_id = await run_now(client, ledger, world.tasks.probe)
            if run_id is None:
                await asyncio.sleep(0.1)
    if run_id is None:
        return Recovery(kind, fault_at - start, took, None, None)
    ledger.probes.append(run_id)
    api_seconds = time.time() - fault_at
    while time.time() < give_up:
        rows = await world.rows(
            "SELECT extract(epoch FROM finished_at) AS at, status FROM runs WHERE id = %s", run_id
        )
        if rows:
            finished = float(rows[0]["at"]) - fault_at
            return Recovery(kind, fault_at - start, took, api_seconds, finished)
        await asyncio.sleep(0.05)
    return Recovery(kind, fault_at - start, took, api_seconds, None)
