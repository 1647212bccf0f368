"""Agent tokens: random, shown once, stored only as a SHA-256 digest.

A token carries 256 random bits, so a fast hash is enough: there is nothing to brute-force
(unlike a password), and lookups stay one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection

TOKEN_PREFIX = "ord_"
TOKEN_BYTES = 32
TOKEN_LENGTH = len(TOKEN_PREFIX) + 43  # token_urlsafe(32): 43 base64url characters


def generate_token() -> str:
    """A new random token, e.g. ``ord_3q0...``."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    """The digest stored in the database."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def display_prefix(token: str) -> str:
    """Enough to tell tokens apart in listings, not enough to use one: the start of a
    generated token (6 of its 43 random characters), or for a token someone chose (the
    bootstrap admin token, perhaps short) a fingerprint of its digest, never its text."""
    if token.startswith(TOKEN_PREFIX) and len(token) >= TOKEN_LENGTH:
        return token[: len(TOKEN_PREFIX) + 6]
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:8]


# Every scope a token can carry (the ``agents_scopes_known`` constraint lists the same).
# ``admin`` implies all the others.
SCOPES = (
    "tasks:read",
    "tasks:write",
    "runs:read",
    "runs:write",
    "events:publish",
    "tools:read",
    "admin",
)


def holds_scope(scopes: Collection[str], scope: str) -> bool:
    """Whether an agent with ``scopes`` holds ``scope`` (``admin`` implies every scope)."""
    return "admin" in scopes or scope in scopes
