"""Retry decisions are data: pure functions of the attempt, the policy and a random source."""

from __future__ import annotations

import pytest

from engine.retry import backoff_seconds, decide_retry, step_retry_delay


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [
        ("fixed", [2, 2, 2, 2]),
        ("linear", [2, 4, 6, 8]),
        ("exponential", [2, 4, 8, 16]),
        ("exponential_jitter", [1.5, 3, 6, 12]),  # rand() = 0.5 → 75 % of exponential
    ],
)
def test_backoff_strategies(strategy, delays):
    got = [backoff_seconds(strategy, n, base=2, cap=1000, rand=lambda: 0.5) for n in (1, 2, 3, 4)]
    assert got == delays


def test_jitter_stays_between_half_and_the_full_exponential_delay():
    low = backoff_seconds("exponential_jitter", 3, base=1, cap=100, rand=lambda: 0.0)
    high = backoff_seconds("exponential_jitter", 3, base=1, cap=100, rand=lambda: 1.0)
    assert (low, high) == (2.0, 4.0)


def test_backoff_is_capped():
    assert backoff_seconds("exponential", 30, base=1, cap=60) == 60


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError):
        backoff_seconds("sometimes", 1, base=1, cap=1)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "retryable", "action"),
    [
        (1, 3, True, "retry"),
        (3, 3, True, "retry"),
        (4, 3, True, "dead"),
        (1, 0, True, "dead"),
        (1, 5, False, "dead"),
    ],
)
def test_decide_retry(attempt, max_retries, retryable, action):
    decision = decide_retry(
        attempt=attempt,
        max_retries=max_retries,
        retryable=retryable,
        strategy="fixed",
        base=5,
        cap=60,
    )
    assert decision.action == action
    assert decision.delay_seconds == (5 if action == "retry" else 0)


def test_step_retries_inside_a_run_back_off_exponentially_with_a_cap():
    assert [step_retry_delay(n, 1) for n in (1, 2, 3, 10)] == [1, 2, 4, 30]
