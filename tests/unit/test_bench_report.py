"""The benchmark's targets compare with the fastest configuration of each peer it measured,
name that configuration, and keep the ratio against the peer's default beside it."""

from __future__ import annotations

from tests.load.drain import DrainResult
from tests.load.peers.runner import PeerDrain
from tests.load.pgbench_limit import PgbenchResult
from tests.load.report import (
    PGQUEUER_DEFAULT,
    PGQUEUER_TUNED,
    PassResults,
    markdown,
    render,
    targets,
)


def _ordinaut(rate: float) -> DrainResult:
    return DrainResult(
        workers=2,
        concurrency=50,
        runs=20_000,
        seconds=20_000 / rate,
        runs_per_second=rate,
        worker_rss_mb=[70.0, 70.0],
    )


def _peer(system: str, rate: float, options: dict[str, int]) -> PeerDrain:
    return PeerDrain(
        system=system,
        version="1.0",
        workers=2,
        concurrency=options.get("concurrency", 50),
        runs=20_000,
        seconds=20_000 / rate,
        runs_per_second=rate,
        worker_rss_mb=[50.0, 50.0],
        worker_peak_rss_mb=[50.0, 50.0],
        handled=20_000,
        options=options,
    )


def _measured() -> PassResults:
    """Three interleaved repetitions, as ``make bench`` runs them."""
    results = PassResults(async_commit=False)
    for mine, default, tuned in (
        (9_000, 5_000, 15_000),
        (12_000, 6_000, 16_000),
        (10_000, 4_000, 20_000),
    ):
        results.ordinaut.append(_ordinaut(mine))
        results.peers.append(_peer("pgqueuer", default, PGQUEUER_DEFAULT))
        results.peers.append(_peer("pgqueuer", tuned, PGQUEUER_TUNED))
    results.peers.append(_peer("procrastinate", 500, {"concurrency": 50}))
    results.pgbench.append(
        PgbenchResult(
            batch=50,
            clients=4,
            transactions=1000,
            transactions_per_second=2000,
            jobs_per_second=100_000,
            prefilled=200_000,
            left_in_queue=20_000,
        )
    )
    return results


def test_targets_compare_with_the_best_measured_configuration_and_the_default() -> None:
    found = {t.name: t for t in targets(_measured())}
    best = found["Ordinaut / PgQueuer best measured (2 processes, batch 50, 100 in flight)"]
    default = found["Ordinaut / PgQueuer default (2 processes, batch 10, 50 in flight)"]
    assert best.measured == 10_000 / 16_000  # medians of three
    assert best.passed is False
    assert best.note == "per repetition: 0.60 0.75 0.50"
    assert default.measured == 10_000 / 5_000
    assert default.passed is True
    procrastinate = found["Ordinaut / Procrastinate best measured (2 processes, 50 in flight)"]
    assert procrastinate.measured == 20.0
    limit = found["Ordinaut / pgbench limit (50 jobs per transaction, best of 4 clients)"]
    assert limit.measured == 0.1


def test_the_fastest_configuration_wins_whichever_it_is() -> None:
    results = PassResults(async_commit=False)
    results.ordinaut.append(_ordinaut(10_000))
    results.peers.append(_peer("pgqueuer", 12_000, PGQUEUER_DEFAULT))
    results.peers.append(_peer("pgqueuer", 8_000, PGQUEUER_TUNED))
    best = next(t for t in targets(results) if "PgQueuer best" in t.name)
    assert "batch 10, 50 in flight" in best.name
    assert best.measured == 10_000 / 12_000


def test_tables_name_every_configuration_and_both_ratios() -> None:
    text = render(_measured(), "header")
    assert "pgqueuer 1.0 drain, 2 process(es), batch 50, 100 in flight" in text
    assert "pgqueuer 1.0 drain, 2 process(es), batch 10, 50 in flight" in text
    assert "0.62x" in text and "2.00x" in text
    table = markdown(_measured(), "header")
    assert "| Ordinaut / PgQueuer best measured (2 processes, batch 50, 100 in flight) |" in table
