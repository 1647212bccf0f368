"""JSON text that PostgreSQL's ``jsonb`` always accepts.

Python's ``json`` writes three things ``jsonb`` refuses: the character U+0000 (``\\u0000``),
lone UTF-16 surrogates (``\\udc80``: Python strings may hold them, e.g. decoded from a tool's
JSON response) and the non-finite floats ``NaN``/``Infinity``. Step outputs come from tools
and agents' templates, so any of them can appear; one refused value must not stop a worker
from recording the batch it belongs to. Such values are stored replaced: U+0000 and lone
surrogates by U+FFFD (the Unicode replacement character), non-finite floats by ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

REPLACEMENT = "\ufffd"


def storable_json(value: Any) -> str:
    """``value`` as compact JSON text that ``jsonb`` accepts (see the module docstring)."""
    try:
        text = json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere
        return _dumps_clean(value)
    # ensure_ascii writes every U+0000 as \u0000 and every surrogate as \udXXX, so text
    # without either needs no second look (the common case: one substring scan).
    if "\\u0000" in text or "\\ud" in text:
        return _dumps_clean(value)
    return text


def _dumps_clean(value: Any) -> str:
    return json.dumps(_clean(value), separators=(",", ":"), default=str, allow_nan=False)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {
            _clean_text(key) if isinstance(key, str) else key: _clean(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _clean_text(text: str) -> str:
    # Through UTF-16 with surrogatepass, valid pairs recombine and lone surrogates become
    # U+FFFD on the way back.
    if any("\ud800" <= char <= "\udfff" for char in text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", REPLACEMENT)
