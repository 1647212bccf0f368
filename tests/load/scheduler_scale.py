"""Scheduler scale: a million active cron and RRULE tasks in many zones.

Run: ``python -m tests.load.scheduler_scale [--tasks 1000000] [--minutes 60] [--json FILE]``
(``DATABASE_URL``: a server to create the database on; else a private embedded PostgreSQL
with fsync off). The tasks are written by one ``INSERT … SELECT generate_series`` (the
bench process holds none of them), then the scheduler — in this process, its clock
injected, so a simulated second takes as long as its work — goes through:

1. **cold start**: every task due at once (a scheduler started after all were created, or
   after an outage shorter than the catch-up grace): the worst tick, everything expands;
2. an **idle tick** (nothing due): the cost of the indexed query alone;
3. **steady state**: ``--minutes`` simulated minutes of 1 s ticks centred on the top of an
   hour, with the CPU the process used per simulated second (% of one core), and the
   **hour boundary** inside it: the scheduler materialises ``horizon`` ahead, so the
   occurrences at the top of the hour (every ``0 * * * *`` task, and the others that land
   on it) are written by the ticks from ``top - horizon`` on; printed is how long after
   ``top - horizon`` the last of them was in ``due_work``;
4. the **herd**: every task moved to ``0 * * * *`` (in whole-hour zones, so all fire at one
   instant), materialised by the first tick that sees them; it must finish within
   ``horizon + 60 s`` for every run to be queued before its minute ends;

with the peak RSS of the process and the rows per second the database inserted.

The mix: 20 % ``0 * * * *``, the rest cron expressions and RRULEs (bare ones anchored at
creation minutes spread over the past year, and ones with ``DTSTART;TZID``), in 24 zones
(whole-hour, half- and quarter-hour offsets, both hemispheres' DST).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.settings import Settings
from scheduler.tick import Scheduler, TickResult
from store.db import Connection, Pool, connect, create_pool
from tests.load.scheduling_db import bench_database

ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Chisinau",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Perth",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Honolulu",
)
# Zones whose offset is a whole number of hours all year: their 0 * * * * is the UTC hour.
NOT_WHOLE_HOUR = {
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Pacific/Chatham",
}
WHOLE_HOUR_ZONES = tuple(zone for zone in ZONES if zone not in NOT_WHOLE_HOUR)
HOUR = timedelta(hours=1)

# One row per task: ``r`` (0-1) picks the kind, ``m``/``h``/``d`` the minute, hour and
# day, ``z`` the zone; the anchor (creation minute) is spread over the past year.
_FILL = """
INSERT INTO tasks (created_by, title, schedule_kind, schedule_expr, timezone, payload,
                   anchor_at, expanded_until, next_expand_at)
SELECT %(agent)s, 'bench', s.kind, s.expr, (%(zones)s::text[])[s.z], '{"pipeline": []}',
       date_trunc('minute', %(now)s::timestamptz - (s.age || ' minutes')::interval),
       %(mark)s, %(mark)s
  FROM (
    SELECT CASE WHEN r < 0.28 OR r >= 0.6 THEN 'cron' ELSE 'rrule' END AS kind,
           CASE
             WHEN r < 0.20 THEN '0 * * * *'
             WHEN r < 0.28 THEN '*/' || (ARRAY[1, 5, 10, 15])[1 + d %% 4] || ' * * * *'
             WHEN r < 0.36 THEN 'FREQ=HOURLY;BYMINUTE=' || m
             WHEN r < 0.44 THEN 'FREQ=DAILY;BYHOUR=' || h || ';BYMINUTE=' || m
             WHEN r < 0.48 THEN 'FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=' || h || ';BYMINUTE=' || m
             WHEN r < 0.52 THEN 'FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=' || h || ';BYMINUTE=' || m
             WHEN r < 0.56 THEN 'FREQ=MINUTELY;INTERVAL=' || (ARRAY[5, 7, 30])[1 + d %% 3]
             WHEN r < 0.60 THEN 'DTSTART;TZID=' || (%(zones)s::text[])[z] || ':2026010'
                                || (1 + d %% 8) || 'T' || lpad(h::text, 2, '0')
                                || lpad(m::text, 2, '0') || '00' || chr(10)
                                || 'RRULE:FREQ=DAILY;INTERVAL=2'
             WHEN r < 0.72 THEN m || ' * * * *'
             WHEN r < 0.84 THEN m || ' ' || h || ' * * 1-5'
             WHEN r < 0.92 THEN m || ' ' || h || ' * * *'
             ELSE m || ' ' || h || ' 1,15 * *'
           END AS expr,
           z, age
      FROM (
        SELECT random() AS r, floor(random() * 60)::int AS m, floor(random() * 24)::int AS h,
               floor(random() * 1000)::int AS d,
               1 + floor(random() * cardinality(%(zones)s::text[]))::int AS z,
               floor(random() * 525600)::int AS age
          FROM generate_series(1, %(count)s)
      ) AS drawn
  ) AS s
"""


@dataclass
class Phase:
    """One measured phase: what the scheduler did and what it cost."""

    tasks: int = 0
    occurrences: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.occurrences / self.wall_seconds if self.wall_seconds else 0.0


@dataclass
class ScaleResult:
    """Everything the benchmark prints, for ``make bench``'s JSON."""

    tasks: int
    horizon_seconds: float
    fill_seconds: float = 0.0
    cold_start: Phase = field(default_factory=Phase)
    idle_tick_ms: float = 0.0
    steady: Phase = field(default_factory=Phase)
    simulated_seconds: int = 0
    steady_cpu_percent: float = 0.0
    busiest_tick_seconds: float = 0.0
    boundary_tasks: int = 0
    boundary_seconds: float = 0.0
    herd: Phase = field(default_factory=Phase)
    peak_rss_mib: float = 0.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fill(conn: Connection, count: int, now: datetime) -> None:
    """``count`` tasks of the mix, all due at ``now`` (their mark just before it)."""
    cursor = await conn.execute(
        "INSERT INTO agents (name, scopes) VALUES ('bench', '{admin}') RETURNING id"
    )
    agent = (await cursor.fetchone() or {})["id"]
    await conn.execute("SELECT setseed(0.7)")
    mark = now - timedelta(seconds=1)
    await conn.execute(
        _FILL, {"agent": agent, "zones": list(ZONES), "now": now, "mark": mark, "count": count}
    )
    await conn.execute("ANALYZE tasks")


async def scalar(conn: Connection, query: str) -> int:
    cursor = await conn.execute(query)
    row = await cursor.fetchone()
    return int(next(iter(row.values()))) if row else 0


async def timed_tick(scheduler: Scheduler) -> tuple[TickResult, Phase]:
    wall, used = time.perf_counter(), cpu()
    result = await scheduler.tick()
    phase = Phase(
        tasks=result.tasks,
        occurrences=result.occurrences,
        wall_seconds=time.perf_counter() - wall,
        cpu_seconds=cpu() - used,
    )
    return result, phase


async def idle_tick_ms(scheduler: Scheduler) -> float:
    samples = []
    for _ in range(21):
        started = time.perf_counter()
        await scheduler.tick()
        samples.append(time.perf_counter() - started)
    return sorted(samples)[10] * 1e3


async def steady_state(
    out: ScaleResult,
    scheduler: Scheduler,
    clock: dict[str, datetime],
    top: datetime,
    minutes: int,
) -> None:
    """1 s ticks from ``top - minutes/2`` for ``minutes``. The tick at ``top - horizon`` is
    the first whose horizon reaches the top of the hour: it writes the top's occurrences,
    and its duration is the boundary's."""
    start = top - timedelta(minutes=minutes / 2)
    boundary_tick = top - timedelta(seconds=out.horizon_seconds)
    wall, used = time.perf_counter(), cpu()
    for second in range(minutes * 60):
        clock["now"] = start + timedelta(seconds=second)
        started = time.perf_counter()
        result = await scheduler.tick()
        took = time.perf_counter() - started
        out.busiest_tick_seconds = max(out.busiest_tick_seconds, took)
        out.steady.tasks += result.tasks
        out.steady.occurrences += result.occurrences
        if clock["now"] == boundary_tick:
            out.boundary_seconds = took
            out.boundary_tasks = await occurrences_at(scheduler.pool, top)
    out.steady.wall_seconds = time.perf_counter() - wall
    out.steady.cpu_seconds = cpu() - used
    out.simulated_seconds = minutes * 60
    out.steady_cpu_percent = out.steady.cpu_seconds / out.simulated_seconds * 100
    # Nothing for the top was left to a later tick (the CPU of these counts is not in the
    # steady state's: they come after it).
    if minutes * 30 >= out.horizon_seconds:
        later = await occurrences_at(scheduler.pool, top)
        assert later == out.boundary_tasks, f"{later - out.boundary_tasks} came late"


async def occurrences_at(pool: Pool, at: datetime) -> int:
    """How many runs are queued for ``at`` (the schedules' own answer)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM due_work WHERE scheduled_for = %s", (at,)
        )
        row = await cursor.fetchone()
        return int(row["n"]) if row else 0


async def herd(out: ScaleResult, pool: Pool, settings: Settings, top: datetime) -> None:
    """Every task on ``0 * * * *`` in a whole-hour zone, due at ``top``; one tick at
    ``top - horizon`` must materialise all of them."""
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE due_work")
        await conn.execute(
            """
            UPDATE tasks SET schedule_kind = 'cron', schedule_expr = '0 * * * *',
                   timezone = (%(zones)s::text[])[1 + abs(hashtext(id::text)) %% %(n)s],
                   expanded_until = %(mark)s, next_expand_at = %(top)s
            """,
            {
                "zones": list(WHOLE_HOUR_ZONES),
                "n": len(WHOLE_HOUR_ZONES),
                "mark": top - timedelta(minutes=1),
                "top": top,
            },
        )
        await conn.execute("VACUUM ANALYZE tasks")
    at = top - timedelta(seconds=settings.scheduler_horizon_seconds)
    scheduler = Scheduler(settings, pool, clock=lambda: at)
    _, out.herd = await timed_tick(scheduler)


async def run(count: int, minutes: int, report: Callable[[str], None]) -> ScaleResult:
    settings = Settings()  # the default horizon (30 s) and catch-up grace (60 s)
    out = ScaleResult(tasks=count, horizon_seconds=settings.scheduler_horizon_seconds)
    top = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + 2 * HOUR
    now = top - timedelta(minutes=minutes / 2 + 1)
    async with bench_database() as url:
        settings = replace(settings, database_url=url)
        pool = create_pool(url, max_size=4)
        await pool.open()
        try:
            conn = await connect(url)
            async with conn:
                started = time.perf_counter()
                await fill(conn, count, now)
                out.fill_seconds = time.perf_counter() - started
            report(f"tasks: {count:,} written in {out.fill_seconds:.1f} s")
            clock = {"now": now}
            scheduler = Scheduler(settings, pool, clock=lambda: clock["now"])
            _, out.cold_start = await timed_tick(scheduler)
            async with pool.connection() as conn:
                stopped = await scalar(
                    conn, "SELECT count(*) FROM tasks WHERE next_expand_at IS NULL"
                )
            assert stopped == 0, f"{stopped} tasks stopped expanding (a schedule failed?)"
            report(_cold(out))
            out.idle_tick_ms = await idle_tick_ms(scheduler)
            report(f"idle tick (nothing due): median {out.idle_tick_ms:.2f} ms")
            async with pool.connection() as conn:
                await conn.execute("TRUNCATE due_work")
            await steady_state(out, scheduler, clock, top, minutes)
            report(_steady(out))
            await herd(out, pool, settings, top + HOUR)
            out.peak_rss_mib = peak_rss_mib()
            report(_herd(out))
            report(f"scheduler process peak RSS: {out.peak_rss_mib:.0f} MiB")
        finally:
            await pool.close()
    return out


def _cold(out: ScaleResult) -> str:
    c = out.cold_start
    return (
        f"cold start, all due at once: {c.tasks:,} tasks, {c.occurrences:,} occurrences in "
        f"{c.wall_seconds:.1f} s wall, {c.cpu_seconds:.1f} s scheduler CPU "
        f"({c.tasks / c.wall_seconds:,.0f} tasks/s, {c.rows_per_second:,.0f} rows/s inserted)"
    )


def _steady(out: ScaleResult) -> str:
    s = out.steady
    return (
        f"steady state, {out.simulated_seconds // 60} simulated minutes of 1 s ticks: "
        f"{s.occurrences:,} occurrences from {s.tasks:,} task expansions; {s.wall_seconds:.1f} s "
        f"wall, {s.cpu_seconds:.1f} s CPU → {out.steady_cpu_percent:.2f} % of one core; "
        f"busiest tick {out.busiest_tick_seconds:.2f} s\n"
        f"hour boundary in the mix: {out.boundary_tasks:,} occurrences at the top of the hour, "
        f"written by the tick at top - {out.horizon_seconds:.0f} s in "
        f"{out.boundary_seconds:.2f} s"
    )


def _herd(out: ScaleResult) -> str:
    h = out.herd
    return (
        f"herd: {h.tasks:,} tasks on '0 * * * *' due at one instant: {h.occurrences:,} "
        f"occurrences in one tick, {h.wall_seconds:.1f} s wall ({h.cpu_seconds:.1f} s CPU, "
        f"{h.rows_per_second:,.0f} rows/s inserted); budget horizon + 60 s = "
        f"{out.horizon_seconds + 60:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=int, default=60, help="simulated steady-state minutes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    out = asyncio.run(run(args.tasks, args.minutes, lambda line: print(line, flush=True)))
    if args.json:
        args.json.write_text(json.dumps(asdict(out), indent=2))


if __name__ == "__main__":
    main()
