"""Stability: does throughput hold while the history grows to a million runs?

Two workers (concurrency 50) on a fresh database; a producer in this process keeps the queue
fed (batches of no-op runs inserted into ``due_work`` with a NOTIFY whenever fewer than two
batches wait) until ``--runs`` runs have finished. The first ``--runs`` runs are then ranked by
``finished_at`` and cut into ten windows of equal counts; each window's
rate is its runs over its time span. The figure is the last window's rate over the first's
(history growth, index growth, dead tuples in the hot table, autovacuum all count).

    python -m tests.load.stability --runs 1000000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from store.due_work import WAKE_CHANNEL
from tests.load.drain import Workers, prepare, wait_registered
from tests.load.server import BenchServer, bench_server

WINDOWS = 10

# Unique (task_id, scheduled_for) per run: the transaction's clock plus a counter that grows
# across batches (in microseconds). The batch's ``now()`` becomes ``created_at``, which the
# history keeps as ``runs.queued_at``: how the producer counts a batch's finished runs.
_FEED = """
WITH fed AS (
    INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
    SELECT gen_random_uuid(), %(task)s, now() + make_interval(secs => (%(offset)s + g) * 1e-6),
           now(), 5, 'manual'
      FROM generate_series(1, %(count)s) AS g
    RETURNING 1
)
SELECT now() AS queued_at, count(*) AS n, pg_notify(%(channel)s, '') FROM fed
"""

# Finished runs of the batches not yet complete: a range scan of runs_recent over the last
# few batches only, however long the history has grown.
_FINISHED = """
SELECT queued_at, count(*) AS n FROM runs WHERE queued_at >= %s GROUP BY queued_at
"""

_BOUNDARIES = """
SELECT rn, extract(epoch FROM finished_at) AS at
  FROM (SELECT finished_at, row_number() OVER (ORDER BY finished_at) AS rn FROM runs) ranked
 WHERE rn = ANY(%s)
 ORDER BY rn
"""

_TABLES = """
SELECT relname, n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count,
       pg_total_relation_size(relid) AS bytes
  FROM pg_stat_user_tables WHERE relname IN ('due_work', 'runs')
"""

# Where the buffer misses are (an index outgrowing shared_buffers shows here).
_INDEXES = """
SELECT indexrelname, idx_blks_read, idx_blks_hit, pg_relation_size(indexrelid) AS bytes
  FROM pg_statio_user_indexes WHERE relname IN ('due_work', 'runs')
"""

# Server-wide: checkpoints and WAL written while the runs went through.
_SERVER = """
SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_backend,
       pg_current_wal_lsn() AS lsn
  FROM pg_stat_bgwriter
"""


@dataclass
class Stability:
    runs: int
    workers: int
    concurrency: int
    seconds: float
    window_runs_per_second: list[float]
    first: float
    last: float
    last_over_first: float
    worker_rss_mb_start: list[float] = field(default_factory=list)
    worker_rss_mb_end: list[float] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)  # checkpoints, WAL during the run


@dataclass
class Feed:
    """The producer's books: batches queued and how many of their runs finished."""

    queued: int = 0
    done: int = 0
    open: dict[Any, int] = field(default_factory=dict)  # batch queued_at → size

    def add(self, conn: psycopg.Connection[Any], task_id: str, count: int) -> None:
        row = conn.execute(
            _FEED,
            {"task": task_id, "offset": self.queued, "count": count, "channel": WAKE_CHANNEL},
        ).fetchone()
        assert row is not None
        self.open[row["queued_at"]] = int(row["n"])
        self.queued += int(row["n"])

    def count_done(self, conn: psycopg.Connection[Any]) -> int:
        if self.open:
            finished = {
                row["queued_at"]: int(row["n"])
                for row in conn.execute(_FINISHED, (min(self.open),)).fetchall()
            }
            complete = [at for at, size in self.open.items() if finished.get(at, 0) >= size]
            for at in complete:
                self.done += self.open.pop(at)
            partial = sum(finished.get(at, 0) for at in self.open)
            return self.done + partial
        return self.done


def produce(
    conn: psycopg.Connection[Any], task_id: str, procs: Workers, *, runs: int, batch: int
) -> float:
    """Keep between one and two batches waiting until ``runs`` runs have finished (so the
    last window is as fed as the others: the queue never drains); returns the seconds it
    took. The few runs queued beyond ``runs`` are left."""
    feed, started, reported = Feed(), time.monotonic(), 0
    deadline = started + max(600.0, runs / 100)
    while True:
        done = feed.count_done(conn)
        if done >= runs:
            return time.monotonic() - started
        if feed.queued - done < 2 * batch:
            feed.add(conn, task_id, batch)
            continue
        if done * WINDOWS // runs > reported:
            reported = done * WINDOWS // runs
            print(f"  stability: {done}/{runs} runs", file=sys.stderr, flush=True)
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"stability run did not finish: {done}/{runs}")
        time.sleep(0.05)


def window_rates(conn: psycopg.Connection[Any], runs: int) -> list[float]:
    """Runs per second in each tenth of the runs, ranked by finish time."""
    bounds = [1 + (runs - 1) * i // WINDOWS for i in range(WINDOWS + 1)]
    rows = conn.execute(_BOUNDARIES, (bounds,)).fetchall()
    at = {int(row["rn"]): float(row["at"]) for row in rows}
    return [
        (bounds[i + 1] - bounds[i]) / max(at[bounds[i + 1]] - at[bounds[i]], 1e-9)
        for i in range(WINDOWS)
    ]


def measure(
    server: BenchServer, *, runs: int, workers: int = 2, concurrency: int = 50, batch: int = 5000
) -> Stability:
    with server.database("stability") as url:
        task_id = prepare(url)
        server.checkpoint()
        procs = Workers.start(url, workers, concurrency)
        try:
            wait_registered(url, procs, settle=1.0)
            rss_start = procs.rss_mb()
            with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
                before = conn.execute(_SERVER).fetchone()
                seconds = produce(conn, task_id, procs, runs=runs, batch=batch)
                after = conn.execute(_SERVER).fetchone()
                wal = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s, %s) AS bytes",
                    (after["lsn"] if after else None, before["lsn"] if before else None),
                ).fetchone()
                rss_end = procs.rss_mb()
        finally:
            procs.stop()
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            rates = window_rates(conn, runs)
            tables = {row.pop("relname"): row for row in conn.execute(_TABLES).fetchall()}
            indexes = {row.pop("indexrelname"): row for row in conn.execute(_INDEXES).fetchall()}
    server_stats = _server_delta(before, after)
    server_stats["wal_bytes"] = int(wal["bytes"]) if wal else None
    return Stability(
        runs,
        workers,
        concurrency,
        seconds,
        rates,
        rates[0],
        rates[-1],
        rates[-1] / rates[0],
        rss_start,
        rss_end,
        tables,
        indexes,
        server_stats,
    )


def _server_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    if before is None or after is None:
        return {}
    return {key: after[key] - before[key] for key in after if key != "lsn"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    with bench_server() as server:
        result = measure(server, runs=args.runs, batch=args.batch)
    print(json.dumps(asdict(result), indent=1))


if __name__ == "__main__":
    main()
