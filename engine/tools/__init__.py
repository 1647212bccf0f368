"""Tool transports. :class:`ToolRouter` is the :class:`~engine.pipeline.ToolCaller` that the
worker hands to the executor: it dispatches each call by the tool's ``transport``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import ToolSpec
from engine.errors import ToolNotFound
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
