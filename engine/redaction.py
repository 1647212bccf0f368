"""Passwords out of text that is printed or logged: one helper for every place that shows
a database URL (settings errors, driver errors, the embedded cluster's messages, logs)."""

from __future__ import annotations

import re

MASK = "***"

# ``scheme://user:password@host``: the password runs to the last ``@`` of the URL (an
# unencoded ``@`` in a password is a common mistake, and then the whole of it is masked).
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s'\"]*:)(?P<password>[^\s'\"]*)@"
)
# libpq's key=value form: ``password=secret`` or ``password='a secret'``.
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|\S+)", re.I
)


def mask_passwords(text: str) -> str:
    """``text`` with the password of every URL (``postgresql://app:***@db/x``) and of every
    ``password=...`` connection keyword replaced by ``***``."""
    if "@" not in text and "password" not in text.lower():
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
