"""Task lifecycle: which state changes are legal from which status.

::

    action   active   paused   canceled   completed
    pause    apply    no-op    409        409
    resume   no-op    apply    409        409
    cancel   apply    apply    no-op      409
    snooze   apply    409      409        409
    update   apply    apply    409        409

``DELETE`` (cancel and hide) is allowed from every status. A no-op answers like a success
(pausing twice is 200 both times): state changes are idempotent.
"""

from __future__ import annotations

from engine.errors import Conflict

TRANSITIONS: dict[str, dict[str, bool]] = {
    # action → {status it may start from → whether anything changes}
    "pause": {"active": True, "paused": False},
    "resume": {"paused": True, "active": False},
    "cancel": {"active": True, "paused": True, "canceled": False},
    "snooze": {"active": True},
    "update": {"active": True, "paused": True},
}


def decide(action: str, status: str) -> bool:
    """True when ``action`` changes a task in ``status``, False when it is already done;
    raises :class:`Conflict` when the transition is not allowed."""
    allowed = TRANSITIONS[action]
    if status not in allowed:
        raise Conflict(f"cannot {action} a task that is {status}")
    return allowed[status]
