"""The console's pure layout: the overview chart's bars and the run timeline's spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.console.charts import runs_per_minute_chart
from api.console.timeline import SCALE, timeline

NOW = datetime(2026, 11, 24, 10, 30, 20, tzinfo=UTC)


def test_the_chart_has_a_bar_per_minute_stacked_by_outcome_on_a_round_scale():
    minute = NOW.replace(second=0, microsecond=0)
    rows = [
        {"minute": minute, "status": "succeeded", "n": 30},
        {"minute": minute, "status": "dead", "n": 4},
        {"minute": minute - timedelta(minutes=10), "status": "canceled", "n": 1},
        {"minute": minute - timedelta(minutes=90), "status": "dead", "n": 9},  # too old
    ]
    chart = runs_per_minute_chart(rows, now=NOW)
    assert len(chart.bars) == 60 and chart.totals == {"succeeded": 30, "canceled": 1, "dead": 4}
    assert [tick.label for tick in chart.y_ticks] == ["0", "25", "50"]  # 34 → a scale of 50
    last = chart.bars[-1]
    assert [s.outcome for s in last.segments] == ["succeeded", "dead"]  # bottom to top
    assert last.label == "10:30 UTC — 30 succeeded, 4 dead"
    heights = sum(s.height for s in last.segments)
    assert abs(heights - (chart.plot_bottom - chart.plot_top) * 34 / 50) < 0.1
    assert chart.x_ticks[-1].label == "10:30" and not chart.empty


def test_an_hour_without_runs_is_an_empty_chart():
    chart = runs_per_minute_chart([], now=NOW)
    assert chart.empty and all(not bar.segments for bar in chart.bars)


def test_step_bars_are_placed_and_sized_in_proportion_to_the_run():
    start = NOW
    steps = [
        {"id": "a", "status": "succeeded", "started_at": start.isoformat(), "duration_ms": 250},
        {
            "id": "b",
            "status": "failed",
            "started_at": (start + timedelta(milliseconds=500)).isoformat(),
            "duration_ms": 500,
        },
        {"id": "c", "status": "skipped", "started_at": None, "duration_ms": 0},
    ]
    run = {
        "status": "dead",
        "queued_at": start - timedelta(milliseconds=40),
        "started_at": start,
        "finished_at": start + timedelta(milliseconds=1000),
        "steps": steps,
    }
    laid = timeline(run, now=NOW)
    assert laid.span_ms == 1000 and laid.wait_ms == 40 and laid.step_ms == 750
    a, b, c = laid.bars
    assert (a.x, a.width) == (0.0, SCALE / 4)
    assert (b.x, b.width) == (SCALE / 2, SCALE / 2)
    assert c.offset_ms is None and c.width > 0  # a skipped step still shows
