"""The overview's chart, laid out on the server: finished runs per minute by outcome, as
stacked bars in an SVG (no script, no style attributes: geometry only)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from store.db import Row

WIDTH, HEIGHT = 760.0, 190.0
LEFT, RIGHT, TOP, BOTTOM = 40.0, 24.0, 10.0, 24.0
# Bottom to top; the class colours each segment (console.css).
OUTCOMES = ("succeeded", "canceled", "dead")


@dataclass(frozen=True)
class Segment:
    outcome: str
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass
class Chart:
    width: float = WIDTH
    height: float = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    plot_left: float = LEFT
    plot_right: float = WIDTH - RIGHT
    plot_top: float = TOP
    plot_bottom: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not any(self.totals.values())


def runs_per_minute_chart(rows: Iterable[Row], *, now: datetime, minutes: int = 60) -> Chart:
    """Stacked bars for the ``minutes`` minutes ending with the current one (UTC labels)."""
    last = now.replace(second=0, microsecond=0)
    slots = [last - timedelta(minutes=minutes - 1 - i) for i in range(minutes)]
    counts: dict[datetime, dict[str, int]] = {slot: {} for slot in slots}
    for row in rows:
        if row["minute"] in counts and row["status"] in OUTCOMES:
            counts[row["minute"]][row["status"]] = int(row["n"])
    top = _nice_ceiling(max((sum(c.values()) for c in counts.values()), default=0))
    chart = Chart(totals={o: sum(c.get(o, 0) for c in counts.values()) for o in OUTCOMES})
    slot_width = (chart.plot_right - chart.plot_left) / minutes
    scale = (chart.plot_bottom - chart.plot_top) / top
    for i, slot in enumerate(slots):
        x = chart.plot_left + i * slot_width
        chart.bars.append(_bar(slot, counts[slot], x, slot_width, scale, chart.plot_bottom))
        if (minutes - 1 - i) % 10 == 0:
            chart.x_ticks.append(Tick(x + slot_width / 2, slot.strftime("%H:%M")))
    chart.y_ticks = [
        Tick(chart.plot_bottom - value * scale, f"{value:g}") for value in (0, top / 2, top)
    ]
    return chart


def _bar(
    slot: datetime, counts: dict[str, int], x: float, slot_width: float, scale: float, base: float
) -> Bar:
    segments: list[Segment] = []
    y = base
    for outcome in OUTCOMES:
        height = counts.get(outcome, 0) * scale
        if height > 0:
            y -= height
            segments.append(Segment(outcome, round(y, 2), round(height, 2)))
    described = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o))
    label = f"{slot:%H:%M} UTC — {described or 'no runs'}"
    return Bar(round(x + slot_width * 0.15, 2), round(slot_width * 0.7, 2), label, segments)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value`` (at least 2,
    so the halfway line is a whole number)."""
    if value <= 2:
        return 2
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)
