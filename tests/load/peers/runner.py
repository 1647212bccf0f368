"""Drain the peers (PgQueuer, Procrastinate) the way Ordinaut is drained: W worker processes
started on a fresh database and left to idle, N no-op jobs queued in one statement, jobs/s
from the first start to the last finish. The peers live in their own virtualenv
(``.bench-venv``), created here on first use from ``requirements.txt`` and re-created when
that file changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.load.drain import ProcessGroup
from tests.load.peers.common import HandlerStats
from tests.load.server import BenchServer

REPO = Path(__file__).resolve().parents[3]
BENCH_VENV = REPO / ".bench-venv"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
PEERS = {"pgqueuer": "pgqueuer", "procrastinate": "procrastinate"}  # system → distribution


@dataclass
class PeerDrain:
    system: str
    version: str
    workers: int
    concurrency: int
    runs: int
    seconds: float
    runs_per_second: float
    worker_rss_mb: list[float]
    worker_peak_rss_mb: list[float]
    handled: int  # handler calls: more than ``runs`` would mean jobs ran twice
    options: dict[str, int] = field(default_factory=dict)


def bench_python() -> Path:
    """The interpreter of ``.bench-venv``, installing it first when needed."""
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"installing the peers into {BENCH_VENV} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENCH_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True, check=False
    )
    if installed.returncode != 0:
        raise RuntimeError(f"pip could not install the peers:\n{installed.stderr[-3000:]}")
    stamp.write_text(digest)
    return python


def version(system: str) -> str:
    completed = subprocess.run(
        [
            str(bench_python()),
            "-c",
            f"import importlib.metadata as m; print(m.version({PEERS[system]!r}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def _command(system: str, command: str, dsn: str, *extra: str) -> list[str]:
    return [
        str(bench_python()),
        "-m",
        f"tests.load.peers.{system}_bench",
        command,
        "--dsn",
        dsn,
        *extra,
    ]


def _run(system: str, command: str, dsn: str, *extra: str) -> str:
    completed = subprocess.run(
        _command(system, command, dsn, *extra), cwd=REPO, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{system} {command} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def _wait_finished(system: str, dsn: str, timeout: float = 30.0) -> None:
    """Every job's completion reached the database (the peers acknowledge in batches, after
    the handler returned)."""
    deadline = time.monotonic() + timeout
    while (left := int(_run(system, "unfinished", dsn))) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{system}: {left} jobs still unfinished after the drain")
        time.sleep(0.5)


@dataclass
class _Procs(ProcessGroup):
    stats: list[Path] = field(default_factory=list)  # each process's HandlerStats file

    def total(self) -> int:
        return sum(HandlerStats.read(path).count for path in self.stats)

    def wait_started(self, system: str, *, settle: float, timeout: float = 60.0) -> None:
        """Every process has written its (empty) figures, then ``settle`` seconds more."""
        deadline = time.monotonic() + timeout
        while not all(path.exists() for path in self.stats):
            self.check_alive(f"{system} worker")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system} workers did not start in time")
            time.sleep(0.1)
        time.sleep(settle)


def _start(system: str, dsn: str, workdir: Path, workers: int, extra: list[str]) -> _Procs:
    stats = [workdir / f"{system}-{i}.json" for i in range(workers)]
    logs: list[IO[bytes]] = [tempfile.TemporaryFile() for _ in range(workers)]  # noqa: SIM115 - closed by stop()
    procs = [
        subprocess.Popen(
            _command(system, "work", dsn, "--stats", str(path), *extra),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for path, log in zip(stats, logs, strict=True)
    ]
    return _Procs(procs, logs, stats)


def drain_peer(
    server: BenchServer,
    system: str,
    *,
    runs: int,
    workers: int,
    concurrency: int,
    batch_size: int = 10,
    settle: float = 2.0,
    timeout: float | None = None,
) -> PeerDrain:
    """Start ``workers`` processes of ``system`` on a fresh database, let them idle, queue
    ``runs`` no-op jobs in one statement and wait until they are drained."""
    options = {"concurrency": concurrency}
    if system == "pgqueuer":  # Procrastinate fetches one job per query: no batch size
        options["batch_size"] = batch_size
    extra = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    with server.database(system) as dsn, tempfile.TemporaryDirectory() as workdir:
        _run(system, "setup", dsn)
        server.checkpoint()
        procs = _start(system, dsn, Path(workdir), workers, extra)
        try:
            procs.wait_started(system, settle=settle)
            _run(system, "enqueue", dsn, "--runs", str(runs))
            deadline = time.monotonic() + (timeout or max(300.0, runs / 20))
            while (done := procs.total()) < runs:
                procs.check_alive(f"{system} worker")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{system} did not drain: {done}/{runs}")
                time.sleep(0.25)
            rss, peak = procs.rss_mb(), procs.rss_mb("VmHWM")
            _wait_finished(system, dsn)
        finally:
            procs.stop(timeout=30)
        stats = [HandlerStats.read(path) for path in procs.stats]
    starts = [s.first_start for s in stats if s.first_start is not None]
    finishes = [s.last_finish for s in stats if s.last_finish is not None]
    seconds = max(finishes) - min(starts)
    return PeerDrain(
        system,
        version(system),
        workers,
        concurrency,
        runs,
        seconds,
        runs / seconds,
        rss,
        peak,
        sum(s.count for s in stats),
        options,
    )


def main() -> None:
    import argparse
    import json
    from dataclasses import asdict

    from tests.load.server import bench_server

    parser = argparse.ArgumentParser(description="Drain PgQueuer and Procrastinate.")
    parser.add_argument("--systems", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--runs", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    with bench_server() as server:
        for system in args.systems:
            for workers in args.workers:
                result = drain_peer(
                    server,
                    system,
                    runs=args.runs,
                    workers=workers,
                    concurrency=args.concurrency,
                    batch_size=args.batch_size,
                )
                print(json.dumps(asdict(result)), flush=True)


if __name__ == "__main__":
    main()
