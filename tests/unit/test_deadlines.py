"""engine.deadlines.within: the semantics of ``asyncio.timeout_at`` around a coroutine,
with no timer for a coroutine that never suspends."""

from __future__ import annotations

import asyncio

import pytest

from engine.deadlines import within


def _in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_a_call_that_never_suspends_returns_its_value_without_arming_a_timer() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def spy(when: float, *args: object, **kwargs: object) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, *args, **kwargs)  # type: ignore[arg-type]

    loop.call_at = spy  # type: ignore[method-assign]
    try:
        assert await within(add(2, 3), _in(10)) == 5
    finally:
        del loop.call_at
    assert armed == []


async def test_an_error_raised_before_any_suspension_propagates() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await within(fail(), _in(10))


async def test_a_call_suspended_past_its_deadline_times_out_and_is_cancelled() -> None:
    cleaned_up = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned_up.set()

    with pytest.raises(TimeoutError):
        await within(slow(), _in(0.05))
    assert cleaned_up.is_set()


async def test_results_and_errors_of_what_it_awaits_reach_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    second: asyncio.Future[int] = loop.create_future()

    async def two_waits() -> str:
        value = await first
        try:
            await second
        except KeyError as exc:
            return f"{value} then {exc.args[0]}"
        return "no error"

    loop.call_soon(first.set_result, 7)
    loop.call_later(0.01, second.set_exception, KeyError("caught"))
    assert await within(two_waits(), _in(10)) == "7 then caught"


async def test_a_cancellation_reaches_the_suspended_coroutine() -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def waits() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = asyncio.create_task(within(waits(), _in(10)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_the_run_deadline_outside_and_a_step_deadline_inside_each_fire_as_their_own() -> None:
    async def step() -> str:
        try:
            return await within(asyncio.sleep(10, "done"), _in(0.02))
        except TimeoutError:
            return "step timed out"

    assert await within(step(), _in(5)) == "step timed out"

    async def long_step() -> str:
        try:
            return await within(asyncio.sleep(10, "done"), _in(5))
        except TimeoutError:
            return "step timed out"

    with pytest.raises(TimeoutError):
        await within(long_step(), _in(0.02))


async def test_other_awaitables_are_awaited_under_the_deadline() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await within(future, _in(0.02))
