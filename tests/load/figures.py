"""Summaries of samples: percentiles by the nearest-rank method, in milliseconds."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``fraction`` of the
    samples at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Distribution:
    """Percentiles of a sample of durations, in milliseconds."""

    samples: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of_seconds(cls, seconds: list[float]) -> Distribution:
        ms = [s * 1000 for s in seconds]
        return cls(
            samples=len(ms),
            p50=percentile(ms, 0.50),
            p95=percentile(ms, 0.95),
            p99=percentile(ms, 0.99),
            max=max(ms) if ms else math.nan,
            mean=statistics.fmean(ms) if ms else math.nan,
        )
