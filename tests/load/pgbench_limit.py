"""The physical limit: pgbench running a minimal queue step (``pgbench/queue.sql``: lease a
batch with ``FOR UPDATE SKIP LOCKED``, delete it, insert history rows; one transaction, one
commit) against a prefilled queue, 50 jobs per transaction and 1.

    python -m tests.load.pgbench_limit --jobs 200000 --single-jobs 50000 --clients 4 8

No job queue written in any language can drain faster than this on the same server with the
same durability settings; Ordinaut's target is a quarter of the batched figure.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from tests.load.server import BenchServer, bench_server, pg_tool

SCRIPT = Path(__file__).with_name("pgbench") / "queue.sql"

_SCHEMA = """
CREATE TABLE bench_queue (
    id        bigserial   PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now(),
    payload   jsonb       NOT NULL DEFAULT '{}'
);
CREATE TABLE bench_history (
    id          bigint      PRIMARY KEY,
    queued_at   timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL
);
"""

# Each client runs a fixed number of transactions sized to take 90 % of the prefilled queue:
# a queue that ran dry would lease nothing in its last transactions and inflate the rate.
_USED = 0.9


@dataclass
class PgbenchResult:
    batch: int
    clients: int
    transactions: int
    transactions_per_second: float
    jobs_per_second: float
    prefilled: int
    left_in_queue: int


def prepare(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_SCHEMA)
        conn.execute(
            "INSERT INTO bench_queue (payload) "
            "SELECT jsonb_build_object('n', g) FROM generate_series(1, %s) AS g",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE bench_queue")


def run_pgbench(url: str, *, batch: int, clients: int, transactions: int) -> float:
    """Run the script ``transactions`` times per client; returns pgbench's transactions
    per second."""
    completed = subprocess.run(
        [
            str(pg_tool("pgbench")),
            "--no-vacuum",
            f"--file={SCRIPT}",
            f"--define=batch={batch}",
            f"--client={clients}",
            f"--jobs={min(clients, 2)}",
            f"--transactions={transactions}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed: {completed.stderr.strip() or completed.stdout}")
    match = re.search(r"^tps = ([\d.]+)", completed.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no tps in pgbench output:\n{completed.stdout}")
    return float(match.group(1))


def measure(server: BenchServer, *, batch: int, clients: int, jobs: int) -> PgbenchResult:
    """One pgbench run in a fresh database holding ``jobs`` queued jobs."""
    transactions = max(1, int(jobs * _USED / (clients * batch)))
    with server.database(f"pgbench{batch}") as url:
        prepare(url, jobs)
        server.checkpoint()
        tps = run_pgbench(url, batch=batch, clients=clients, transactions=transactions)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM bench_queue").fetchone()
            left = int(row[0]) if row else 0
    if left < jobs - transactions * clients * batch:
        raise RuntimeError(f"pgbench leased fewer jobs than it ran transactions for: {left} left")
    return PgbenchResult(batch, clients, transactions, tps, tps * batch, jobs, left)


def best_of(
    server: BenchServer, *, batch: int, clients: list[int], jobs: int
) -> tuple[PgbenchResult, list[PgbenchResult]]:
    """The limit is the best client count: returns it and every run."""
    runs = [measure(server, batch=batch, clients=c, jobs=jobs) for c in clients]
    return max(runs, key=lambda r: r.jobs_per_second), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000, help="queued, batch 50")
    parser.add_argument("--single-jobs", type=int, default=50_000, help="queued, batch 1")
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    with bench_server() as server:
        for batch, jobs in ((50, args.jobs), (1, args.single_jobs)):
            for clients in args.clients:
                result = measure(server, batch=batch, clients=clients, jobs=jobs)
                print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
