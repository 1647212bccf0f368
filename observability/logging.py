"""Logging: JSON lines for services (``ORDINAUT_LOG_FORMAT=json``), text for humans.

Context such as ``task_id``, ``run_id``, ``step_id`` and ``worker_id`` becomes top-level
JSON keys. It comes from ``extra=`` on one call, or from :func:`bind_log_context` /
:func:`log_context` for everything logged afterwards in the current context (asyncio tasks
inherit the context they were created in, so a worker binds ``worker_id`` once and a run's
task can bind ``run_id`` and ``task_id`` for every line it logs); ``extra=`` wins on a
clash. The context is read when the record is formatted, which happens synchronously in the
logging call (no queue handler). Values under keys that look like secrets are redacted
wherever they appear.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from engine.redaction import mask_passwords

CONTEXT_KEYS = ("task_id", "run_id", "step_id", "worker_id", "request_id", "agent_id")
_SECRET_KEY = re.compile(r"pass(word)?|token|secret|api[_-]?key|authorization|cookie", re.I)
# Secrets recognisable by their value wherever they appear: agent tokens (``ord_...``) and
# the credentials of an ``Authorization``-style ``Bearer``/``Basic`` value.
_SECRET_VALUE = re.compile(r"\bord_[A-Za-z0-9_-]{8,}|(?<=Bearer )\S+|(?<=Basic )\S+", re.I)
# Record attributes that are not context: the LogRecord's own, and uvicorn's ANSI-coloured
# copy of its message.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("ordinaut_log_context", default=None)
# Which process writes (``api``, ``scheduler``, ``worker``, ``up`` ...): on every line.
_PROCESS: str | None = None


def bind_log_context(**fields: Any) -> Token[Mapping[str, Any] | None]:
    """Add ``fields`` to every record logged from now on in the current context."""
    return _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})


def unbind_log_context(token: Token[Mapping[str, Any] | None]) -> None:
    """Undo the :func:`bind_log_context` that returned ``token``."""
    _CONTEXT.reset(token)


def bound_log_context() -> Mapping[str, Any]:
    """The fields bound in the current context (``request_id`` inside an API request ...)."""
    return _CONTEXT.get() or {}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The bound context, then the record's own extras (which win)."""
    fields = dict(_CONTEXT.get() or {})
    fields.update(
        (key, value)
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    )
    return fields


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys' values replaced by ``"[redacted]"``,
    and agent tokens or bearer credentials inside strings masked too."""
    if isinstance(value, dict):
        return {
            key: "[redacted]" if _SECRET_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def scrub(text: str) -> str:
    """``text`` with agent tokens and bearer credentials replaced by ``[redacted]``, and
    URL and connection-string passwords by ``***``."""
    return mask_passwords(_SECRET_VALUE.sub("[redacted]", text)) if text else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if _PROCESS:
            entry["process"] = _PROCESS
        for key, value in _fields(record).items():
            entry[key] = "[redacted]" if _SECRET_KEY.search(key) else redact(value)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        context = " ".join(f"{key}={fields[key]}" for key in CONTEXT_KEYS if key in fields)
        process = f" {_PROCESS}" if _PROCESS else ""
        line = (
            f"{datetime.fromtimestamp(record.created, UTC):%H:%M:%S.%f}"[:-3]
            + f" {record.levelname:<7}{process} {record.name}: {scrub(record.getMessage())}"
        )
        if context:
            line += f" [{context}]"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def configure_logging(level: str, fmt: str, *, process: str | None = None) -> None:
    """Send every log record to stderr in the chosen format; ``process`` names the process
    on every line."""
    global _PROCESS
    _PROCESS = process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs carry query strings; our own middleware logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "mcp", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
