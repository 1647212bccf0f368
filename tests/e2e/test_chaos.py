"""Chaos in CI (issue 17): about two minutes of steady load while PostgreSQL restarts every
3 to 8 s (``-m fast`` and ``-m immediate`` in turn), every Ordinaut backend is terminated, a
worker and the scheduler are ``kill -9``'d and restarted, and a session pins the xmin
horizon for 30 s; then every scheduled occurrence, ``run_now`` and event run must have
succeeded exactly once, with one side effect each and nothing lost (what is counted:
:mod:`tests.chaos.verify`). The ten-minute version with its figures is
``python -m tests.load.soak``."""

from __future__ import annotations

import pytest

from tests.chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.e2e

PLAN = ChaosPlan(
    chaos_seconds=60,
    fault_gap=(3, 8),
    xmin_hold_seconds=30,
    baseline_seconds=10,
    burst_runs=2000,
)


async def test_repeated_chaos_loses_nothing_and_runs_everything_once(tmp_path):
    report = await run_chaos(PLAN, tmp_path)
    print("\n".join(report.lines()))
    assert report.verdict.problems == [], "\n".join(report.lines())
    kinds = {recovery.kind for recovery in report.recoveries}
    assert kinds >= {
        "pg_restart_fast",
        "pg_restart_immediate",
        "terminate_backends",
        "kill_worker",
        "kill_scheduler",
    }, kinds
    assert all(r.run_seconds is not None for r in report.recoveries), report.lines()
    assert report.verdict.counts["occurrences"] > 0
    assert report.verdict.counts["manual"] > 0 and report.verdict.counts["events"] > 0
