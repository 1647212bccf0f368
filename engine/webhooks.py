"""Completion webhooks as data: the signing secret, the ``run.finished`` body, the Standard
Webhooks signature, and when to try a failed delivery again.

`Standard Webhooks <https://www.standardwebhooks.com>`_: each request carries
``webhook-id`` (the delivery's id, the same on every try, so receivers can drop duplicates),
``webhook-timestamp`` (seconds since the epoch, of this try) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, keyed with the bytes that
``whsec_<base64>`` encodes; during a rotation that keeps the previous key, one such
signature per key, separated by a space).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.retry import webhook_retry_delay

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
EVENT_TYPE = "run.finished"
# Deliveries are retried with backoff for this long after the run ended, then given up.
GIVE_UP_AFTER = timedelta(hours=24)
# How long the previous key keeps signing after a rotation that keeps it: a day gives every
# receiver time to deploy the new key, as Svix and Stripe do.
PREVIOUS_KEY_OVERLAP = timedelta(hours=24)
RETRY_CAP_SECONDS = 3600.0


def new_secret() -> tuple[bytes, str]:
    """A new signing key and its ``whsec_...`` form (the form shown to the agent, once)."""
    key = secrets.token_bytes(SECRET_BYTES)
    return key, SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def body(run: Mapping[str, Any]) -> bytes:
    """The request body: ``{"type": "run.finished", "data": <run>}`` as compact UTF-8 JSON."""
    document = {"type": EVENT_TYPE, "data": run}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(key: bytes, message_id: str, timestamp: int, payload: bytes) -> str:
    """The ``webhook-signature`` header value for one try."""
    signed = f"{message_id}.{timestamp}.".encode() + payload
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(
    keys: Sequence[bytes], message_id: str, timestamp: int, payload: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one try (plus the content type). Several keys (a
    rotation that keeps the previous key for a while) give space-separated signatures, one
    per key, current first: a receiver that knows either key accepts the request."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(key, message_id, timestamp, payload) for key in keys
        ),
    }


def next_try_at(
    *,
    attempts: int,
    created_at: datetime,
    now: datetime,
    base_seconds: float,
    rand: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after ``attempts`` failed tries, or None: give up (the next try
    would come more than :data:`GIVE_UP_AFTER` after the delivery was queued)."""
    delay = webhook_retry_delay(attempts, base=base_seconds, cap=RETRY_CAP_SECONDS, rand=rand)
    at = now + timedelta(seconds=delay)
    return at if at - created_at <= GIVE_UP_AFTER else None
