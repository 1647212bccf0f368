"""The pipeline executor: runs a task's steps in order with an injected tool caller.

It touches neither the database nor the network: the worker passes a :class:`ToolCaller`
(which reaches builtin, HTTP and MCP tools), a clock and a sleep function. Failures are data:
the executor returns a :class:`PipelineOutcome` whose ``error`` says which step failed, why,
and whether a retry of the run could help.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.catalog import Catalog, ToolSpec
from engine.clock import Clock, now_utc
from engine.document import Step
from engine.errors import (
    StepError,
    StepTimeout,
    TemplateError,
    ToolInputInvalid,
    ToolNotFound,
    ToolOutputInvalid,
)
from engine.jsondepth import MAX_JSON_DEPTH, nests_deeper_than
from engine.retry import step_retry_delay
from engine.templates import EVALUATION_ERRORS, evaluate, render

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
# The executor's own timeout fires this long after the step's deadline: transports hit the
# deadline first and report it themselves (so their circuit breakers count it).
BACKSTOP_GRACE_SECONDS = 0.05
TRUNCATION_MARKER_BYTES = 160  # room for the marker's own keys within the limit
MAX_ERROR_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class CallContext:
    """What a tool call knows about where it runs.

    ``deadline`` is the event-loop time (``loop.time()``) by which the step must end;
    transports that talk to the network enforce it themselves so that their circuit breaker
    sees the timeout (the executor's own timeout is only a backstop a little later).
    """

    run_id: str
    task_id: str
    step_id: str
    run_attempt: int
    step_attempt: int
    agent_id: str | None = None
    timeout_seconds: float = 30.0
    deadline: float | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step_id}"

    def remaining(self) -> float:
        """Seconds left before the deadline (``timeout_seconds`` when there is none)."""
        if self.deadline is None:
            return self.timeout_seconds
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


class ToolCaller(Protocol):
    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunError:
    """The structured error of a failed run."""

    step_id: str | None
    type: str
    message: str
    retryable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
        }


@dataclass
class StepResult:
    id: str
    uses: str
    status: str  # succeeded | failed | skipped
    started_at: str | None = None
    duration_ms: int | None = None
    attempt: int = 0
    output: Any = None
    error: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uses": self.uses,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "attempt": self.attempt,
            "output": self.output,
            "error": self.error,
        }


@dataclass
class PipelineOutcome:
    steps: list[StepResult] = field(default_factory=list)
    error: RunError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RunInfo:
    """The ``run`` part of the template context, plus the owner for tools that need it."""

    id: str
    task_id: str
    attempt: int
    scheduled_for: datetime
    agent_id: str | None = None  # the task's owner: events.publish publishes as this agent

    def as_context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "scheduled_for": self.scheduled_for.isoformat(),
        }


@dataclass
class Executor:
    """Runs pipelines against a catalog with an injected tool caller.

    ``max_output_bytes`` bounds what a step *records* as its output (larger outputs are
    replaced by a truncation marker, see :func:`truncate_output`); later steps still see the
    whole output through ``steps.<save_as>``.
    """

    catalog: Catalog
    call_tool: ToolCaller
    clock: Clock = field(default=now_utc)
    sleep: Sleep = asyncio.sleep
    retry_base_seconds: float = 1.0
    observe_step: Callable[[StepResult], None] | None = None
    # Told of each failed try that will be tried again, with the seconds before the next.
    observe_retry: Callable[[StepResult, float], None] | None = None
    max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES

    async def run(
        self,
        steps: Sequence[Step],
        *,
        params: Mapping[str, Any],
        run: RunInfo,
        event: Any = None,
        cancelled: Callable[[], bool] = lambda: False,
        outcome: PipelineOutcome | None = None,
    ) -> PipelineOutcome:
        """Run every step in order; stop at the first failure unless it says ``continue``.

        Results are appended to ``outcome`` as each step ends, so a caller that cancels the
        run (a run timeout) still has the steps that finished.
        """
        context: dict[str, Any] = {
            "now": self.clock().isoformat(),
            "params": params,
            "steps": {},
            "event": event,
            "run": run.as_context(),
        }
        outcome = outcome if outcome is not None else PipelineOutcome()
        for step in steps:
            if cancelled():
                outcome.error = RunError(
                    step_id=step.id, type="canceled", message="run canceled", retryable=False
                )
                break
            result, output = await self._run_step(step, context, run)
            outcome.steps.append(result)
            if self.observe_step is not None:
                self.observe_step(result)
            if result.status == "succeeded" and step.save_as:
                context["steps"][step.save_as] = output
            if result.status == "failed" and step.on_error == "fail":
                assert result.error is not None
                outcome.error = RunError(
                    step_id=result.id,
                    type=result.error["type"],
                    message=result.error["message"],
                    retryable=bool(result.error["retryable"]),
                )
                break
        return outcome

    async def _run_step(
        self, step: Step, context: dict[str, Any], run: RunInfo
    ) -> tuple[StepResult, Any]:
        """Evaluate ``if``, then attempt the call up to ``1 + max_retries`` times.

        Returns the recorded result and the full (untruncated) output.
        """
        result = StepResult(id=step.id, uses=step.uses, status="skipped")
        if step.condition is not None:
            try:
                if not _truthy(_condition(step.condition, context, step.id)):
                    return result, None
            except StepError as exc:
                return _failed(result, exc), None
        attempt = 1
        while True:
            result, output = await self._attempt(step, context, run, attempt)
            retryable = result.error is not None and result.error["retryable"]
            if result.status == "succeeded" or not retryable or attempt > step.max_retries:
                return result, output
            delay = step_retry_delay(attempt, self.retry_base_seconds)
            if self.observe_retry is not None:
                self.observe_retry(result, delay)
            await self.sleep(delay)
            attempt += 1

    async def _attempt(
        self, step: Step, context: dict[str, Any], run: RunInfo, attempt: int
    ) -> tuple[StepResult, Any]:
        started = self.clock()
        clock_start = time.perf_counter()
        result = StepResult(
            id=step.id,
            uses=step.uses,
            status="failed",
            started_at=started.isoformat(),
            attempt=attempt,
        )
        output: Any = None
        try:
            output = await self._call(step, context, run, attempt)
            result.output = truncate_output(output, self.max_output_bytes)
            result.status = "succeeded"
        except StepError as exc:
            _failed(result, exc)
        result.duration_ms = int((time.perf_counter() - clock_start) * 1000)
        return result, output

    async def _call(
        self, step: Step, context: dict[str, Any], run: RunInfo, attempt: int
    ) -> dict[str, Any]:
        tool = self.catalog.get(step.uses)
        if tool is None:
            raise ToolNotFound(f"step {step.id!r}: unknown tool {step.uses!r}")
        try:
            arguments = render(step.arguments, context)
        except TemplateError as exc:
            raise TemplateError(f"step {step.id!r}: {exc.message}") from None
        if nests_deeper_than(arguments):
            raise ToolInputInvalid(
                f"step {step.id!r}: arguments nest deeper than {MAX_JSON_DEPTH} levels"
            )
        problems = tool.input_problems(arguments)
        if problems:
            raise ToolInputInvalid(
                f"step {step.id!r}: arguments for {tool.address}: {_describe(problems)}",
                details=[p.as_dict() for p in problems],
            )
        timeout = step.timeout_seconds or tool.timeout_seconds
        deadline = asyncio.get_running_loop().time() + timeout
        call = CallContext(
            run_id=run.id,
            task_id=run.task_id,
            step_id=step.id,
            run_attempt=run.attempt,
            step_attempt=attempt,
            agent_id=run.agent_id,
            timeout_seconds=timeout,
            deadline=deadline,
        )
        try:
            async with asyncio.timeout_at(deadline + BACKSTOP_GRACE_SECONDS):
                output = await self.call_tool(tool, arguments, call)
        except TimeoutError:
            raise StepTimeout(f"step {step.id!r} timed out after {timeout:g}s") from None
        if nests_deeper_than(output):
            raise ToolOutputInvalid(
                f"step {step.id!r}: output of {tool.address} nests deeper than "
                f"{MAX_JSON_DEPTH} levels"
            )
        problems = tool.output_problems(output)
        if problems:
            raise ToolOutputInvalid(
                f"step {step.id!r}: output of {tool.address}: {_describe(problems)}",
                details=[p.as_dict() for p in problems],
            )
        return output


def truncate_output(output: Any, limit: int | None) -> Any:
    """``output``, or a marker in its place when its JSON is larger than ``limit`` bytes.

    The marker keeps the start of the JSON text, so nothing is dropped silently::

        {"_truncated": true, "original_bytes": 1048576, "limit_bytes": 65536,
         "preview": "{\"items\": [{\"id\": 1, ..."}
    """
    if limit is None or _surely_fits(output, limit):
        return output
    text = json.dumps(output, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) * 4 <= limit:  # UTF-8 needs at most 4 bytes a character: surely fits
        return output
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return output
    room = max(0, limit - TRUNCATION_MARKER_BYTES)
    return {
        "_truncated": True,
        "original_bytes": len(encoded),
        "limit_bytes": limit,
        "preview": encoded[:room].decode("utf-8", errors="ignore"),
    }


def _surely_fits(output: Any, limit: int) -> bool:
    """A cheap upper bound for the common small flat object (no JSON encoding needed).

    JSON spends at most 6 bytes on a character (``\\u001f``) and at most 32 on a number.
    """
    if not isinstance(output, dict) or len(output) > 32:
        return False
    bound = 2
    for key, value in output.items():
        if isinstance(value, str):
            bound += 6 * len(value) + 3
        elif _short_scalar(value):
            bound += 32
        else:
            return False
        bound += 6 * len(key) + 4
    return bound <= limit


def _short_scalar(value: Any) -> bool:
    """null, a boolean, a float, or an integer of fewer than 30 digits."""
    if value is None or isinstance(value, bool | float):
        return True
    return isinstance(value, int) and value.bit_length() < 96


def _condition(expression: str, context: dict[str, Any], step_id: str) -> Any:
    try:
        return evaluate(expression, context)
    except EVALUATION_ERRORS as exc:
        raise TemplateError(f"step {step_id!r}: condition {expression!r} failed: {exc}") from None


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, empty strings, arrays and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(value) == 0)


def _failed(result: StepResult, exc: StepError) -> StepResult:
    message = exc.message
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 15] + "... (truncated)"
    result.status = "failed"
    result.error = {
        "type": exc.type,
        "message": message,
        "retryable": exc.retryable,
        **({"details": exc.details} if exc.details is not None else {}),
    }
    return result


def _describe(problems: list[Any]) -> str:
    return "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
