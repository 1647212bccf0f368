"""Deadlines that cost nothing when the awaited call never waits.

A timeout can only fire where a coroutine suspends: code that runs from start to finish
without awaiting anything pending cannot be interrupted by ``asyncio.timeout`` anyway. Most
runs of most pipelines (builtin tools, templates, no-op steps) complete without ever
suspending, and an ``asyncio.timeout`` costs a timer on the event loop's heap, its
rescheduling and cancellation — measured at about a tenth of a no-op run's CPU for the two
the worker used to arm per run (the run's timeout and each step's backstop).

:func:`within` runs the coroutine's first stretch directly; only when it suspends is the
deadline armed, around the rest of it. A cancellation or a timeout reaches the coroutine at
its suspension point exactly as it would under ``asyncio.timeout_at``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType
from typing import Any, TypeVar

T = TypeVar("T")


async def within(call: Awaitable[T], deadline: float) -> T:
    """Await ``call``; raise :class:`TimeoutError` when it is still suspended at
    ``deadline`` (event-loop time, ``loop.time()``). No timer is armed unless it suspends."""
    if not isinstance(call, CoroutineType):  # a future or a custom awaitable: the usual way
        async with asyncio.timeout_at(deadline):
            return await call
    try:
        suspended_on = call.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    async with asyncio.timeout_at(deadline):
        return await _Resumed(call, suspended_on)


class _Resumed(Awaitable[T]):
    """The rest of a coroutine that already ran up to its first suspension, awaited by the
    task that started it: what it yields goes to the task, what the task sends or throws in
    (results, a cancellation) goes to the coroutine, as ``yield from`` would pass them."""

    __slots__ = ("_coroutine", "_suspended_on")

    def __init__(self, coroutine: Coroutine[Any, Any, T], suspended_on: Any) -> None:
        self._coroutine = coroutine
        self._suspended_on = suspended_on

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, yielded = self._coroutine, self._suspended_on
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # every exception belongs to the coroutine
                try:
                    yielded = coroutine.throw(exc)
                except StopIteration as finished:
                    return finished.value  # type: ignore[no-any-return]
            else:
                try:
                    yielded = coroutine.send(sent)
                except StopIteration as finished:
                    return finished.value  # type: ignore[no-any-return]
