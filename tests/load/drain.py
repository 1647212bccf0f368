"""Drain benchmark: N no-op runs (``debug.echo``) queued at once, drained by W worker
processes; runs/s from the first start to the last finish, as the database records them.

    python -m tests.load.drain --runs 20000 --workers 1 2 --concurrency 50 [--workers-first]
                               [--repeat 3]

``--repeat N`` drains N times per worker count, interleaved, and prints the median and the
range of each (a single drain varies by 10-15 % with what else the two cores do).

``--workers-first`` (what ``make bench`` uses, like it does for the peers) starts the workers
and lets them idle before all runs land in one transaction, so that no worker's start-up is
inside the measured span.

Uses ``DATABASE_URL`` when set, else a private PostgreSQL with fsync and synchronous commit
on (the production defaults) that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.rows import dict_row

from ops.embedded_pg import EmbeddedPostgres
from store.due_work import WAKE_CHANNEL

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
    worker_peak_rss_mb: list[float] = field(default_factory=list)  # VmHWM
    # The workers' CPU time (user + system) from the moment the runs landed to the end of
    # the drain, per run: steadier than runs/s on a machine that others share.
    worker_cpu_us_per_run: float | None = None


def prepare(url: str) -> str:
    """Migrate and create one event task whose pipeline is a no-op; return its id."""
    subprocess.run(
        [sys.executable, "-m", "ops.cli", "migrate"],
        cwd=REPO,
        env=_env(url),
        check=True,
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


_INSERT_RUNS = """
INSERT INTO due_work (id, task_id, scheduled_for, run_at, priority, trigger)
SELECT gen_random_uuid(), %s, now() + make_interval(secs => g * 1e-6), now(), 5, 'manual'
  FROM generate_series(1, %s) AS g
"""


def enqueue(url: str, task_id: str, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE runs")
        conn.execute(_INSERT_RUNS, (task_id, count))
        conn.execute("VACUUM ANALYZE due_work")


def enqueue_and_wake(url: str, task_id: str, count: int) -> None:
    """Queue ``count`` runs in one transaction that also wakes the (running) workers, as
    the API does: they all become visible at the same instant."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM due_work")  # the previous drain's dead rows
        with conn.transaction():
            conn.execute("TRUNCATE runs")
            conn.execute(_INSERT_RUNS, (task_id, count))
            # ANALYZE sees this transaction's own rows: the lease plans with real numbers.
            conn.execute("ANALYZE due_work")
            conn.execute("SELECT pg_notify(%s, '')", (WAKE_CHANNEL,))


def wait_registered(url: str, procs: Workers, *, settle: float, timeout: float = 60.0) -> None:
    """Wait until every worker has registered (it then LISTENs and idles), then ``settle``
    seconds more."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM workers WHERE pid = ANY(%s)", ([p.pid for p in procs.procs],)
            ).fetchone()
            if row and row[0] >= len(procs.procs):
                break
            procs.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not register in time")
            time.sleep(0.1)
    time.sleep(settle)


@dataclass
class ProcessGroup:
    """Worker processes of a benchmark (Ordinaut's or a peer's), each one's output kept in a
    temporary file so that a crash can be reported."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[IO[bytes]]

    def check_alive(self, label: str = "worker") -> None:
        """Raise if a process exited (the run would otherwise wait for its deadline)."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"{label} {proc.pid} exited with {proc.returncode}:\n{tail}")

    def rss_mb(self, field: str = "VmRSS") -> list[float]:
        return [rss_mb(proc.pid, field) for proc in self.procs]

    def cpu_seconds(self) -> float:
        """The CPU time (user + system) the processes used so far, together."""
        return sum(cpu_seconds(proc.pid) for proc in self.procs)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM every process and wait for each (SIGKILL after ``timeout`` seconds)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


@dataclass
class Workers(ProcessGroup):
    """Real ``ordinaut worker`` processes."""

    @classmethod
    def start(cls, url: str, workers: int, concurrency: int) -> Workers:
        argv = [sys.executable, "-m", "ops.cli", "worker", "--concurrency", str(concurrency)]
        logs: list[IO[bytes]] = [tempfile.TemporaryFile() for _ in range(workers)]  # noqa: SIM115 - closed by stop()
        procs = [
            subprocess.Popen(argv, cwd=REPO, env=_env(url), stdout=subprocess.DEVNULL, stderr=log)
            for log in logs
        ]
        return cls(procs, logs)


def drain(
    url: str,
    task_id: str,
    *,
    runs: int,
    workers: int,
    concurrency: int,
    workers_first: bool = False,
    settle: float = 2.0,
) -> DrainResult:
    """Drain ``runs`` queued runs with ``workers`` processes. By default the runs are queued
    before the workers start; ``workers_first`` starts the workers, waits until they idle
    and then queues everything at once (so that no worker's start-up counts)."""
    if not workers_first:
        enqueue(url, task_id, runs)
    procs = Workers.start(url, workers, concurrency)
    rss: list[float] = []
    cpu_before: float | None = None
    try:
        if workers_first:
            wait_registered(url, procs, settle=settle)
            cpu_before = procs.cpu_seconds()
            enqueue_and_wake(url, task_id, runs)
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            deadline = time.monotonic() + max(120.0, runs / 50)
            while _count(conn) < runs:
                procs.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"drain did not finish: {_count(conn)}/{runs}")
                time.sleep(0.25)
            rss = procs.rss_mb()
            peak = procs.rss_mb("VmHWM")
            cpu = None if cpu_before is None else procs.cpu_seconds() - cpu_before
            span = conn.execute(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at)) AS s FROM runs"
            ).fetchone()
            assert span
    finally:
        procs.stop()
    seconds = float(span["s"])
    cpu_per_run = None if cpu is None else round(cpu / runs * 1e6, 1)
    return DrainResult(
        workers=workers,
        concurrency=concurrency,
        runs=runs,
        seconds=seconds,
        runs_per_second=runs / seconds,
        worker_rss_mb=rss,
        worker_peak_rss_mb=peak,
        worker_cpu_us_per_run=cpu_per_run,
    )


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) AS n FROM runs").fetchone()
    return int(row["n"]) if row else 0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MiB (``VmHWM``: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The workers' log level: WARNING by default; INFO measures the cost of a line per run.
LOG_LEVEL = {"workers": "WARNING"}


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(DATABASE_URL=url, ORDINAUT_LOG_LEVEL=LOG_LEVEL["workers"])
    return env


def private_postgres(home: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(home, fast=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--workers-first",
        action="store_true",
        help="start the workers, let them idle, then queue the runs in one transaction",
    )
    parser.add_argument("--repeat", type=int, default=1, help="drains per worker count")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the workers' ORDINAUT_LOG_LEVEL (INFO: a line per run)",
    )
    args = parser.parse_args()
    LOG_LEVEL["workers"] = args.log_level
    rates: dict[int, list[float]] = {workers: [] for workers in args.workers}
    cpu: dict[int, list[float]] = {workers: [] for workers in args.workers}
    with tempfile.TemporaryDirectory() as home:
        cluster = None if os.environ.get("DATABASE_URL") else private_postgres(Path(home))
        url = os.environ.get("DATABASE_URL") or cluster.start()  # type: ignore[union-attr]
        try:
            task_id = prepare(url)
            for _ in range(args.repeat):
                for workers in args.workers:
                    result = drain(
                        url,
                        task_id,
                        runs=args.runs,
                        workers=workers,
                        concurrency=args.concurrency,
                        workers_first=args.workers_first,
                    )
                    rates[workers].append(result.runs_per_second)
                    if result.worker_cpu_us_per_run is not None:
                        cpu[workers].append(result.worker_cpu_us_per_run)
                    print(json.dumps(asdict(result)), flush=True)
        finally:
            if cluster is not None:
                cluster.destroy()
    if args.repeat > 1:
        for workers, values in rates.items():
            used = (
                f", worker CPU {statistics.median(cpu[workers]):.0f} µs/run" if cpu[workers] else ""
            )
            print(
                f"{workers} worker(s): median {statistics.median(values):,.0f} runs/s "
                f"(range {min(values):,.0f} to {max(values):,.0f}, {len(values)} drains{used})"
            )


if __name__ == "__main__":
    main()
