"""The restart policy of ``ordinaut up`` (issue 17, defect 6): a crashed child comes back
after a growing delay; a child that crashes too often within a window is given up on."""

from __future__ import annotations

from ops.children import RestartPolicy


def test_delays_grow_and_reset_after_a_quiet_window():
    policy = RestartPolicy(max_crashes=5, window_seconds=60, base_delay=0.5, max_delay=8)
    delays = [policy.after_crash(now=float(t)) for t in range(4)]
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert policy.after_crash(now=1000.0) == 0.5  # the earlier crashes left the window


def test_too_many_crashes_within_the_window_give_up():
    policy = RestartPolicy(max_crashes=3, window_seconds=10, base_delay=1, max_delay=2)
    assert policy.after_crash(now=0.0) == 1
    assert policy.after_crash(now=1.0) == 2
    assert policy.after_crash(now=2.0) == 2
    assert policy.after_crash(now=3.0) is None


def test_the_delay_is_capped():
    policy = RestartPolicy(max_crashes=100, window_seconds=1000, base_delay=1, max_delay=5)
    assert [policy.after_crash(now=float(t)) for t in range(6)] == [1, 2, 4, 5, 5, 5]
