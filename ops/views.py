"""How the work commands show the client's results: tables and details for people, the
API's JSON for ``-o json``, ids for ``-q`` (:class:`ops.work_commands.Shown`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ops.tables import EMPTY, ago, details, duration, table, when
from ordinaut import Agent, AgentWithToken, Preview, Run, Task, WebhookSecret, Worker
from ordinaut.models import QUOTA_NAMES

FAILED_RUN = frozenset({"dead", "canceled"})


@dataclass(frozen=True)
class TaskLabel:
    """What a run listing shows of its task: its title, and the zone its times are in."""

    title: str
    zone: str


@dataclass(frozen=True, kw_only=True)
class Shown:
    """What a command shows: ``text`` for people, ``data`` for ``-o json`` (the API's JSON),
    ``ids`` for ``-q``, ``note`` (stderr, for people only) and the exit status."""

    text: str
    data: Any
    ids: tuple[str, ...] = ()
    note: str | None = None
    status: int = 0


def tasks(items: Sequence[Task]) -> Shown:
    rows = [
        (
            str(t.id),
            t.title,
            t.status,
            f"{t.schedule_kind} {t.schedule_expr}",
            t.timezone,
            when(t.next_run_at, t.timezone),
        )
        for t in items
    ]
    headers = ("id", "title", "status", "schedule", "zone", "next run")
    return Shown(
        text=table(headers, rows),
        data=[dict(t.raw) for t in items],
        ids=tuple(str(t.id) for t in items),
    )


def task_changed(task: Task, verb: str) -> Shown:
    text = (
        f"task {task.id} {verb}: {task.title!r} is {task.status}, "
        f"next run {when(task.next_run_at, task.timezone)}"
    )
    return Shown(text=text, data=dict(task.raw), ids=(str(task.id),))


def task_detail(task: Task, recent: Sequence[Run]) -> Shown:
    zone = task.timezone
    pairs = [
        ("id", str(task.id)),
        ("title", task.title),
        ("status", task.status),
        ("schedule", f"{task.schedule_kind} {task.schedule_expr}"),
        ("zone", zone),
        ("next run", when(task.next_run_at, zone)),
        ("priority", str(task.priority)),
        ("retries", f"{task.max_retries} ({task.backoff_strategy})"),
        ("timeout", duration(task.timeout_seconds * 1000)),
        ("catch up", task.catch_up),
        ("concurrency key", task.concurrency_key or EMPTY),
        ("owner", str(task.created_by)),
        ("created", when(task.created_at, zone)),
        ("updated", when(task.updated_at, zone)),
    ]
    steps = [
        (
            str(s.get("id")),
            str(s.get("uses")),
            str(s.get("save_as") or EMPTY),
            str(s.get("if") or EMPTY),
        )
        for s in task.payload.get("pipeline") or ()
    ]
    text = "\n\n".join(
        [
            details(pairs),
            "pipeline:\n" + table(("step", "uses", "save as", "if"), steps),
            "recent runs:\n" + _run_table(recent, {task.id: TaskLabel(task.title, zone)}),
        ]
    )
    return Shown(text=text, data=dict(task.raw), ids=(str(task.id),))


def runs(items: Sequence[Run], labels: Mapping[Any, TaskLabel]) -> Shown:
    return Shown(
        text=_run_table(items, labels),
        data=[dict(r.raw) for r in items],
        ids=tuple(str(r.id) for r in items),
    )


def _run_table(items: Sequence[Run], labels: Mapping[Any, TaskLabel]) -> str:
    rows = []
    for run in items:
        label = labels.get(run.task_id, TaskLabel(str(run.task_id), "UTC"))
        rows.append(
            (
                str(run.id),
                label.title,
                run.status,
                run.trigger,
                when(run.scheduled_for, label.zone),
                str(run.attempt),
                duration(run.duration_ms),
                _error_text(run),
            )
        )
    headers = ("id", "task", "status", "trigger", "scheduled", "attempt", "took", "error")
    return table(headers, rows)


def _error_text(run: Run) -> str:
    if run.error is None:
        return EMPTY
    where = f"{run.error.step_id}: " if run.error.step_id else ""
    return f"{where}{run.error.type}: {run.error.message}"


def run_detail(run: Run, labels: Mapping[Any, TaskLabel], *, waited: bool = False) -> Shown:
    label = labels.get(run.task_id, TaskLabel(str(run.task_id), "UTC"))
    zone = label.zone
    pairs = [
        ("id", str(run.id)),
        ("task", f"{run.task_id} ({label.title})"),
        ("status", run.status + (" (cancel requested)" if run.cancel_requested else "")),
        ("trigger", run.trigger + (f" of {run.retry_of}" if run.retry_of else "")),
        ("scheduled", when(run.scheduled_for, zone)),
        ("started", when(run.started_at, zone)),
        ("finished", when(run.finished_at, zone)),
        ("took", duration(run.duration_ms)),
        ("attempt", str(run.attempt)),
        ("worker", run.worker_id or EMPTY),
    ]
    if run.next_attempt_at is not None and not run.is_final:
        pairs.append(("next attempt", when(run.next_attempt_at, zone)))
    if run.error is not None:
        pairs.append(("error", _error_text(run)))
    steps = [
        (
            s.id,
            s.uses,
            s.status,
            str(s.attempt),
            duration(s.duration_ms),
            _compact(s.error.get("message") if s.error else s.output),
        )
        for s in run.steps
    ]
    text = details(pairs)
    if steps:
        headers = ("step", "uses", "status", "attempt", "took", "output or error")
        text += "\n\nsteps:\n" + table(headers, steps)
    status = 1 if waited and run.status in FAILED_RUN else 0
    return Shown(text=text, data=dict(run.raw), ids=(str(run.id),), status=status)


def _compact(value: Any) -> str:
    if value is None:
        return EMPTY
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def agents(items: Sequence[Agent]) -> Shown:
    rows = [
        (
            str(a.id),
            a.name,
            " ".join(a.scopes) or EMPTY,
            when(a.created_at),
            when(a.deleted_at),
        )
        for a in items
    ]
    return Shown(
        text=table(("id", "name", "scopes", "created", "deleted"), rows),
        data=[dict(a.raw) for a in items],
        ids=tuple(str(a.id) for a in items),
    )


def quotas(agent: Agent) -> Shown:
    """Each quota that applies to the agent, and whether it is the agent's own or the
    server's default."""
    if agent.quotas is None or agent.quota_overrides is None:
        raise ValueError("the server did not say which quotas apply (is it older?)")
    applied, own = agent.quotas, agent.quota_overrides
    rows = [
        (
            name.replace("_", " "),
            str(getattr(applied, name)),
            "own" if getattr(own, name) is not None else "default",
        )
        for name in QUOTA_NAMES
    ]
    text = f"agent {agent.name} ({agent.id})\n\n" + table(("quota", "limit", "set by"), rows)
    return Shown(text=text, data=dict(agent.raw), ids=(str(agent.id),))


def new_token(agent: AgentWithToken, verb: str) -> Shown:
    """The token alone on stdout (``TOKEN=$(ordinaut agents create ...)``); the rest is a
    note on stderr."""
    note = (
        f"agent {agent.name} ({agent.id}) {verb}; scopes: {' '.join(agent.scopes) or '-'}\n"
        "its token (shown once, store it now):"
    )
    return Shown(text=agent.token, data=dict(agent.raw), ids=(agent.token,), note=note)


def webhook(agent: Agent) -> Shown:
    where = f"go to {agent.webhook_url}" if agent.webhook_url else "are off"
    text = f"agent {agent.name} ({agent.id}): its completion webhooks {where}"
    return Shown(text=text, data=dict(agent.raw), ids=(str(agent.id),))


def new_webhook_secret(made: WebhookSecret, *, keep_previous: bool) -> Shown:
    """The secret alone on stdout, like a new token; what happens to the old one on stderr."""
    if made.previous_valid_until is None and keep_previous:
        previous = "there was no previous secret to keep"
    elif made.previous_valid_until is None:
        previous = "any previous secret no longer signs"
    else:
        until = made.previous_valid_until.isoformat(timespec="seconds")
        previous = f"the previous secret signs too until {until}"
    note = (
        f"agent {made.agent_id}: a new webhook signing secret; {previous}\n"
        "the secret (shown once, store it now):"
    )
    return Shown(text=made.secret, data=dict(made.raw), ids=(made.secret,), note=note)


def workers(items: Sequence[Worker], now: datetime) -> Shown:
    rows = [
        (
            w.id,
            w.host,
            str(w.pid),
            "yes" if w.live else "no",
            f"{w.inflight}/{w.concurrency}",
            str(w.processed),
            ago(w.started_at, now),
            ago(w.last_seen_at, now),
        )
        for w in items
    ]
    headers = ("id", "host", "pid", "live", "busy", "processed", "started", "last seen")
    live = sum(1 for w in items if w.live)
    text = table(headers, rows) + f"\n\n{live} live of {len(items)} registered"
    return Shown(text=text, data=[dict(w.raw) for w in items], ids=tuple(w.id for w in items))


def occurrences(preview: Preview, kind: str, expression: str, zone: str | None) -> Shown:
    lines = [
        (moment.strftime("%a"), when(moment, zone) if zone else moment.isoformat())
        for moment in preview.occurrences
    ]
    title = f"{kind} {expression!r}" + (f" in {zone}" if zone else "")
    text = (
        title
        + ":\n"
        + ("\n".join(f"  {day}  {moment}" for day, moment in lines) if lines else "  (never fires)")
    )
    return Shown(
        text=text,
        data=dict(preview.raw),
        ids=tuple(moment.isoformat() for moment in preview.occurrences),
    )
