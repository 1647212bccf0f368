"""Per-agent quotas (issue 17): what an agent may hold at once, and the messages that name
a quota when it is reached.

Each quota is an agent's override (``agents.quota_<name>``, set by an admin with
``PATCH /agents/{id}``) or else the default from settings (``ORDINAUT_QUOTA_<NAME>``):

- ``active_tasks``: tasks that are active or paused (completed, canceled and deleted ones do
  not count); checked when a task is created (429);
- ``queued_runs``: runs waiting in the queue (queued, or failed and waiting for a retry);
  checked by run_now and by the retry of a dead run (429). Scheduled and event runs are
  never refused: they are bounded by the task's schedule and by ``event_fanout``;
- ``concurrent_runs``: runs running at once; the lease gives an agent at its quota nothing
  (soft: leases of several workers at the same instant may overshoot it a little);
- ``event_fanout``: tasks one event may start; an event matching more is refused whole
  (422: retrying does not help) and queues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from engine.settings import Settings

QUOTA_NAMES = ("active_tasks", "queued_runs", "concurrent_runs", "event_fanout")
# An admin may set a quota up to this (a 32-bit column; anything above is "no limit").
MAX_QUOTA = 1_000_000_000

_WHAT = {
    "active_tasks": "active or paused tasks",
    "queued_runs": "runs waiting in the queue",
    "concurrent_runs": "runs running at once",
    "event_fanout": "tasks started by one event",
}


@dataclass(frozen=True)
class Quotas:
    active_tasks: int
    queued_runs: int
    concurrent_runs: int
    event_fanout: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def default_quotas(settings: Settings) -> Quotas:
    """The quotas of an agent without overrides."""
    return Quotas(
        active_tasks=settings.quota_active_tasks,
        queued_runs=settings.quota_queued_runs,
        concurrent_runs=settings.quota_concurrent_runs,
        event_fanout=settings.quota_event_fanout,
    )


def overrides_of(row: Mapping[str, Any]) -> dict[str, int | None]:
    """An agent row's own quotas (None: the default applies)."""
    return {name: row.get(f"quota_{name}") for name in QUOTA_NAMES}


def effective_quotas(row: Mapping[str, Any], defaults: Quotas) -> Quotas:
    """The quotas that apply to the agent of ``row``."""
    mine = overrides_of(row)
    return Quotas(**{name: mine[name] or getattr(defaults, name) for name in QUOTA_NAMES})


def quota_message(name: str, limit: int, *, agent_id: object, found: int | None = None) -> str:
    """Why a request was refused: the quota, its value, and how to raise it."""
    seen = f" (found {found}{'+' if name == 'event_fanout' else ''})" if found is not None else ""
    return (
        f"quota {name} of agent {agent_id} reached: at most {limit} {_WHAT[name]}{seen}. "
        f"An admin raises it with PATCH /agents/{agent_id} "
        f'{{"quotas": {{"{name}": N}}}} (default: ORDINAUT_QUOTA_{name.upper()})'
    )
