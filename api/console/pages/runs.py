"""Runs: the list (filters, capped status counts, keyset pages, bulk retry and cancel with a
confirmation naming the count) and one run (its steps on a timeline, errors, actions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query, Request
from fastapi.responses import Response, StreamingResponse

from api.console.mirror import RUN_CANCEL, RUN_READ, RUN_RETRY, RUNS_LIST, Done, Mirror, record
from api.console.render import page, redirect, safe_next, secured
from api.console.routing import (
    Form,
    Signed,
    act,
    allowed,
    check_form,
    first,
    posted_form,
    query_string,
    read_form,
    router,
)
from api.console.session import ConsoleSession, still_signed_in
from api.console.timeline import timeline
from api.deps import Conn, Principal
from api.live import RunFeed
from api.operations import runs as operations
from api.pagination import list_page
from engine.clock import now_utc
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.runs import FINAL_STATUSES
from engine.settings import Settings
from engine.timezones import parse_iso_datetime
from store import runs as runs_store
from store import tasks as tasks_store
from store.db import Connection, Row
from store.runs import RUN_STATUSES

PAGE_SIZE = 50
# The status tabs count up to this many runs each ("1 000+"): the runs table is the big one.
COUNT_CAP = 1_000
# A bulk action acts on at most this many runs per confirmation (newest first).
BULK_LIMIT = 1000
TRIGGERS = ("schedule", "manual", "event", "retry")
RANGES = {"1h": ("Last hour", 3600), "24h": ("Last 24 hours", 86400)}
RANGES |= {"7d": ("Last 7 days", 7 * 86400), "30d": ("Last 30 days", 30 * 86400)}
FILTERS = ("status", "trigger", "task", "range", "since", "until")

Choice = Annotated[str | None, Query(max_length=200)]


@dataclass(frozen=True)
class RunFilter:
    """The run list's filters, parsed and checked (a bad value is a 422 page)."""

    status: str | None = None
    trigger: str | None = None
    task_id: UUID | None = None
    range: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, values: dict[str, str | None]) -> RunFilter:
        status, trigger, range_ = values.get("status"), values.get("trigger"), values.get("range")
        since = _moment(values.get("since"), "since")
        if since is None and range_ in RANGES:
            since = now_utc() - timedelta(seconds=RANGES[range_][1])
        return cls(
            status=status if status in RUN_STATUSES else None,
            trigger=trigger if trigger in TRIGGERS else None,
            task_id=_uuid(values.get("task"), "task"),
            range=range_ if range_ in RANGES else None,
            since=since,
            until=_moment(values.get("until"), "until"),
        )

    def params(self) -> dict[str, Any]:
        """The filters as query parameters (for links and the bulk form)."""
        return {
            "status": self.status,
            "trigger": self.trigger,
            "task": str(self.task_id) if self.task_id else None,
            "range": self.range,
            "since": _local(self.since) if self.since and not self.range else None,
            "until": _local(self.until) if self.until else None,
        }

    async def fetch(
        self,
        conn: Connection,
        principal: Principal,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Row]:
        """The runs matching, newest first, in ``principal``'s reach (:func:`list_runs`)."""
        return await runs_store.list_runs(
            conn,
            owner=principal.owner_filter,
            task_id=self.task_id,
            statuses=[self.status] if self.status else None,
            triggers=[self.trigger] if self.trigger else None,
            since=self.since,
            until=self.until,
            limit=limit,
            after=after,
        )


def _uuid(value: str | None, name: str) -> UUID | None:
    if not value or not value.strip():
        return None
    try:
        return UUID(value.strip())
    except ValueError:
        raise ValidationFailed([], f"the {name} filter is not an id") from None


def _moment(value: str | None, name: str) -> datetime | None:
    """A ``datetime-local`` value (read as UTC) or an ISO 8601 instant."""
    if not value or not value.strip():
        return None
    try:
        parsed = parse_iso_datetime(value.strip())
    except ValueError:
        raise ValidationFailed([], f"{name}: not a date and time (2026-03-30T09:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _local(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@router.get("/runs")
async def runs_page(
    request: Request,
    session: Signed,
    conn: Conn,
    status: Choice = None,
    trigger: Choice = None,
    task: Choice = None,
    range: Choice = None,
    since: Choice = None,
    until: Choice = None,
    cursor: Choice = None,
) -> Response:
    principal = allowed(request, session, RUNS_LIST).principal
    chosen = RunFilter.parse(
        {"status": status, "trigger": trigger, "task": task, "range": range}
        | {"since": since, "until": until}
    )
    listed = await list_page(
        lambda n, after: chosen.fetch(conn, principal, limit=n, after=after),
        limit=PAGE_SIZE,
        cursor=cursor or None,
        key="queued_at",
    )
    runs = listed["items"]
    params = chosen.params()
    # The tabs count the token's runs by status; a task filter drops the numbers rather
    # than show totals that are not the list's (counting one task's runs by status would
    # walk all of them).
    counts = None
    if chosen.task_id is None:
        counts = await runs_store.count_runs_by_status(
            conn, owner=principal.owner_filter, cap=COUNT_CAP, waiting_cap=COUNT_CAP * 3
        )
    titles = await tasks_store.task_titles(
        conn, [run["task_id"] for run in runs] + ([chosen.task_id] if chosen.task_id else [])
    )
    return page(
        request,
        "runs.html",
        session,
        runs=runs,
        titles=titles,
        counts=counts,
        count_cap=COUNT_CAP,
        filters=params,
        task_title=titles.get(chosen.task_id) if chosen.task_id else None,
        statuses=RUN_STATUSES,
        triggers=TRIGGERS,
        ranges=RANGES,
        status_url=lambda s: "/ui/runs?" + query_string({**params, "status": s}),
        next_url=(
            "/ui/runs?" + query_string({**params, "cursor": listed["next_cursor"]})
            if listed["next_cursor"]
            else None
        ),
        first_url="/ui/runs?" + query_string(params) if cursor else None,
        here="/ui/runs?" + query_string(params),
        can_retry=RUN_RETRY.allows(request.app, principal),
        can_cancel=RUN_CANCEL.allows(request.app, principal),
        bulk_limit=BULK_LIMIT,
    )


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: UUID, session: Signed, conn: Conn) -> Response:
    context = await _run_context(request, session, conn, run_id)
    return page(request, "run.html", session, **context)


@router.get("/runs/{run_id}/body")
async def run_fragment(request: Request, run_id: UUID, session: Signed, conn: Conn) -> Response:
    """The run page's body alone: the page fetches it again when the run stream says the run
    changed."""
    context = await _run_context(request, session, conn, run_id)
    return page(request, "_run_body.html", session, **context)


@router.get("/runs/{run_id}/stream")
async def run_stream(request: Request, run_id: UUID, session: Signed, conn: Conn) -> Response:
    """Server-sent events about this one run, for the page that shows it: the REST stream's
    subscription (``api/live.py``) with the session's owner filter, authenticated by the
    session cookie. Events: ``changed`` (a step finished or the state changed; the page
    fetches its body again), then ``ended`` once the run is final, and the stream closes."""
    principal = allowed(request, session, RUN_READ).principal
    run = await operations.visible_run(conn, run_id, principal)
    feed: RunFeed = request.app.state.run_feed
    owner, task_id, wanted = principal.owner_filter, run["task_id"], str(run_id)
    final = run["status"] in FINAL_STATUSES

    async def events() -> AsyncIterator[bytes]:
        if final:
            yield b"event: ended\ndata: {}\n\n"
            return
        async with feed.subscription(owner=owner, task_id=task_id, statuses=()) as subscriber:
            # Subscribed: whatever happened since the page was read comes next.
            yield b"event: changed\ndata: {}\n\n"
            may_read = partial(RUN_READ.allows, request.app)
            async for event in feed.follow(subscriber, still_signed_in(session, may_read)):
                if event is None:
                    yield b": keepalive\n\n"
                elif wanted not in (event.data.get("id"), event.data.get("run_id")):
                    continue
                elif event.name.startswith("run.") and event.status in FINAL_STATUSES:
                    yield b"event: ended\ndata: {}\n\n"
                    return
                else:
                    yield b"event: changed\ndata: {}\n\n"

    return secured(
        StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    )


async def _run_context(
    request: Request, session: ConsoleSession, conn: Connection, run_id: UUID
) -> dict[str, Any]:
    """The run as ``GET /runs/{id}`` answers it (attempts, tries, skip reasons, timing,
    webhook deliveries), its task's title, its timeline and the actions the token may take."""
    principal = allowed(request, session, RUN_READ).principal
    run = await operations.read_run(conn, run_id, principal.owner_filter)
    task_id = UUID(run["task_id"])
    titles = await tasks_store.task_titles(conn, [task_id])
    return {
        "run": run,
        "title": titles.get(task_id, "?"),
        "timeline": timeline(run, now=now_utc()),
        "live": run["status"] not in FINAL_STATUSES,
        "can_retry": RUN_RETRY.allows(request.app, principal) and run["status"] in RETRYABLE,
        "can_cancel": RUN_CANCEL.allows(request.app, principal) and run["status"] in CANCELABLE,
    }


RETRYABLE = ("failed", "dead")
CANCELABLE = ("queued", "running", "failed")


async def _run_action(
    request: Request,
    session: ConsoleSession,
    conn: Connection,
    run_id: UUID,
    mirror: Mirror,
    perform: Callable[[Connection, Principal, UUID], Awaitable[dict[str, Any]]],
    message: str,
) -> Response:
    await posted_form(request, session, mirror)
    principal = session.principal

    async def work() -> tuple[str, str | None]:
        async with conn.transaction():
            result = await perform(conn, principal, run_id)
            result_id = str(result["id"])
            await record(conn, request, mirror, principal, [Done(str(run_id), 200, result_id)])
        # a dead run's retry is a new run: show that one
        return message, None if result_id == str(run_id) else f"/ui/runs/{result_id}"

    return await act(f"/ui/runs/{run_id}", work)


@router.post("/runs/{run_id}/retry")
async def retry(request: Request, run_id: UUID, session: Signed, conn: Conn) -> Response:
    perform = partial(operations.retry_run, settings=request.app.state.settings)
    return await _run_action(request, session, conn, run_id, RUN_RETRY, perform, "Retry queued.")


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, run_id: UUID, session: Signed, conn: Conn) -> Response:
    return await _run_action(
        request, session, conn, run_id, RUN_CANCEL, operations.cancel_run, "Cancel requested."
    )


@dataclass(frozen=True)
class BulkAction:
    verb: str
    mirror: Mirror
    acts_on: tuple[str, ...]
    perform: Callable[[Connection, Principal, UUID], Awaitable[dict[str, Any]]]


def _bulk_action(form: Form, settings: Settings) -> BulkAction:
    match first(form, "action"):
        case "retry":
            retry = partial(operations.retry_run, settings=settings)
            return BulkAction("Retry", RUN_RETRY, RETRYABLE, retry)
        case "cancel":
            return BulkAction("Cancel", RUN_CANCEL, CANCELABLE, operations.cancel_run)
    raise ValidationFailed([], "choose Retry or Cancel")


@router.post("/runs/bulk")
async def bulk_confirm(request: Request, session: Signed, conn: Conn) -> Response:
    """The confirmation page: which runs the action would touch, counted."""
    form = await read_form(request)
    action = _bulk_action(form, request.app.state.settings)
    check_form(request, session, form, action.mirror)
    principal = session.principal
    back = safe_next(first(form, "back"))
    if first(form, "all_matching"):
        chosen = RunFilter.parse({name: first(form, name) for name in FILTERS})
        targets, more = await _matching(conn, principal, chosen, action)
        selected = None
    else:
        ids = [_uuid(value, "run") for value in form.get("run_id", [])[:BULK_LIMIT]]
        if not ids:
            return redirect(back, ("error", "Select one or more runs first."))
        found = await runs_store.get_visible_runs(
            conn, [i for i in ids if i], owner=principal.owner_filter
        )
        targets = [run for run in found if run["status"] in action.acts_on]
        more, selected = False, len(ids)
    titles = await tasks_store.task_titles(conn, [run["task_id"] for run in targets])
    return page(
        request,
        "bulk_confirm.html",
        session,
        action=action,
        verb=first(form, "action"),
        targets=targets,
        titles=titles,
        more=more,
        selected=selected,
        back=back,
        bulk_limit=BULK_LIMIT,
    )


async def _matching(
    conn: Connection, principal: Principal, chosen: RunFilter, action: BulkAction
) -> tuple[list[Row], bool]:
    """Runs matching the filter that the action applies to, newest first, at most
    :data:`BULK_LIMIT`; and whether more match."""
    statuses = [s for s in action.acts_on if chosen.status in (None, s)]
    found: list[Row] = []
    for status in statuses:
        narrowed = replace(chosen, status=status)
        found += await narrowed.fetch(conn, principal, limit=BULK_LIMIT + 1, after=None)
    found.sort(key=lambda run: (run["queued_at"], run["id"]), reverse=True)
    return found[:BULK_LIMIT], len(found) > BULK_LIMIT


@router.post("/runs/bulk/confirm")
async def bulk_apply(request: Request, session: Signed, conn: Conn) -> Response:
    """Apply the confirmed action to the runs the confirmation page named."""
    form = await read_form(request)
    action = _bulk_action(form, request.app.state.settings)
    check_form(request, session, form, action.mirror)
    principal = session.principal
    back = safe_next(first(form, "back"))
    ids = [_uuid(value, "run") for value in form.get("run_id", [])[:BULK_LIMIT]]
    done: list[Done] = []
    skipped: list[str] = []
    for run_id in ids:
        assert run_id is not None
        try:
            async with conn.transaction():
                result = await action.perform(conn, principal, run_id)
        except (Conflict, NotFound) as exc:
            skipped.append(exc.message)
            continue
        done.append(Done(str(run_id), 200, str(result["id"])))
    if done:
        await record(conn, request, action.mirror, principal, done)
    return redirect(back, _bulk_message(action, len(done), skipped))


def _bulk_message(action: BulkAction, done: int, skipped: list[str]) -> tuple[str, str]:
    verbs = {"Retry": "Retried", "Cancel": "Canceled"}
    message = f"{verbs[action.verb]} {done} run{'s' if done != 1 else ''}."
    if skipped:
        message += f" {len(skipped)} skipped (their state changed meanwhile: {skipped[0]})."
    return ("success" if done or not skipped else "error", message)
