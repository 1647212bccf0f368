"""The error answers a route declares for the OpenAPI document, in one place.

:mod:`api.openapi` gives every route the answers any route can give (401, 403, 404, 413,
422, 429, 503, in the common error body, with a generic description); a route declares only
what its own answers mean, from here: ``responses={**TASK_NOT_FOUND, **STATE_CONFLICT}``.
"""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


def error(status: int, description: str) -> Responses:
    """``status`` answered with the common error body, meaning ``description``."""
    return {status: {"model": ErrorResponse, "description": description}}


INVALID = error(422, "Invalid input; every problem listed with its JSON path.")
IDEMPOTENCY_CONFLICT = error(409, "`Idempotency-Key` reused with another request, or in use.")
STATE_CONFLICT = error(409, "Not allowed in the object's current state.")
TASK_NOT_FOUND = error(404, "No such task (or not yours).")
RUN_NOT_FOUND = error(404, "No such run (or not yours).")
AGENT_NOT_FOUND = error(404, "No such (live) agent.")
TOOL_NOT_FOUND = error(404, "No tool with this address.")
QUOTA_EXCEEDED = error(
    429,
    "Over the agent's rate limit (`Retry-After` says how many seconds to wait), or over one of "
    "the owner's quotas: `code` `quota_exceeded`, `details[0].path` names it (e.g. "
    "`quotas.queued_runs`), no `Retry-After` (it passes once work finishes or an admin raises "
    "the quota).",
)
FANOUT_EXCEEDED = error(
    422,
    "Invalid input; or the event matches more tasks than the publisher's `event_fanout` quota "
    "(`code` `quota_exceeded`, path `quotas.event_fanout`): nothing was queued.",
)
