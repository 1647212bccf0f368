"""Live runs: requests that wait for a run to end (``?wait=N``) and ``GET /runs/stream``.

One :class:`RunFeed` per API process holds one ``LISTEN ordinaut_runs`` connection
(:func:`store.notify.hold_listening`) and fans its notifications out in memory:

- **waiters** register an event for a run id *before* they read the run (so a change between
  the read and the wait is not lost), then sleep on it; a notification that the run ended
  wakes them, and they read it again. While they sleep they cost no database round trip
  and hold no connection. After the listener (re)connects every waiter wakes and reads
  again: notifications sent while nobody listened are lost.
- **streams** get events for the runs they may see. A batch of notifications is looked up
  once (one query, and only while some stream is open), whatever the number of streams, and
  each stream filters the events in memory: its agent's runs (an admin's: all), its
  ``task_id`` and ``status`` filters. Every ``ORDINAUT_STREAM_RECHECK_SECONDS`` (15 s) a
  stream asks again whether its caller may still see it (:meth:`RunFeed.follow`): a revoked
  token, a deleted agent, a scope taken away or an ended console session closes it.

Events (see ``GET /runs/stream``): ``run.queued``, ``run.running``, ``run.failed`` (a retry
waits), ``run.succeeded``, ``run.dead``, ``run.canceled`` with ``{"id", "task_id", "status",
"attempt", "run"}`` where ``run`` is the run as ``GET /runs/{id}`` shows it when the event
is sent, or null when the run has already moved on to a later state (a later event follows);
``step.finished`` with ``{"run_id", "task_id", "attempt", "index", "step"}`` for each step an
attempt finishes, in order, before the event of the state it led to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from engine.errors import StoreError
from engine.runs import present_run, present_step
from engine.settings import Settings
from observability import metrics
from store import runs as runs_store
from store.db import Connection, Pool, Row
from store.notify import Notification, hold_listening
from store.run_events import RUNS_CHANNEL, RunChange, parse_changes

T = TypeVar("T")

# Asked now and then while a stream is open: may its caller still see it?
StillAllowed = Callable[[Connection], Awaitable[bool]]

log = logging.getLogger("ordinaut.api.live")

KEEPALIVE_SECONDS = 15.0
# Events a stream may have pending before it is closed as too slow (its client reconnects
# and reads GET /runs for what it missed).
MAX_PENDING_EVENTS = 10_000
# Steps are tracked per run until it ends; a run whose end was never heard is forgotten
# when this many are tracked (the oldest first).
MAX_TRACKED_RUNS = 100_000


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name, the run it is about, and its data."""

    name: str
    agent_id: UUID
    task_id: UUID
    status: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """An open stream: what it may see, and the events waiting to be sent to it."""

    owner: UUID | None  # None: an admin, sees every run
    task_id: UUID | None
    statuses: frozenset[str]
    events: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def accepts(self, event: Event) -> bool:
        return (
            (self.owner is None or event.agent_id == self.owner)
            and (self.task_id is None or event.task_id == self.task_id)
            and (not self.statuses or event.status in self.statuses)
        )

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.events.qsize() >= MAX_PENDING_EVENTS:
            self.overflowed = True
            self.events.put_nowait(None)
            return
        self.events.put_nowait(event)


class RunFeed:
    """The process's one listener, its waiters and its streams (see the module docstring)."""

    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.connected = False
        self.closing = False
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscribers: set[Subscriber] = set()
        self._changes: asyncio.Queue[list[RunChange]] = asyncio.Queue()
        # run id -> (attempt, steps of it announced)
        self._steps_sent: dict[str, tuple[int, int]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        # run id -> the read of it in flight, shared by every waiter that woke for it
        self._reads: dict[str, asyncio.Future[Any]] = {}

    async def start(self) -> None:
        assert self.settings.database_url
        self._tasks = [
            asyncio.create_task(self._listen(self.settings.database_url), name="run-feed"),
            asyncio.create_task(self._dispatch(), name="run-feed-dispatch"),
        ]

    def shut(self) -> None:
        """The process is stopping: waiters answer what they have, streams end."""
        self.closing = True
        self._wake_all()
        for subscriber in list(self._subscribers):
            subscriber.events.put_nowait(None)

    async def close(self) -> None:
        self.shut()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @contextlib.contextmanager
    def waiter(self, run_id: UUID | str) -> Iterator[asyncio.Event]:
        """An event set when the run may have ended: register it before reading the run."""
        key = str(run_id)
        woken = asyncio.Event()
        if self.closing:
            woken.set()
        self._waiters.setdefault(key, set()).add(woken)
        metrics.RUN_WAITERS.inc()
        try:
            yield woken
        finally:
            metrics.RUN_WAITERS.dec()
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiters[key]

    async def shared_read(self, run_id: UUID | str, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``, once for all the waiters of ``run_id`` that ask while it is in flight:
        a thousand requests woken by one run's end cost one query, not a thousand
        checkouts from a pool of ten (which would time some of them out)."""
        key = str(run_id)
        pending = self._reads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(read())
            self._reads[key] = pending
            pending.add_done_callback(lambda _: self._reads.pop(key, None))
        result: T = await asyncio.shield(pending)
        return result

    @contextlib.asynccontextmanager
    async def subscription(
        self, *, owner: UUID | None, task_id: UUID | None, statuses: Sequence[str]
    ) -> AsyncIterator[Subscriber]:
        """A stream's subscription, open for the block."""
        subscriber = Subscriber(owner, task_id, frozenset(statuses))
        if self.closing:
            subscriber.events.put_nowait(None)
        self._subscribers.add(subscriber)
        metrics.RUN_STREAM_SUBSCRIBERS.inc()
        try:
            yield subscriber
        finally:
            metrics.RUN_STREAM_SUBSCRIBERS.dec()
            self._subscribers.discard(subscriber)

    async def follow(
        self, subscriber: Subscriber, still_allowed: StillAllowed
    ) -> AsyncIterator[Event | None]:
        """The subscriber's events as they come, and None whenever ``KEEPALIVE_SECONDS``
        passed without one (the caller sends a keepalive comment). Ends when the server
        stops, when the subscriber fell too far behind, or when ``still_allowed`` (asked
        every ``stream_recheck_seconds``) says no: a stream opened with a token lives no
        longer than the token's access."""
        clock = asyncio.get_running_loop().time
        recheck = self.settings.stream_recheck_seconds
        next_check = clock() + recheck
        next_keepalive = clock() + KEEPALIVE_SECONDS
        while True:
            if clock() >= next_check:
                if not await self._still_allowed(still_allowed):
                    return
                next_check = clock() + recheck
            if clock() >= next_keepalive:
                yield None
                next_keepalive = clock() + KEEPALIVE_SECONDS
            try:
                async with asyncio.timeout(max(0.0, min(next_check, next_keepalive) - clock())):
                    event = await subscriber.events.get()
            except TimeoutError:
                continue
            if event is None:  # the server stops, or this client fell too far behind
                return
            next_keepalive = clock() + KEEPALIVE_SECONDS
            yield event

    async def _still_allowed(self, still_allowed: StillAllowed) -> bool:
        """Fails closed: without the database the answer is no (the client reconnects,
        and its new request is answered once the database is back)."""
        try:
            async with self.pool.connection() as conn:
                return await still_allowed(conn)
        except StoreError as exc:
            log.warning("run stream access check failed: %s", exc.message)
            return False

    def format(self, event: Event) -> bytes:
        """``event``, ``id`` and ``data`` lines of one server-sent event."""
        data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {event.name}\nid: {next(self._ids)}\ndata: {data}\n\n".encode()

    async def _listen(self, database_url: str) -> None:
        await hold_listening(
            database_url,
            name="ordinaut-api-listen",
            channels=[RUNS_CHANNEL],
            on_connect=self._connected,
            on_notify=self._notified,
            what="run listener",
        )

    def _connected(self) -> None:
        # Changes made while nobody listened are lost: every waiter reads its run again.
        self.connected = True
        self._wake_all()

    def _wake_all(self) -> None:
        for waiting in self._waiters.values():
            for woken in waiting:
                woken.set()

    def _notified(self, notification: Notification) -> None:
        changes = parse_changes(notification.payload)
        for change in changes:
            if change.final:
                for woken in self._waiters.get(change.run_id, ()):
                    woken.set()
        if self._subscribers:
            self._changes.put_nowait(changes)

    async def _dispatch(self) -> None:
        """Turn batches of changes into events, one lookup per batch, in arrival order."""
        while True:
            changes = await self._changes.get()
            while not self._changes.empty():  # whatever else arrived meanwhile: one lookup
                changes.extend(self._changes.get_nowait())
            if not self._subscribers:
                continue
            rows = await self._lookup({c.run_id for c in changes if c.kind != "x"})
            for event in self._events(changes, rows):
                for subscriber in list(self._subscribers):
                    if subscriber.accepts(event):
                        subscriber.offer(event)

    async def _lookup(self, run_ids: set[str]) -> dict[str, Row]:
        try:
            async with self.pool.connection() as conn:
                rows = await runs_store.get_runs(conn, sorted(run_ids))
        except StoreError as exc:
            log.warning("run stream look-up failed: %s", exc.message)
            return {}
        return {str(row["id"]): row for row in rows}

    def _events(self, changes: list[RunChange], rows: dict[str, Row]) -> Iterator[Event]:
        for change in changes:
            row = rows.get(change.run_id)
            if row is None:  # gone (a removed occurrence, pruned history)
                continue
            yield from self._steps_of(change, row)
            if change.kind != "p":
                yield _state_event(change, row)
            if change.final:
                self._steps_sent.pop(change.run_id, None)

    def _steps_of(self, change: RunChange, row: Row) -> Iterator[Event]:
        """Steps of the change's attempt not yet announced (when the row still shows them)."""
        if row["attempt"] != change.attempt or change.kind in ("q", "r"):
            return
        announced, sent = self._steps_sent.get(change.run_id, (change.attempt, 0))
        if announced != change.attempt:
            sent = 0
        steps = row["steps"] or []
        for index in range(sent, len(steps)):
            data = {
                "run_id": change.run_id,
                "task_id": str(row["task_id"]),
                "attempt": change.attempt,
                "index": index,
                "step": present_step(steps[index]),
            }
            yield Event("step.finished", row["agent_id"], row["task_id"], row["status"], data)
        if change.final:
            return
        if change.run_id not in self._steps_sent and len(self._steps_sent) >= MAX_TRACKED_RUNS:
            self._steps_sent.pop(next(iter(self._steps_sent)))
        self._steps_sent[change.run_id] = (change.attempt, max(sent, len(steps)))


def _state_event(change: RunChange, row: Row) -> Event:
    current = row["status"] == change.status and row["attempt"] == change.attempt
    data = {
        "id": change.run_id,
        "task_id": str(row["task_id"]),
        "status": change.status,
        "attempt": change.attempt,
        "run": present_run(row) if current else None,
    }
    return Event(f"run.{change.status}", row["agent_id"], row["task_id"], change.status, data)
