"""Chaos: a steady load of scheduled, manual and event runs while PostgreSQL restarts, backends
are terminated, workers and the scheduler are ``kill -9``'d, and a session pins the xmin
horizon; then proof that every occurrence succeeded exactly once and nothing was lost.

Used by the CI test (``tests/e2e/test_chaos.py``, about two minutes) and the soak
(``python -m tests.load.soak``, ten minutes). :func:`run_chaos` runs one :class:`ChaosPlan`:

1. a private PostgreSQL, ``ordinaut api``, one scheduler, workers, and the idempotent
   receiver (:mod:`.receiver`) registered as the ``http`` tool the runs call;
2. the load (:mod:`.load`): RRULE tasks firing every second (``catch_up: all``), ``run_now``
   calls and events through the API, all calling the receiver;
3. a baseline: a burst of no-op runs queued at once, its drain rate measured;
4. a session holds a transaction open (xmin pinned) while the load goes on and another
   burst drains: the same figures under the pinned horizon;
5. the faults (:mod:`.faults`): PostgreSQL restarted every 5 to 40 s in the soak (``-m fast``
   and ``-m immediate`` in turn) and, half-way between two restarts, one of
   ``pg_terminate_backend`` of every Ordinaut backend, ``kill -9`` of a worker or of the
   scheduler (started again a second later); each fault is followed by its recovery time;
6. the load stops; once everything has finished, :func:`.verify.verify` checks the history.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.chaos.faults import RESTARTS, Recovery, inject, other_faults, recover
from tests.chaos.load import Ledger, burst, drive
from tests.chaos.receiver import receiving
from tests.chaos.verify import (
    Verdict,
    Window,
    drain_rate,
    expected_occurrences,
    finished_everything,
    verify,
    window,
)
from tests.chaos.world import World, create_tasks, start_world


@dataclass(frozen=True, kw_only=True)
class ChaosPlan:
    chaos_seconds: float = 60.0
    fault_gap: tuple[float, float] = (3.0, 8.0)
    xmin_hold_seconds: float = 30.0
    baseline_seconds: float = 15.0
    burst_runs: int = 2000
    scheduled_tasks: int = 4
    event_tasks: int = 2
    manual_per_second: float = 3.0
    events_per_second: float = 1.0
    workers: int = 2
    concurrency: int = 10
    lease_seconds: float = 5.0
    # Durable commits (the production settings): with synchronous_commit off, an immediate
    # restart loses the last commits, acknowledged ones included, by design.
    fsync: bool = True
    seed: int = 17
    finish_timeout: float = 180.0


@dataclass
class ChaosReport:
    plan: ChaosPlan
    verdict: Verdict = field(default_factory=Verdict)
    recoveries: list[Recovery] = field(default_factory=list)
    baseline: Window | None = None
    pinned: Window | None = None
    baseline_drain: float = 0.0
    pinned_drain: float = 0.0
    dead_tuples_pinned: int = 0
    unacknowledged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The figures, for people."""
        out = [f"chaos: {self.seconds:.0f} s in all; checked {self.verdict.counts}"]
        if self.baseline and self.pinned:
            out.append(
                f"steady load, baseline:   {self.baseline.finished_per_second:.1f} runs/s, "
                f"start delay p50 {self.baseline.delay_p50_ms:.0f} ms "
                f"p99 {self.baseline.delay_p99_ms:.0f} ms"
            )
            out.append(
                f"steady load, xmin pinned {self.plan.xmin_hold_seconds:.0f} s: "
                f"{self.pinned.finished_per_second:.1f} runs/s, start delay p50 "
                f"{self.pinned.delay_p50_ms:.0f} ms p99 {self.pinned.delay_p99_ms:.0f} ms"
            )
        out.append(
            f"burst of {self.plan.burst_runs} no-op runs: {self.baseline_drain:.0f} runs/s, "
            f"{self.pinned_drain:.0f} runs/s with the xmin pinned "
            f"(due_work dead tuples then: {self.dead_tuples_pinned})"
        )
        out.append("fault                  at (s)  took (s)  API back (s)  run succeeded (s)")
        for r in self.recoveries:
            api = f"{r.api_seconds:.2f}" if r.api_seconds is not None else "never"
            run = f"{r.run_seconds:.2f}" if r.run_seconds is not None else "never"
            out.append(f"{r.kind:<22} {r.at:6.1f}  {r.inject_seconds:8.2f}  {api:>12}  {run:>17}")
        out += self._recovery_summary()
        out.append(f"requests not acknowledged (by answer): {self.unacknowledged}")
        out += [f"PROBLEM: {problem}" for problem in self.verdict.problems]
        return out

    def _recovery_summary(self) -> list[str]:
        out = ["by fault: count, took (median), run succeeded after the fault (median / max)"]
        for kind in sorted({r.kind for r in self.recoveries}):
            mine = [r for r in self.recoveries if r.kind == kind]
            runs = [r.run_seconds for r in mine if r.run_seconds is not None]
            took = statistics.median(r.inject_seconds for r in mine)
            shown = f"{statistics.median(runs):.2f} / {max(runs):.2f} s" if runs else "never"
            out.append(f"  {kind:<22} {len(mine):3d}  {took:5.2f} s  {shown}")
        return out


async def run_chaos(plan: ChaosPlan, workdir: Path) -> ChaosReport:
    """Run the plan (see the module docstring) and return what happened."""
    began = time.monotonic()
    report = ChaosReport(plan)
    with receiving() as receiver:
        world = await asyncio.to_thread(
            start_world,
            workdir,
            receiver,
            workers=plan.workers,
            concurrency=plan.concurrency,
            lease_seconds=plan.lease_seconds,
            fsync=plan.fsync,
        )
        try:
            await _run(world, plan, report)
        finally:
            await asyncio.to_thread(world.cluster.stop_all)
            await asyncio.to_thread(world.pg.destroy)
    report.seconds = time.monotonic() - began
    return report


async def _run(world: World, plan: ChaosPlan, report: ChaosReport) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    # The schedule covers the whole load; bursts take some of the chaos phase's time.
    span = 5 + plan.baseline_seconds + plan.xmin_hold_seconds + plan.chaos_seconds
    until = start + timedelta(seconds=int(span))
    await create_tasks(
        world,
        scheduled=plan.scheduled_tasks,
        event_tasks=plan.event_tasks,
        start=start,
        until=until,
    )
    for _ in range(plan.workers):
        world.start_worker()
    ledger = Ledger()
    stop = asyncio.Event()
    await _sleep_until(start)
    load = asyncio.create_task(
        drive(
            world,
            ledger,
            stop,
            manual_per_second=plan.manual_per_second,
            events_per_second=plan.events_per_second,
        )
    )
    try:
        await asyncio.sleep(5)
        await _baseline(world, ledger, plan, report)
        await _pinned(world, ledger, plan, report)
        await _faults(world, ledger, plan, report, until)
        await _sleep_until(until + timedelta(seconds=1))
    finally:
        stop.set()
        await load
    await _wait_finished(world, ledger, len(expected_occurrences(start, until)), plan)
    report.verdict = await verify(world, ledger, start, until)
    report.unacknowledged = dict(ledger.unacknowledged)


async def _baseline(world: World, ledger: Ledger, plan: ChaosPlan, report: ChaosReport) -> None:
    """The steady load alone for ``baseline_seconds``, then a burst."""
    since = datetime.now(UTC)
    await _sleep_until(since + timedelta(seconds=plan.baseline_seconds))
    report.baseline = await window(world, since, datetime.now(UTC))
    ids = await burst(world, ledger, plan.burst_runs)
    await _drained(world, ids)
    report.baseline_drain = await drain_rate(world, ids)


async def _pinned(world: World, ledger: Ledger, plan: ChaosPlan, report: ChaosReport) -> None:
    """Hold a snapshot open (REPEATABLE READ, an xid assigned): nothing deleted after it
    began can be vacuumed away while it lasts. The steady load runs for
    ``xmin_hold_seconds``, then a burst drains with the dead rows of all of it in place."""
    holder = await psycopg.AsyncConnection.connect(world.url, application_name="chaos-xmin")
    try:
        await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await holder.execute("SELECT txid_current(), count(*) FROM runs")
        since = datetime.now(UTC)
        await _sleep_until(since + timedelta(seconds=plan.xmin_hold_seconds))
        report.pinned = await window(world, since, datetime.now(UTC))
        ids = await burst(world, ledger, plan.burst_runs)
        await _drained(world, ids)
        report.pinned_drain = await drain_rate(world, ids)
        dead = await world.rows(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'due_work'"
        )
        report.dead_tuples_pinned = int(dead[0]["n_dead_tup"]) if dead else 0
    finally:
        await holder.close()


async def _faults(
    world: World, ledger: Ledger, plan: ChaosPlan, report: ChaosReport, until: datetime
) -> None:
    rng = random.Random(plan.seed)
    others = other_faults(rng)
    low, high = plan.fault_gap
    began = time.time()
    restarts = 0
    while datetime.now(UTC) + timedelta(seconds=high) < until:
        restart = RESTARTS[restarts % len(RESTARTS)]
        restarts += 1
        next_restart = time.time() + rng.uniform(low, high)
        await _fault(world, ledger, report, restart, rng, began)
        await asyncio.sleep(max(0.0, (next_restart - time.time()) / 2))
        await _fault(world, ledger, report, next(others), rng, began)
        await asyncio.sleep(max(0.0, next_restart - time.time()))


async def _fault(
    world: World,
    ledger: Ledger,
    report: ChaosReport,
    kind: str,
    rng: random.Random,
    began: float,
) -> None:
    fault_at = time.time()
    await inject(world, kind, rng)
    injected = time.time()
    report.recoveries.append(await recover(world, ledger, kind, fault_at, injected, began))


async def _drained(world: World, ids: list[str], timeout: float = 300.0) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        rows = await world.rows("SELECT count(*) AS n FROM runs WHERE id = ANY(%s::uuid[])", ids)
        if rows[0]["n"] == len(ids):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"a burst of {len(ids)} runs did not drain within {timeout:.0f} s")


async def _wait_finished(world: World, ledger: Ledger, occurrences: int, plan: ChaosPlan) -> None:
    give_up = time.monotonic() + plan.finish_timeout
    while time.monotonic() < give_up:
        if await finished_everything(world, ledger, occurrences):
            return
        await asyncio.sleep(0.5)


async def _sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
