"""The benchmark's results, the issue's targets evaluated on them, and the printed table."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tests.load.api_rate import Rate
from tests.load.drain import DrainResult
from tests.load.latency import RunNowLatency, ScheduledDelay
from tests.load.peers.runner import PeerDrain
from tests.load.pgbench_limit import PgbenchResult
from tests.load.stability import Stability

# PgQueuer's default dequeue batch (10), at most 50 jobs in flight per process like
# Ordinaut's --concurrency 50; and the tuned configuration its users reach for (batch 50;
# PgQueuer wants at least 2 x batch in flight). The targets compare with the better of the
# two as measured, and show the ratio against the default beside it.
PGQUEUER_DEFAULT = {"batch_size": 10, "concurrency": 50}
PGQUEUER_TUNED = {"batch_size": 50, "concurrency": 100}
# The configuration a peer ships with, when a run measured several.
DEFAULTS = {"pgqueuer": PGQUEUER_DEFAULT}
HEADLINE_WORKERS = 2  # the processes on each side of the compared drains
R = TypeVar("R")


@dataclass
class PassResults:
    """Everything measured with one durability setting."""

    async_commit: bool
    ordinaut: list[DrainResult] = field(default_factory=list)
    peers: list[PeerDrain] = field(default_factory=list)
    pgbench: list[PgbenchResult] = field(default_factory=list)
    run_now: RunNowLatency | None = None
    scheduled: ScheduledDelay | None = None
    stability: Stability | None = None
    api: list[Rate] = field(default_factory=list)
    load_average: dict[str, list[float]] = field(default_factory=dict)  # per section
    notes: list[str] = field(default_factory=list)  # sections that failed or were skipped

    def ordinaut_drains(self, workers: int) -> list[DrainResult]:
        return [r for r in self.ordinaut if r.workers == workers]

    def ordinaut_drain(self, workers: int) -> DrainResult | None:
        """The median of the repeated drains with ``workers`` processes."""
        return _median(self.ordinaut_drains(workers), lambda r: r.runs_per_second)

    def peer_drains(self, system: str, workers: int, options: dict[str, int]) -> list[PeerDrain]:
        return [
            r
            for r in self.peers
            if r.system == system
            and r.workers == workers
            and all(r.options.get(k) == v for k, v in options.items())
        ]

    def peer(self, system: str, workers: int, options: dict[str, int]) -> PeerDrain | None:
        """The median of the repeated drains of ``system`` in that configuration."""
        return _median(self.peer_drains(system, workers, options), lambda r: r.runs_per_second)

    def peer_configurations(self, system: str, workers: int) -> list[dict[str, int]]:
        """The configurations of ``system`` measured with ``workers`` processes."""
        found: list[dict[str, int]] = []
        for r in self.peers:
            if r.system == system and r.workers == workers and r.options not in found:
                found.append(r.options)
        return found

    def peer_best(self, system: str, workers: int) -> PeerDrain | None:
        """The median drain of the configuration of ``system`` whose median was fastest."""
        medians = [self.peer(system, workers, o) for o in self.peer_configurations(system, workers)]
        measured = [m for m in medians if m is not None]
        return max(measured, key=lambda r: r.runs_per_second) if measured else None

    def paired_ratios(self, peer: PeerDrain) -> list[float]:
        """Ordinaut's rate over the peer's, repetition by repetition (the drains of one
        repetition ran back to back, under the same load); empty when a drain is missing."""
        mine = self.ordinaut_drains(peer.workers)
        theirs = self.peer_drains(peer.system, peer.workers, peer.options)
        if len(mine) != len(theirs) or len(mine) < 2:
            return []
        return [m.runs_per_second / t.runs_per_second for m, t in zip(mine, theirs, strict=True)]

    def pgbench_best(self, batch: int) -> PgbenchResult | None:
        runs = [r for r in self.pgbench if r.batch == batch]
        return max(runs, key=lambda r: r.jobs_per_second) if runs else None

    def worker_rss_mb(self) -> float | None:
        """The largest Ordinaut worker RSS seen: peaks of the drains, end of stability."""
        values = [v for r in self.ordinaut for v in r.worker_peak_rss_mb or r.worker_rss_mb]
        if self.stability:
            values += self.stability.worker_rss_mb_end
        return max(values) if values else None


def _median(items: list[R], rate: Callable[[R], float]) -> R | None:
    """The item with the median rate (the lower middle one of an even count)."""
    ordered = sorted(items, key=rate)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def _spread(rates: list[float]) -> str:
    """``(median of 3: 5 600 to 7 000)``, or nothing for a single measurement."""
    if len(rates) < 2:
        return ""
    return f", median of {len(rates)}: {_num(min(rates))} to {_num(max(rates))}"


@dataclass
class Target:
    name: str
    measured: float | None
    limit: float
    higher_is_better: bool
    unit: str
    note: str = ""  # e.g. the ratio of each repetition

    @property
    def passed(self) -> bool | None:
        if self.measured is None or math.isnan(self.measured):
            return None
        if self.higher_is_better:
            return self.measured >= self.limit
        return self.measured <= self.limit

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]

    def goal(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {_num(self.limit)}{self.unit}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def describe(options: dict[str, int]) -> str:
    """A peer's configuration in words: ``batch 50, 100 in flight``."""
    words = []
    if "batch_size" in options:
        words.append(f"batch {options['batch_size']}")
    if options.get("concurrency"):
        words.append(f"{options['concurrency']} in flight")
    return ", ".join(words)


def _peer_targets(
    results: PassResults, rate: float | None, system: str, name: str, limit: float
) -> list[Target]:
    """Ordinaut against the fastest configuration of ``system`` this pass measured, and
    against the peer's default configuration when that was measured too."""
    workers = HEADLINE_WORKERS
    best = results.peer_best(system, workers)
    compared = [("best measured", best)]
    if system in DEFAULTS:
        compared.append(("default", results.peer(system, workers, DEFAULTS[system])))
    found = []
    for kind, peer in compared:
        label = f"Ordinaut / {name} {kind}"
        if peer is None:
            found.append(Target(label, None, limit, True, "x"))
            continue
        paired = results.paired_ratios(peer)
        found.append(
            Target(
                f"{label} ({workers} processes, {describe(peer.options)})",
                _ratio(rate, peer.runs_per_second),
                limit,
                True,
                "x",
                note=("per repetition: " + " ".join(f"{r:.2f}" for r in paired)) if paired else "",
            )
        )
    return found


def targets(results: PassResults) -> list[Target]:
    """The issue's targets, evaluated on what this pass measured (None: not measured)."""
    ordinaut = results.ordinaut_drain(HEADLINE_WORKERS)
    rate = ordinaut.runs_per_second if ordinaut else None
    bench = results.pgbench_best(50)
    run_now = results.run_now
    limit_name = "Ordinaut / pgbench limit (50 jobs per transaction"
    limit_name += f", best of {bench.clients} clients)" if bench else ")"
    found = [
        *_peer_targets(results, rate, "pgqueuer", "PgQueuer", 1.0),
        *_peer_targets(results, rate, "procrastinate", "Procrastinate", 10.0),
        Target(limit_name, _ratio(rate, bench.jobs_per_second if bench else None), 0.25, True, "x"),
    ]
    if results.async_commit:
        return found
    stability = results.stability
    return [
        *found,
        Target("run_now → start p50", run_now.start.p50 if run_now else None, 5, False, " ms"),
        Target("run_now → start p99", run_now.start.p99 if run_now else None, 20, False, " ms"),
        Target(
            "scheduled start delay p99",
            results.scheduled.delay.p99 if results.scheduled else None,
            100,
            False,
            " ms",
        ),
        Target(
            "stability: last 10 % / first 10 %",
            stability.last_over_first if stability else None,
            0.9,
            True,
            "x",
        ),
        Target("worker RSS at concurrency 50", results.worker_rss_mb(), 150, False, " MB"),
    ]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "—"
    if abs(value) < 10 and digits == 0:
        digits = 2 if abs(value) < 1 else 1
    return f"{value:,.{digits}f}".replace(",", " ")


def _rate(value: float | None, unit: str = "/s") -> str:
    return f"{_num(value)} {unit}" if value is not None else "—"


def _rows(results: PassResults) -> list[tuple[str, str]]:
    """(measurement, value) lines of the table, in the issue's order."""
    rows: list[tuple[str, str]] = []
    for workers in sorted({r.workers for r in results.ordinaut}):
        drains = results.ordinaut_drains(workers)
        r = results.ordinaut_drain(workers)
        assert r is not None
        spread = _spread([d.runs_per_second for d in drains])
        rows.append(
            (
                f"Ordinaut drain, {workers} worker(s) x {r.concurrency}",
                f"{_rate(r.runs_per_second, 'runs/s')}  ({r.runs} runs{spread})",
            )
        )
    configurations = sorted(
        {(p.system, p.workers, tuple(sorted(p.options.items()))) for p in results.peers}
    )
    for system, workers, items in configurations:
        options = dict(items)
        drains_ = results.peer_drains(system, workers, options)
        p = results.peer(system, workers, options)
        assert p is not None
        spread = _spread([d.runs_per_second for d in drains_])
        rows.append(
            (
                f"{system} {p.version} drain, {workers} process(es), {describe(options)}",
                f"{_rate(p.runs_per_second, 'jobs/s')}  ({p.runs} jobs{spread})",
            )
        )
    for batch in (50, 1):
        best = results.pgbench_best(batch)
        if best:
            rows.append(
                (
                    f"pgbench lease+delete+history, {batch} job(s)/transaction",
                    f"{_rate(best.jobs_per_second, 'jobs/s')}  (best: {best.clients} clients)",
                )
            )
    if results.run_now:
        start, wall = results.run_now.start, results.run_now.wall
        rows.append(
            (
                "run_now → start p50/p95/p99 (scheduled_for → started_at)",
                f"{_num(start.p50, 1)} / {_num(start.p95, 1)} / {_num(start.p99, 1)} ms"
                f"  ({start.samples} samples)",
            )
        )
        rows.append(
            (
                "run_now POST sent → started_at p50/p95/p99 (wall clock)",
                f"{_num(wall.p50, 1)} / {_num(wall.p95, 1)} / {_num(wall.p99, 1)} ms",
            )
        )
    if results.scheduled:
        delay = results.scheduled.delay
        rows.append(
            (
                f"scheduled start delay p50/p99 ({results.scheduled.tasks} once tasks)",
                f"{_num(delay.p50, 1)} / {_num(delay.p99, 1)} ms  (max {_num(delay.max, 1)})",
            )
        )
    if results.stability:
        s = results.stability
        tenths = " ".join(f"{rate / 1000:.1f}" for rate in s.window_runs_per_second)
        rows.append(
            (
                f"stability over {s.runs} runs: first → last 10 %",
                f"{_num(s.first)} → {_num(s.last)} runs/s  (every tenth, k/s: {tenths})",
            )
        )
    for rate in results.api:
        rows.append(
            (
                f"{rate.route} ({rate.concurrency} in flight, {rate.tool})",
                f"{_rate(rate.requests_per_second, 'req/s')}  (p50 {_num(rate.p50_ms, 1)},"
                f" p99 {_num(rate.p99_ms, 1)} ms)",
            )
        )
    rss = results.worker_rss_mb()
    if rss is not None:
        rows.append(("Ordinaut worker RSS, largest seen", f"{_num(rss, 1)} MB"))
    return rows


def render(results: PassResults, header: str) -> str:
    """The measurements, then the targets with ratios and PASS/FAIL."""
    lines = [header, ""]
    measured = _rows(results)
    width = max((len(label) for label, _ in measured), default=20) + 2
    lines += [f"  {label:<{width}}{value}" for label, value in measured]
    found = targets(results)
    if found:
        lines += ["", "  targets:"]
        name_width = max(len(t.name) for t in found) + 2
        for t in found:
            shown = _fmt_target(t)
            note = f"  ({t.note})" if t.note else ""
            lines.append(f"  {t.name:<{name_width}}{shown:>12}   {t.goal():<10} {t.verdict}{note}")
    lines += [f"  note: {note}" for note in results.notes]
    return "\n".join(lines)


def markdown(results: PassResults, header: str) -> str:
    """The same as :func:`render`, as Markdown tables (for the README)."""
    lines = [f"**{header}**", "", "| measurement | value |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in _rows(results)]
    found = targets(results)
    if found:
        lines += ["", "| target | measured | goal | result |", "|---|---|---|---|"]
        lines += [
            f"| {t.name} | {_fmt_target(t)}{f' ({t.note})' if t.note else ''} | {t.goal()} "
            f"| {t.verdict} |"
            for t in found
        ]
    lines += [f"\nNote: {note}" for note in results.notes]
    return "\n".join(lines)


def _fmt_target(target: Target) -> str:
    if target.measured is None:
        return "—"
    if target.unit == "x":
        return f"{_num(target.measured, 2)}x"
    return f"{_num(target.measured, 1)}{target.unit}"
