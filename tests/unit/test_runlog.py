"""The per-run log lines stay within their budget; the runs beyond it are summed up."""

from __future__ import annotations

import logging

import pytest

from workers.runlog import RunLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_run_has_a_line_while_few_finish(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    run_log = RunLog(lines_per_second=3, clock=clock)
    for _ in range(10):
        assert run_log.allow()
        clock.now += 0.5  # two a second
    run_log.flush()
    assert not caplog.records


def test_beyond_the_budget_one_line_sums_up_each_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ordinaut.worker")
    clock = Clock()
    run_log = RunLog(lines_per_second=3, clock=clock)
    allowed = 0
    for index in range(100):
        if run_log.allow():
            allowed += 1
        else:
            run_log.skip("dead" if index % 10 == 0 else "succeeded", 2.0)
        clock.now += 0.005  # 200 a second: 100 runs in half a second
    assert allowed == 3
    clock.now += 1.0
    assert run_log.allow()  # a new second: the last one is summed up first
    (summary,) = caplog.records
    assert summary.getMessage().startswith("97 more runs finished in ")
    assert "9 dead, 88 succeeded (mean 2.0 ms)" in summary.getMessage()
    assert summary.__dict__["runs"] == 97 and summary.__dict__["runs_dead"] == 9
