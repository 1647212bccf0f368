"""The chaos soak: ten minutes of steady load (scheduled, manual and event runs) while
PostgreSQL restarts every 5 to 40 s (``pg_ctl restart -m fast`` and ``-m immediate`` in
turn), every Ordinaut backend is terminated (``pg_terminate_backend``), workers and the
scheduler are ``kill -9``'d and restarted, and one session holds a transaction open for two
minutes (xmin pinned). It prints the recovery time after each fault, the throughput and
start delays with and without the pinned xmin, and whether every occurrence succeeded
exactly once (what is counted: :mod:`tests.chaos.verify`).

    python -m tests.load.soak [--minutes 10] [--seed 17]

Exits 1 when a check fails. The same harness runs for two minutes in CI
(``tests/e2e/test_chaos.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.chaos import ChaosPlan, run_chaos

RESULTS = Path(__file__).resolve().parent / "results"


def plan_for(minutes: float, seed: int) -> ChaosPlan:
    """Two minutes pinned, half a minute of baseline, the rest under faults."""
    total = minutes * 60
    return ChaosPlan(
        chaos_seconds=max(60.0, total - 5 - 30 - 120 - 60),  # a minute for the bursts
        fault_gap=(5.0, 40.0),
        xmin_hold_seconds=120.0,
        baseline_seconds=30.0,
        burst_runs=10_000,
        scheduled_tasks=5,
        event_tasks=3,
        manual_per_second=5.0,
        events_per_second=1.0,
        workers=2,
        concurrency=20,
        lease_seconds=10.0,
        seed=seed,
        finish_timeout=300.0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    plan = plan_for(args.minutes, args.seed)
    with tempfile.TemporaryDirectory(prefix="ordinaut-soak-") as workdir:
        report = asyncio.run(run_chaos(plan, Path(workdir)))
    print("\n".join(report.lines()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "soak.json"
    out.write_text(json.dumps(asdict(report), indent=2, default=str))
    print(f"(also written to {out})")
    return 1 if report.verdict.problems else 0


if __name__ == "__main__":
    sys.exit(main())
