"""Drain benchmark: N no-op runs (``debug.echo``) queued at once, drained by W worker
processes; runs/s from the first start to the last finish, as the database records them.

    python -m tests.load.drain --runs 20000 --workers 1 2 --concurrency 50

Uses ``DATABASE_URL`` when set, else a private PostgreSQL with fsync and synchronous commit
on (the production defaults) that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ops.embedded_pg import EmbeddedPostgres

REPO = Path(__file__).resolve().parents[2]
NOOP_PIPELINE = [{"id": "echo", "uses": "debug.echo", "with": {"n": "${run.attempt}"}}]


@dataclass
class DrainResult:
    workers: int
    concurrency: int
    runs: int
    seconds: float
    runs_per_second: float
    worker_rss_mb: list[float]


def prepare(url: str) -> str:
    """Migrate and create one event task whose pipeline is a no-op; return its id."""
    subprocess.run(
        [sys.executable, "-m", "ops.cli", "migrate"], cwd=REPO, env=_env(url), check=True,
        capture_output=True,
    )
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        agent = conn.execute(
            "INSERT INTO agents (name, scopes) VALUES (%s, '{admin}') RETURNING id",
            (f"bench-{time.time_ns()}",),
        ).fetchone()
        assert agent
        task = conn.execute(
            """
            INSERT INTO tasks (created_by, title, schedule_kind, schedule_expr, timezone, payload,
                               max_retries)
            VALUES (%s, 'noop', 'event', 'bench.noop', 'UTC', %s, 0) RETURNING id
            """,
            (agent["id"], json.dumps({"params": {}, "pipeline": NOOP_PIPELINE})),
        ).fetchone()
        assert task
        return str(task["id"])


def enqueue(url: str, task_id: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE runs")
        conn.execute(
            """
            INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
            SELECT gen_random_uuid(), %s, now() + make_interval(secs => g * 1e-6), now(), 5,
                   'manual'
              FROM generate_series(1, %s) AS g
            """,
            (task_id, count),
        )
        conn.execute("VACUUM ANALYZE due_work")


def drain(url: str, task_id: str, *, runs: int, workers: int, concurrency: int) -> DrainResult:
    enqueue(url, task_id, runs)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "worker", "--concurrency", str(concurrency)],
            cwd=REPO, env=_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    rss: list[float] = []
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            deadline = time.monotonic() + max(120.0, runs / 50)
            while _count(conn) < runs:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"drain did not finish: {_count(conn)}/{runs}")
                time.sleep(0.25)
            rss = [_rss_mb(p.pid) for p in procs]
            span = conn.execute(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS s FROM runs"
            ).fetchone()
            assert span
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    seconds = float(span["s"])
    return DrainResult(workers, concurrency, runs, seconds, runs / seconds, rss)


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) AS n FROM runs").fetchone()
    return int(row["n"]) if row else 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(DATABASE_URL=url, ORDINAUT_LOG_LEVEL="WARNING")
    return env


def private_postgres(home: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(home, fast=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        cluster = None if os.environ.get("DATABASE_URL") else private_postgres(Path(home))
        url = os.environ.get("DATABASE_URL") or cluster.start()  # type: ignore[union-attr]
        try:
            task_id = prepare(url)
            for workers in args.workers:
                result = drain(
                    url, task_id, runs=args.runs, workers=workers, concurrency=args.concurrency
                )
                print(json.dumps(asdict(result)))
        finally:
            if cluster is not None:
                cluster.destroy()


if __name__ == "__main__":
    main()
