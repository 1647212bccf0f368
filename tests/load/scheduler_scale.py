"""Scheduler scale: 100 000 active cron and RRULE tasks.

Run: ``python -m tests.load.scheduler_scale [--tasks N]``. Prints:

1. a cold start: every task due at once (the worst tick: everything expands);
2. an idle tick (nothing due): the cost of the indexed query alone;
3. steady state: one simulated hour of one-second ticks (the clock is injected, so the hour
   takes as long as the work, not an hour), with the CPU the scheduler process used per
   real second of schedule;
4. a herd: every task on ``0 * * * *`` due in the same tick, with the time to materialise
   it all (it must fit in the horizon for runs to start on time).

Tasks mix cron expressions and RRULEs (bare and with DTSTART;TZID), five zones, and
creation times spread over the past year (so RRULEs are re-anchored, not replayed).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.schedules import parse_schedule
from engine.settings import Settings
from scheduler.tick import Scheduler
from store.db import connect, create_pool
from tests.load.scheduling_db import bench_database

ZONES = ["UTC", "Europe/Chisinau", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
HOUR = timedelta(hours=1)


def schedule_mix(rng: random.Random) -> tuple[str, str]:
    """One task's schedule: a spread of realistic cron expressions and RRULEs."""
    m, h = rng.randrange(60), rng.randrange(24)
    choice = rng.randrange(10)
    if choice == 0:
        return "cron", f"*/{rng.choice([1, 5, 10, 15])} * * * *"
    if choice == 1:
        return "cron", f"{m} * * * *"
    if choice == 2:
        return "cron", f"{m} {h} * * 1-5"
    if choice == 3:
        return "cron", f"{m} {h} 1,15 * *"
    if choice == 4:
        return "rrule", f"FREQ=HOURLY;BYMINUTE={m}"
    if choice == 5:
        return "rrule", f"FREQ=DAILY;BYHOUR={h};BYMINUTE={m}"
    if choice == 6:
        return "rrule", f"FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR={h};BYMINUTE={m}"
    if choice == 7:
        return "rrule", f"FREQ=MONTHLY;BYDAY=-1FR;BYHOUR={h};BYMINUTE={m}"
    if choice == 8:
        return "rrule", f"FREQ=MINUTELY;INTERVAL={rng.choice([5, 7, 30])}"
    zone = rng.choice(ZONES)
    return "rrule", (
        f"DTSTART;TZID={zone}:2026010{rng.randrange(1, 9)}T{h:02d}{m:02d}00\n"
        "RRULE:FREQ=DAILY;INTERVAL=2"
    )


async def insert_tasks(url: str, count: int, now: datetime, *, herd: bool) -> float:
    """Insert ``count`` tasks, all due in the first tick. Returns the seconds
    spent computing their schedules' first occurrence (what POST /tasks pays per task)."""
    rng = random.Random(7)
    rows: list[tuple[Any, ...]] = []
    parse_seconds = 0.0
    for _ in range(count):
        kind, expr = ("cron", "0 * * * *") if herd else schedule_mix(rng)
        zone = "UTC" if herd else rng.choice(ZONES)
        anchor = (now - timedelta(minutes=rng.randrange(525_600))).replace(second=0, microsecond=0)
        started = time.perf_counter()
        schedule = parse_schedule(kind, expr, zone, anchor=anchor)
        assert schedule is not None and schedule.next_after(now) is not None
        parse_seconds += time.perf_counter() - started
        rows.append((kind, expr, zone, anchor))
    # Every task is due in the first tick: its mark is just before ``now``.
    mark = now - timedelta(seconds=1)
    conn = await connect(url)
    async with conn:
        cursor = await conn.execute(
            "INSERT INTO agents (name, scopes) VALUES (%s, '{admin}') RETURNING id",
            (f"bench-{uuid.uuid4().hex[:8]}",),
        )
        agent = (await cursor.fetchone() or {})["id"]
        await conn.execute("DELETE FROM tasks")
        async with (
            conn.cursor() as cur,
            cur.copy(
                "COPY tasks (created_by, title, schedule_kind, schedule_expr, timezone, payload,"
                " anchor_at, expanded_until, next_expand_at) FROM STDIN"
            ) as copy,
        ):
            for kind, expr, zone, anchor in rows:
                await copy.write_row(
                    (agent, "bench", kind, expr, zone, '{"pipeline": []}', anchor, mark, mark)
                )
        await conn.execute("ANALYZE tasks")
    return parse_seconds


async def due_work_rows(url: str) -> int:
    conn = await connect(url)
    async with conn:
        cursor = await conn.execute("SELECT count(*) AS n FROM due_work")
        return int((await cursor.fetchone() or {"n": 0})["n"])


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(count: int, steady_minutes: int) -> None:
    settings = Settings(scheduler_horizon_seconds=10, catch_up_grace_seconds=60)
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=5)
    async with bench_database() as url:
        settings = replace(settings, database_url=url)
        pool = create_pool(url, max_size=4)
        await pool.open()
        try:
            parse = await insert_tasks(url, count, now, herd=False)
            print(
                f"tasks: {count}  (first-occurrence computation at create: "
                f"{parse / count * 1e6:.0f} µs/task)"
            )
            clock = {"now": now}
            scheduler = Scheduler(settings, pool, clock=lambda: clock["now"])

            wall, used = time.perf_counter(), cpu()
            result = await scheduler.tick()
            wall, used = time.perf_counter() - wall, cpu() - used
            print(
                f"cold start, all due at once: {result.tasks} tasks, {result.occurrences} "
                f"occurrences in {wall:.2f} s wall, {used:.2f} s CPU "
                f"({result.tasks / wall:,.0f} tasks/s)"
            )

            samples = []
            for _ in range(20):
                started = time.perf_counter()
                await scheduler.tick()
                samples.append(time.perf_counter() - started)
            samples.sort()
            print(
                f"idle tick (nothing due): median {samples[10] * 1e3:.2f} ms, "
                f"max {samples[-1] * 1e3:.2f} ms"
            )

            rows_before = await due_work_rows(url)
            ticks, busiest, expanded = 0, 0.0, 0
            wall, used = time.perf_counter(), cpu()
            for second in range(1, steady_minutes * 60 + 1):
                clock["now"] = now + timedelta(seconds=second)
                started = time.perf_counter()
                result = await scheduler.tick()
                busiest = max(busiest, time.perf_counter() - started)
                expanded += result.tasks
                ticks += 1
            wall, used = time.perf_counter() - wall, cpu() - used
            produced = await due_work_rows(url) - rows_before
            simulated = steady_minutes * 60
            print(
                f"steady state, {steady_minutes} simulated minutes of 1 s ticks: "
                f"{produced} occurrences from {expanded} task expansions; "
                f"{wall:.1f} s wall, {used:.1f} s CPU → {used / simulated * 100:.1f}% of one "
                f"core; mean tick {wall / ticks * 1e3:.1f} ms, busiest {busiest * 1e3:.0f} ms"
            )
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"scheduler process peak RSS: {rss:.0f} MiB")

            # The herd: every task fires at the top of the next hour; the tick 5 s before it
            # must materialise them all.
            top = now.replace(minute=0) + HOUR
            await insert_tasks(url, count, top - timedelta(seconds=20), herd=True)
            conn = await connect(url)
            async with conn:
                await conn.execute("TRUNCATE due_work")
            herd = Scheduler(settings, pool, clock=lambda: top - timedelta(seconds=5))
            wall = time.perf_counter()
            result = await herd.tick()
            wall = time.perf_counter() - wall
            print(
                f"herd: {result.tasks} tasks on '0 * * * *' due in one tick: "
                f"{result.occurrences} occurrences in {wall:.2f} s "
                f"(horizon {settings.scheduler_horizon_seconds:.0f} s)"
            )
        finally:
            await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=60, help="simulated steady-state minutes")
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.minutes))


if __name__ == "__main__":
    main()
