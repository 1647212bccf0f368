"""One face for both clients: ``await resolve(c.tasks.get(i))`` and ``await collect(
c.tasks.list())`` work whether ``c`` is a ``Client`` or an ``AsyncClient``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

E = TypeVar("E", bound=BaseException)


async def resolve(value: Any) -> Any:
    """The value, awaited when the async client returned an awaitable."""
    return await value if inspect.isawaitable(value) else value


async def collect(items: Iterable[Any] | AsyncIterator[Any]) -> list[Any]:
    """Every item of a sync or async iterator."""
    if isinstance(items, AsyncIterator):
        return [item async for item in items]
    return list(items)


async def raised(exc_type: type[E], call: Callable[[], Any]) -> E:
    """The ``exc_type`` error that ``call()`` (awaited if need be) raised; fails otherwise."""
    try:
        await resolve(call())
    except exc_type as exc:
        return exc
    raise AssertionError(f"{exc_type.__name__} not raised")


class FakeTime:
    """A monotonic clock that only sleeping (or a fake server) moves, installed in a
    client's driver so that waiting and backoff run instantly and can be inspected."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def install(self, client: Any) -> FakeTime:
        driver = client._driver
        driver.clock = self.clock
        driver.sleep = self.asleep if inspect.iscoroutinefunction(driver.run) else self.sleep
        return self
