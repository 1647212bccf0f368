"""The :class:`ToolRouter` (the executor's tool caller: it dispatches each call by the
tool's ``transport``) and what every transport shares: the step's deadline and hiding a
runtime tool's endpoint from the errors its agent reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import ToolSpec
from engine.errors import StepError, StepTimeout, ToolNotFound
from engine.pipeline import CallContext

Transport = Callable[[ToolSpec, dict[str, Any], CallContext], Awaitable[dict[str, Any]]]


@dataclass
class ToolRouter:
    """Dispatches a call to the transport registered for the tool's ``transport``."""

    transports: Mapping[str, Transport] = field(default_factory=dict)

    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]:
        transport = self.transports.get(tool.transport)
        if transport is None:
            raise ToolNotFound(f"no transport {tool.transport!r} for tool {tool.address!r}")
        return await transport(tool, arguments, context)


@asynccontextmanager
async def within_deadline(context: CallContext) -> AsyncIterator[None]:
    """Enforce the step's deadline inside a transport, as a retryable :class:`StepTimeout`.

    Used inside a circuit breaker's guard, so the breaker counts the timeout as a failure.
    """
    try:
        async with asyncio.timeout_at(context.deadline):
            yield
    except TimeoutError:
        raise StepTimeout(
            f"step {context.step_id!r} timed out after {context.timeout_seconds:g}s"
        ) from None


@asynccontextmanager
async def hiding(secret: str, label: str) -> AsyncIterator[None]:
    """Replace ``secret`` (a runtime tool's endpoint URL or MCP command line, which may carry
    credentials) by ``label`` in the message of any step error raised inside: step errors are
    stored with the run, where the task's agent reads them. Logs keep the real value."""
    try:
        yield
    except StepError as exc:
        if secret and secret in exc.message:
            exc.message = exc.message.replace(secret, label)
            exc.args = (exc.message,)
        raise
