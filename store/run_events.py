"""Run state changes as notifications on ``ordinaut_runs``: what the API's waiters and
streams listen to.

Every statement that changes a run's state notifies from inside itself: it calls the SQL
function ``notify_run_changes(string_agg(run_change(kind, id, attempt), ' '))`` (migration
0009) once, with every run it changed, in the statement that already runs (the lease, the
completion, the reaper, the cancel paths ...). A change thus costs no extra round trip, and
the notification goes out when its transaction commits. A notification carries a batch of
tokens separated by spaces, one per run:

    <kind><run id>:<attempt>      e.g.  s0b6f0c8e-...-9a1f:1

``kind`` is one letter: ``q`` queued, ``r`` running, ``f`` failed (a retry waits), ``s``
succeeded, ``d`` dead, ``c`` canceled, ``x`` removed (an occurrence that never started and is
gone without a trace), ``p`` progress (the finished steps of a running run were written). A
batch longer than PostgreSQL's 8000-byte payload limit is cut, at token boundaries, into
notifications of :data:`TOKENS_PER_NOTIFICATION` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNS_CHANNEL = "ordinaut_runs"
# As notify_run_changes cuts long batches. A token is at most 1 + 36 + 1 + 3 bytes (attempts
# stay below 1000: max_retries <= 100), plus the separating space: 150 take at most 6 300.
TOKENS_PER_NOTIFICATION = 150

KINDS = {
    "q": "queued",
    "r": "running",
    "f": "failed",
    "s": "succeeded",
    "d": "dead",
    "c": "canceled",
    "x": "removed",
    "p": "progress",
}
FINAL_KINDS = frozenset("sdcx")


@dataclass(frozen=True)
class RunChange:
    """One token of a notification: run ``run_id`` (attempt ``attempt``) became ``kind``."""

    kind: str
    run_id: str
    attempt: int

    @property
    def status(self) -> str:
        return KINDS[self.kind]

    @property
    def final(self) -> bool:
        """The run ended (or vanished): waiters can stop waiting."""
        return self.kind in FINAL_KINDS


def parse_changes(payload: str) -> list[RunChange]:
    """The tokens of one notification (malformed tokens are skipped)."""
    changes = []
    for token in payload.split():
        kind, rest = token[:1], token[1:]
        run_id, _, attempt = rest.partition(":")
        if kind in KINDS and len(run_id) == 36 and attempt.isdigit():
            changes.append(RunChange(kind, run_id, int(attempt)))
    return changes
