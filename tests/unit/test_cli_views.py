"""What the work commands print, from the client's results (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from ops import views
from ordinaut import WebhookSecret

MADE = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def secret(previous_valid_until: datetime | None) -> WebhookSecret:
    return WebhookSecret(
        secret="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
        agent_id=uuid4(),
        created_at=MADE,
        previous_valid_until=previous_valid_until,
        raw={},
    )


@pytest.mark.parametrize(
    ("until", "keep_previous", "said"),
    [
        (None, False, "any previous secret no longer signs"),
        (None, True, "there was no previous secret to keep"),
        (MADE + timedelta(hours=24), True, "the previous secret signs too until 2026-12-06T12:00"),
    ],
)
def test_a_new_webhook_secret_is_alone_on_stdout_and_the_note_says_what_became_of_the_old(
    until: datetime | None, keep_previous: bool, said: str
) -> None:
    shown = views.new_webhook_secret(secret(until), keep_previous=keep_previous)
    assert shown.text == "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    assert shown.ids == (shown.text,)
    assert shown.note is not None and said in shown.note and "whsec_" not in shown.note
