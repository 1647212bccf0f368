"""``make bench``: Ordinaut side by side with PgQueuer, Procrastinate and pgbench on one
PostgreSQL server, with the issue's targets.

    python -m tests.load.bench [--runs 20000] [--stability-runs 1000000] [--async-commit]
    python -m tests.load.bench --runs 2000 --stability-runs 20000 --samples 50 \\
        --api-seconds 3   # quick

One private PostgreSQL (``EmbeddedPostgres(fast=False)``: fsync on, ``synchronous_commit``
on) or ``DATABASE_URL``'s server; every measurement in a fresh database on it:

1. Ordinaut drain: N no-op runs (``debug.echo``) drained by 1 and 2 ``ordinaut worker``
   processes (concurrency 50); runs/s from the first start to the last finish;
2. the same drain for PgQueuer (its default batch of 10, and tuned: batch 50, 100 in flight)
   and Procrastinate (installed into ``.bench-venv``);
3. pgbench: lease (SKIP LOCKED) + delete + history insert, 50 jobs and 1 job per
   transaction (the physical limit);
4. ``run_now`` → start latency and scheduled start delay through the real API, scheduler
   and workers;
5. stability: throughput of the last 10 % of ``--stability-runs`` against the first 10 %;
6. ``POST /tasks`` and ``GET /tasks/{id}`` rates through the API (``api_rate``, which uses
   ``api_bench`` and ``hey`` when they are there);
7. schedules at scale (``scheduler_scale``, its own process so that its RSS is the
   scheduler's): ``--schedule-tasks`` (1 000 000) active cron/RRULE tasks, the scheduler's
   cold start, steady-state CPU, an hour boundary, a herd and its peak RSS (~15 minutes:
   ``--skip schedules`` leaves it out);

then prints one table with the targets — each peer's fastest configuration that the run
measured, named, with the ratio against its default configuration beside it, and Ordinaut's
ratio in each repetition of the interleaved drains — and writes everything as JSON to
``tests/load/results/bench-<timestamp>.json`` (the tables also as Markdown, ``.md``).
``--async-commit`` adds a second pass of the throughput measurements (1-3) with
``synchronous_commit=off``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tests.load import api_rate, latency, pgbench_limit, stability
from tests.load.drain import DrainResult, drain, prepare
from tests.load.latency import RunNowLatency, ScheduledDelay
from tests.load.peers.runner import PeerDrain, drain_peer
from tests.load.report import (
    HEADLINE_WORKERS,
    PGQUEUER_DEFAULT,
    PGQUEUER_TUNED,
    PassResults,
    markdown,
    render,
    targets,
)
from tests.load.server import BenchServer, bench_server, pg_tool

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("results")
SECTIONS = (
    "ordinaut",
    "pgqueuer",
    "procrastinate",
    "pgbench",
    "latency",
    "stability",
    "api",
    "schedules",
)
T = TypeVar("T")


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--runs", type=int, default=20_000, help="runs per drain (every system)")
    add("--concurrency", type=int, default=50, help="jobs in flight per worker process")
    add("--workers", type=int, nargs="+", default=[1, 2], help="Ordinaut worker processes")
    add("--peer-workers", type=int, nargs="+", default=[1, 2], help="peer worker processes")
    add("--repeat", type=int, default=3, help="repetitions of the quick drains (medians)")
    add("--stability-runs", type=int, default=1_000_000)
    add("--samples", type=int, default=300, help="run_now latency samples")
    add("--gap", type=float, default=0.1, help="seconds between run_now calls")
    add("--scheduled-tasks", type=int, default=200)
    add("--spread", type=float, default=20.0, help="seconds the scheduled tasks spread over")
    add("--api-seconds", type=float, default=10.0, help="per API scenario")
    add("--api-concurrency", type=int, default=16)
    add("--pgbench-clients", type=int, nargs="+", default=[4, 8])
    add("--pgbench-jobs", type=int, default=200_000, help="queued jobs, 50 per transaction")
    add("--pgbench-single-jobs", type=int, default=50_000, help="queued jobs, 1 per transaction")
    add("--schedule-tasks", type=int, default=1_000_000, help="active tasks (schedules)")
    add("--schedule-minutes", type=int, default=60, help="simulated steady-state minutes")
    add("--async-commit", action="store_true", help="add a synchronous_commit=off pass")
    add("--skip", nargs="+", default=[], choices=SECTIONS, metavar="SECTION", help=str(SECTIONS))
    add("--out", type=Path, help="JSON file (default: tests/load/results/bench-<time>.json)")
    return parser.parse_args(argv)


def timed(results: PassResults, name: str, step: Callable[[], T]) -> T | None:
    """Run one section, recording the load average before and after it. A section that
    fails is noted (the table shows what the others measured) and None is returned."""
    say(f"{name} ...")
    before = os.getloadavg()[0]
    began = time.monotonic()
    try:
        value = step()
    except Exception as exc:
        traceback.print_exc()
        results.notes.append(f"{name} failed: {type(exc).__name__}: {str(exc)[:500]}")
        say(f"{name} FAILED after {time.monotonic() - began:.0f} s")
        return None
    results.load_average[name] = [round(before, 2), round(os.getloadavg()[0], 2)]
    say(f"{name} done in {time.monotonic() - began:.0f} s")
    return value


def ordinaut_drain(server: BenchServer, args: argparse.Namespace, workers: int) -> DrainResult:
    """One drain in a fresh database, the workers started and idle before the runs land."""
    with server.database("ordinaut") as url:
        task_id = prepare(url)
        server.checkpoint()
        return drain(
            url,
            task_id,
            runs=args.runs,
            workers=workers,
            concurrency=args.concurrency,
            workers_first=True,
        )


def drains(server: BenchServer, args: argparse.Namespace, results: PassResults) -> None:
    """Ordinaut's and the peers' drains (the synchronous_commit=off pass: 2 processes). The
    quick ones are repeated ``--repeat`` times, interleaved, so that a burst of load from
    elsewhere hits every system alike; the table shows the medians."""
    workers = [2] if results.async_commit else args.workers
    peer_workers = [2] if results.async_commit else args.peer_workers
    quick: list[tuple[str, Callable[[], DrainResult | PeerDrain]]] = []
    if "ordinaut" not in args.skip:
        quick += [
            (f"ordinaut drain {w}w", partial(ordinaut_drain, server, args, w)) for w in workers
        ]
    if "pgqueuer" not in args.skip:
        configurations = [(PGQUEUER_DEFAULT, w) for w in peer_workers]
        configurations.append((PGQUEUER_TUNED, HEADLINE_WORKERS))
        quick += [_peer(server, args, "pgqueuer", options, w) for options, w in configurations]
    for repetition in range(1, args.repeat + 1):
        for name, step in quick:
            _record(results, timed(results, f"{name} #{repetition}", step))
    if "procrastinate" not in args.skip:
        options = {"concurrency": args.concurrency}
        for name, step in [_peer(server, args, "procrastinate", options, w) for w in peer_workers]:
            _record(results, timed(results, name, step))


def _peer(
    server: BenchServer,
    args: argparse.Namespace,
    system: str,
    options: dict[str, int],
    workers: int,
) -> tuple[str, Callable[[], PeerDrain]]:
    name = f"{system} drain {workers}w " + ",".join(f"{k}={v}" for k, v in options.items())
    return name, partial(drain_peer, server, system, runs=args.runs, workers=workers, **options)


def _record(results: PassResults, drained: DrainResult | PeerDrain | None) -> None:
    if isinstance(drained, DrainResult):
        results.ordinaut.append(drained)
    elif isinstance(drained, PeerDrain):
        results.peers.append(drained)


def pgbench(server: BenchServer, args: argparse.Namespace, results: PassResults) -> None:
    if "pgbench" in args.skip:
        return
    try:
        pg_tool("pgbench")
    except FileNotFoundError as exc:
        results.notes.append(f"pgbench skipped: {exc}")
        return
    for batch, jobs in ((50, args.pgbench_jobs), (1, args.pgbench_single_jobs)):
        limit = partial(
            pgbench_limit.best_of, server, batch=batch, clients=args.pgbench_clients, jobs=jobs
        )
        if (measured := timed(results, f"pgbench {batch}/tx", limit)) is not None:
            results.pgbench += measured[1]


def latencies(server: BenchServer, args: argparse.Namespace, results: PassResults) -> None:
    def both() -> tuple[RunNowLatency, ScheduledDelay]:
        return asyncio.run(
            latency.measure(
                server,
                samples=args.samples,
                gap=args.gap,
                tasks=args.scheduled_tasks,
                spread=args.spread,
            )
        )

    if (measured := timed(results, "latency", both)) is not None:
        results.run_now, results.scheduled = measured


def run_pass(server: BenchServer, args: argparse.Namespace, *, async_commit: bool) -> PassResults:
    server.async_commit = async_commit
    results = PassResults(async_commit=async_commit)
    drains(server, args, results)
    pgbench(server, args, results)
    if async_commit:
        return results
    if "latency" not in args.skip:
        latencies(server, args, results)
    if "stability" not in args.skip:
        results.stability = timed(
            results,
            "stability",
            partial(
                stability.measure, server, runs=args.stability_runs, concurrency=args.concurrency
            ),
        )
    if "api" not in args.skip:
        rates = partial(
            api_rate.measure, server, seconds=args.api_seconds, concurrency=args.api_concurrency
        )
        results.api = timed(results, "api", rates) or []
    return results


def schedules(server: BenchServer, args: argparse.Namespace) -> dict[str, Any]:
    """``tests.load.scheduler_scale`` in its own process, on this server (a database of its
    own); its lines are printed as they come, its figures returned."""
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "schedules.json"
        command = [sys.executable, "-m", "tests.load.scheduler_scale"]
        command += ["--tasks", str(args.schedule_tasks), "--minutes", str(args.schedule_minutes)]
        command += ["--json", str(figures)]
        environment = {**os.environ, "DATABASE_URL": server.url}
        subprocess.run(command, cwd=REPO, env=environment, check=True)
        figures_read: dict[str, Any] = json.loads(figures.read_text())
        return figures_read


def schedules_line(scale: dict[str, Any]) -> str:
    """The schedule figures against the issue's targets, in one paragraph."""
    herd, cold = scale["herd"], scale["cold_start"]
    budget = scale["horizon_seconds"] + 60
    return (
        f"Schedules at scale ({scale['tasks']:,} active tasks): steady state "
        f"{scale['steady_cpu_percent']:.2f} % of one core (target < 5 %), peak RSS "
        f"{scale['peak_rss_mib']:.0f} MiB (< 300), cold start {cold['wall_seconds']:.0f} s, "
        f"hour boundary of the mix ({scale['boundary_tasks']:,} runs) "
        f"{scale['boundary_seconds']:.1f} s, herd of {herd['tasks']:,} on '0 * * * *' "
        f"{herd['wall_seconds']:.1f} s (budget {budget:.0f} s)"
    )


HOT_PATH = ("workers", "store", "engine", "migrations")


def provenance() -> dict[str, Any]:
    """Which code is measured: the commit, the files changed since it in the hot path, and a
    fingerprint of those folders' contents (the working tree is shared: code can change
    while the bench runs, and the fingerprints before and after show it)."""

    def git(*argv: str) -> str:
        completed = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True)
        return completed.stdout.strip()

    digest = hashlib.sha256()
    for folder in HOT_PATH:
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql"):
                digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted": git("status", "--porcelain", "--", *HOT_PATH).splitlines(),
        "fingerprint": digest.hexdigest()[:16],
    }


def header(server: BenchServer, settings: dict[str, Any], async_commit: bool) -> str:
    commit = "off" if async_commit else settings.get("synchronous_commit")
    where = "embedded" if server.embedded else "DATABASE_URL"
    return (
        f"Ordinaut benchmark: PostgreSQL {settings.get('server_version')} ({where}), "
        f"fsync={settings.get('fsync')}, synchronous_commit={commit}, "
        f"shared_buffers={settings.get('shared_buffers')}; {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out = args.out or RESULTS / f"bench-{started:%Y%m%dT%H%M%SZ}.json"
    load_before = os.getloadavg()
    code_before = provenance()
    passes: list[PassResults] = []
    with bench_server() as server:
        settings = server.settings()
        say(f"server: {settings}")
        passes.append(run_pass(server, args, async_commit=False))
        if args.async_commit:
            passes.append(run_pass(server, args, async_commit=True))
        scale = None
        if "schedules" not in args.skip:
            scale = timed(passes[0], "schedules", partial(schedules, server, args))
    load_after = os.getloadavg()
    code_after = provenance()
    tables = [render(p, header(server, settings, p.async_commit)) for p in passes]
    print("\n\n".join(tables))
    print(f"\ncode: {code_before}")
    if code_after != code_before:
        print(f"WARNING: the hot path changed during the run; at the end: {code_after}")
    if scale is not None:
        print(f"\n{schedules_line(scale)}")
    print(f"\nload average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}")
    document = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "code": {"before": code_before, "after": code_after},
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after},
        "server": settings,
        "passes": [
            {**asdict(p), "targets": [{**asdict(t), "passed": t.passed} for t in targets(p)]}
            for p in passes
        ],
        "tables": tables,
        "schedules": scale,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, default=str))
    tables_md = [markdown(p, header(server, settings, p.async_commit)) for p in passes]
    out.with_suffix(".md").write_text("\n\n".join(tables_md) + "\n")
    print(f"results: {out} (and the tables in Markdown: {out.with_suffix('.md').name})")


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
