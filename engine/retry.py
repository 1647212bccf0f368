"""Retry decisions as data: given a failed attempt, retry when, or give up.

Pure functions of their inputs; the random source for jitter is injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

STEP_RETRY_CAP_SECONDS = 30.0


@dataclass(frozen=True)
class RetryDecision:
    """``retry`` with ``delay_seconds``, or ``dead``."""

    action: str  # "retry" | "dead"
    delay_seconds: float = 0.0

    @property
    def retry(self) -> bool:
        return self.action == "retry"


def backoff_seconds(
    strategy: str,
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The delay before retry number ``attempt`` (1 = the first retry)."""
    if strategy == "fixed":
        delay = base
    elif strategy == "linear":
        delay = base * attempt
    elif strategy == "exponential":
        delay = base * 2 ** (attempt - 1)
    elif strategy == "exponential_jitter":
        # "Equal jitter" (AWS architecture blog): half fixed, half random, spreads a herd.
        delay = base * 2 ** (attempt - 1) * (0.5 + rand() / 2)
    else:
        raise ValueError(f"unknown backoff strategy {strategy!r}")
    return min(delay, cap)


def decide_retry(
    *,
    attempt: int,
    max_retries: int,
    retryable: bool,
    strategy: str,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """After attempt number ``attempt`` (1-based) failed: retry later, or dead."""
    if not retryable or attempt > max_retries:
        return RetryDecision("dead")
    return RetryDecision("retry", backoff_seconds(strategy, attempt, base=base, cap=cap, rand=rand))


def step_retry_delay(attempt: int, base: float) -> float:
    """Backoff between attempts of one step inside a run (exponential, capped)."""
    return float(min(base * 2 ** (attempt - 1), STEP_RETRY_CAP_SECONDS))


def webhook_retry_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """The pause after failed try number ``attempt`` of a webhook delivery: exponential
    from ``base``, capped at ``cap``, then jittered to 50-100 % (so the receivers of a herd
    of runs that ended together are not called back in lockstep, even at the cap)."""
    return float(min(base * 2 ** (attempt - 1), cap) * (0.5 + rand() / 2))
