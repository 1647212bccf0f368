"""What must hold at the end, and the figures read from the history.

Counted exactly:

- each **scheduled occurrence** (every second from DTSTART to UNTIL of each RRULE task) has
  exactly one run row (``runs`` has one row per run id; the unique index of ``due_work``
  makes one run per occurrence), and it is ``succeeded``;
- each **acknowledged** ``run_now`` (a 202), event run (listed in a 202 of ``POST
  /events``), probe and burst run has its row, ``succeeded``;
- **no run at all** ended otherwise (none dead, none canceled), and nothing is left in
  ``due_work``;
- the receiver holds exactly one effect per succeeded run that calls it (key ``<run
  id>:effect``) and no effect of a run that is not in the history (a side effect whose run
  was lost).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.chaos.load import Ledger
from tests.chaos.world import World


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def expected_occurrences(start: datetime, until: datetime) -> list[datetime]:
    seconds = int((until - start).total_seconds())
    return [start + timedelta(seconds=n) for n in range(seconds + 1)]


async def finished_everything(world: World, ledger: Ledger, occurrences: int) -> bool:
    """Is every acknowledged run in the history, every occurrence run and the queue empty?"""
    assert world.tasks is not None
    rows = await world.rows(
        """
        SELECT (SELECT count(*) FROM due_work) AS waiting,
               (SELECT count(*) FROM runs WHERE trigger = 'schedule') AS scheduled,
               (SELECT count(*) FROM runs WHERE id = ANY(%s::uuid[])) AS acknowledged
        """,
        ledger.acknowledged(),
    )
    row = rows[0]
    return (
        row["waiting"] == 0
        and row["scheduled"] >= occurrences * len(world.tasks.scheduled)
        and row["acknowledged"] == len(ledger.acknowledged())
    )


async def verify(world: World, ledger: Ledger, start: datetime, until: datetime) -> Verdict:
    assert world.tasks is not None
    verdict = Verdict()
    runs = await world.rows(
        "SELECT id::text AS id, task_id::text AS task_id, trigger, status, scheduled_for, "
        "attempt, error FROM runs"
    )
    by_id = {run["id"]: run for run in runs}
    _check_occurrences(verdict, runs, world.tasks.scheduled, expected_occurrences(start, until))
    for kind in ("manual", "events", "probes", "bursts"):
        ids = getattr(ledger, kind)
        missing = [run_id for run_id in ids if run_id not in by_id]
        if missing:
            verdict.problems.append(
                f"{len(missing)} acknowledged {kind} runs missing: {missing[:3]}"
            )
        verdict.counts[kind] = len(ids)
    failed = [run for run in runs if run["status"] != "succeeded"]
    for run in failed[:5]:
        verdict.problems.append(
            f"run {run['id']} ({run['trigger']}) is {run['status']}: {run['error']}"
        )
    if len(failed) > 5:
        verdict.problems.append(f"... {len(failed)} runs did not succeed")
    waiting = await world.rows("SELECT count(*) AS n FROM due_work")
    if waiting[0]["n"]:
        verdict.problems.append(f"{waiting[0]['n']} runs still in due_work")
    _check_effects(verdict, world, runs, by_id)
    verdict.counts["runs"] = len(runs)
    verdict.counts["unacknowledged"] = sum(ledger.unacknowledged.values())
    verdict.problems += [f"server error: {error}" for error in ledger.server_errors[:5]]
    return verdict


def _check_occurrences(
    verdict: Verdict, runs: list[dict[str, Any]], tasks: list[str], expected: list[datetime]
) -> None:
    seen: dict[tuple[str, datetime], int] = {}
    for run in runs:
        if run["trigger"] == "schedule":
            key = (run["task_id"], run["scheduled_for"])
            seen[key] = seen.get(key, 0) + 1
    wanted = {(task, at) for task in tasks for at in expected}
    missing = sorted(wanted - set(seen))
    twice = [key for key, count in seen.items() if count > 1]
    extra = sorted(set(seen) - wanted)
    if missing:
        verdict.problems.append(f"{len(missing)} occurrences never ran, e.g. {missing[:3]}")
    if twice:
        verdict.problems.append(f"{len(twice)} occurrences ran more than once: {twice[:3]}")
    if extra:
        verdict.problems.append(f"{len(extra)} runs of occurrences the rule has not: {extra[:3]}")
    verdict.counts["occurrences"] = len(wanted)


def _check_effects(
    verdict: Verdict, world: World, runs: list[dict[str, Any]], by_id: dict[str, Any]
) -> None:
    assert world.tasks is not None
    calling = {
        world.tasks.probe,
        world.tasks.manual,
        *world.tasks.scheduled,
        *world.tasks.event_tasks,
    }
    succeeded = {
        run["id"] for run in runs if run["status"] == "succeeded" and run["task_id"] in calling
    }
    effects = {key.split(":")[0] for key in world.receiver.effects}
    without_effect = succeeded - effects
    orphans = effects - set(by_id)
    if without_effect:
        verdict.problems.append(f"{len(without_effect)} succeeded runs left no effect")
    if orphans:
        verdict.problems.append(f"{len(orphans)} effects belong to no recorded run (lost runs)")
    verdict.counts["effects"] = len(world.receiver.effects)
    verdict.counts["redeliveries"] = world.receiver.redeliveries


@dataclass(frozen=True)
class Window:
    """The steady load over an interval: runs finished per second, and the start delays of
    the runs due within it (a run that waited behind an earlier burst is not counted)."""

    seconds: float
    finished_per_second: float
    delay_p50_ms: float
    delay_p99_ms: float


async def window(world: World, since: datetime, until: datetime) -> Window:
    """The steady load's runs (bursts left out) in ``[since, until)``."""
    assert world.tasks is not None
    rows = await world.rows(
        """
        SELECT extract(epoch FROM started_at - scheduled_for) AS delay, attempt,
               scheduled_for >= %(since)s AND scheduled_for < %(until)s AS due_within
          FROM runs
         WHERE finished_at >= %(since)s AND finished_at < %(until)s AND task_id <> %(burst)s
        """,
        {"since": since, "until": until, "burst": world.tasks.burst},
    )
    seconds = (until - since).total_seconds()
    delays = sorted(float(r["delay"]) for r in rows if r["attempt"] == 1 and r["due_within"])
    return Window(
        seconds=seconds,
        finished_per_second=len(rows) / seconds if seconds > 0 else 0.0,
        delay_p50_ms=1000 * statistics.median(delays) if delays else 0.0,
        delay_p99_ms=1000 * delays[int(0.99 * (len(delays) - 1))] if delays else 0.0,
    )


async def drain_rate(world: World, run_ids: list[str]) -> float:
    """Runs per second of a burst, from its first start to its last finish."""
    rows = await world.rows(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS span, count(*) AS n "
        "FROM runs WHERE id = ANY(%s::uuid[])",
        run_ids,
    )
    span = float(rows[0]["span"] or 0)
    return rows[0]["n"] / span if span > 0 else 0.0
