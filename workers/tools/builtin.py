"""Builtin tools (``transport: builtin``), dispatched by address.

``events.publish`` needs the database; the worker injects it as a handler, keeping this
module pure.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import ToolSpec
from engine.errors import ToolFailed, ToolInputInvalid, ToolNotFound
from engine.pipeline import CallContext

Handler = Callable[[dict[str, Any], CallContext], Awaitable[dict[str, Any]]]

log = logging.getLogger("ordinaut.tools")


async def debug_echo(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Return the arguments unchanged."""
    return arguments


async def debug_log(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Log the message at the given level and return ``{message, level}``."""
    level = arguments.get("level", "info")
    log.log(
        logging.getLevelName(level.upper()),
        arguments["message"],
        extra={"run_id": context.run_id, "task_id": context.task_id, "step_id": context.step_id},
    )
    return {"message": arguments["message"], "level": level}


async def debug_sleep(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Sleep ``seconds`` and return ``{slept}``."""
    seconds = float(arguments["seconds"])
    if not (math.isfinite(seconds) and seconds >= 0):
        # asyncio.sleep(nan) corrupts the event loop's timer heap: never let one through.
        raise ToolInputInvalid(f"debug.sleep: seconds must be a finite number >= 0, not {seconds}")
    await asyncio.sleep(seconds)
    return {"slept": arguments["seconds"]}


async def debug_fail(arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """Fail (retryably) until this is the run's attempt number ``times + 1``.

    Attempts are counted across run retries and step retries, so ``times: 2`` succeeds on the
    third try whichever kind of retry gets there.
    """
    attempt = context.run_attempt + context.step_attempt - 1
    if attempt <= int(arguments["times"]):
        message = arguments.get("message") or f"debug.fail: failing attempt {attempt}"
        raise ToolFailed(message, retryable=True)
    return {"attempt": attempt}


BUILTIN_HANDLERS: dict[str, Handler] = {
    "debug.echo": debug_echo,
    "debug.log": debug_log,
    "debug.sleep": debug_sleep,
    "debug.fail": debug_fail,
}


@dataclass
class BuiltinTransport:
    """Calls builtin tools; ``extra`` adds or overrides handlers (e.g. ``events.publish``)."""

    extra: dict[str, Handler] = field(default_factory=dict)

    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]:
        handler = self.extra.get(tool.address) or BUILTIN_HANDLERS.get(tool.address)
        if handler is None:
            raise ToolNotFound(f"no builtin implementation for {tool.address!r}")
        return await handler(arguments, context)
