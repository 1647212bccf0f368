"""The pipeline executor: runs a task's steps in order with an injected tool caller.

It touches neither the database nor the network: the worker passes a :class:`ToolCaller`
(which reaches builtin, HTTP and MCP tools), a clock and a sleep function. Failures are data:
the executor returns a :class:`PipelineOutcome` whose ``error`` says which step failed, why,
and whether a retry of the run could help.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.catalog import Catalog, ToolSpec, schema_problems
from engine.errors import (
    StepError,
    StepTimeout,
    TemplateError,
    ToolInputInvalid,
    ToolNotFound,
    ToolOutputInvalid,
)
from engine.retry import step_retry_delay
from engine.templates import evaluate, render, strip_wrapper

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class CallContext:
    """What a tool call knows about where it runs."""

    run_id: str
    task_id: str
    step_id: str
    run_attempt: int
    step_attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step_id}"


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
    """The ``run`` part of the template context."""

    id: str
    task_id: str
    attempt: int
    scheduled_for: datetime

    def as_context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "scheduled_for": self.scheduled_for.isoformat(),
        }


@dataclass
class Executor:
    """Runs pipelines against a catalog with an injected tool caller."""

    catalog: Catalog
    call_tool: ToolCaller
    clock: Clock = field(default=lambda: datetime.now(UTC))
    sleep: Sleep = asyncio.sleep
    retry_base_seconds: float = 1.0
    observe_step: Callable[[StepResult], None] | None = None

    async def run(
        self,
        pipeline: list[dict[str, Any]],
        *,
        params: dict[str, Any],
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
        for step in pipeline:
            if cancelled():
                outcome.error = RunError(step.get("id"), "canceled", "run canceled", False)
                break
            result = await self._run_step(step, context, run)
            outcome.steps.append(result)
            if self.observe_step is not None:
                self.observe_step(result)
            if result.status == "succeeded" and step.get("save_as"):
                context["steps"][step["save_as"]] = result.output
            if result.status == "failed" and step.get("on_error", "fail") == "fail":
                assert result.error is not None
                outcome.error = RunError(
                    result.id,
                    result.error["type"],
                    result.error["message"],
                    bool(result.error["retryable"]),
                )
                break
        return outcome

    async def _run_step(
        self, step: dict[str, Any], context: dict[str, Any], run: RunInfo
    ) -> StepResult:
        result = StepResult(id=step["id"], uses=step["uses"], status="skipped")
        try:
            if "if" in step and not _truthy(_condition(step["if"], context, step["id"])):
                return result
        except StepError as exc:
            return _failed(result, exc)
        max_retries = int(step.get("max_retries", 0))
        for attempt in range(1, max_retries + 2):
            result = await self._attempt(step, context, run, attempt)
            retryable = result.error is not None and result.error["retryable"]
            if result.status == "succeeded" or not retryable or attempt > max_retries:
                return result
            await self.sleep(step_retry_delay(attempt, self.retry_base_seconds))
        return result

    async def _attempt(
        self, step: dict[str, Any], context: dict[str, Any], run: RunInfo, attempt: int
    ) -> StepResult:
        started = self.clock()
        clock_start = time.perf_counter()
        result = StepResult(
            id=step["id"],
            uses=step["uses"],
            status="failed",
            started_at=started.isoformat(),
            attempt=attempt,
        )
        try:
            result.output = await self._call(step, context, run, attempt)
            result.status = "succeeded"
        except StepError as exc:
            _failed(result, exc)
        result.duration_ms = int((time.perf_counter() - clock_start) * 1000)
        return result

    async def _call(
        self, step: dict[str, Any], context: dict[str, Any], run: RunInfo, attempt: int
    ) -> dict[str, Any]:
        tool = self.catalog.get(step["uses"])
        if tool is None:
            raise ToolNotFound(f"unknown tool {step['uses']!r}")
        try:
            arguments = render(step.get("with", {}), context)
        except TemplateError as exc:
            raise TemplateError(f"step {step['id']!r}: {exc.message}") from None
        problems = schema_problems(tool.input_schema, arguments, "$.with")
        if problems:
            raise ToolInputInvalid(_describe(problems), details=[p.as_dict() for p in problems])
        call = CallContext(run.id, run.task_id, step["id"], run.attempt, attempt)
        timeout = float(step.get("timeout_seconds") or tool.timeout_seconds)
        try:
            async with asyncio.timeout(timeout):
                output = await self.call_tool(tool, arguments, call)
        except TimeoutError:
            raise StepTimeout(f"step {step['id']!r} timed out after {timeout:g}s") from None
        problems = schema_problems(tool.output_schema, output, "$.output")
        if problems:
            raise ToolOutputInvalid(_describe(problems), details=[p.as_dict() for p in problems])
        return output


def _condition(condition: str, context: dict[str, Any], step_id: str) -> Any:
    expression = strip_wrapper(condition)
    try:
        return evaluate(expression, context)
    except Exception as exc:  # jmespath raises several unrelated types
        raise TemplateError(f"step {step_id!r}: condition {expression!r} failed: {exc}") from None


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, empty strings, arrays and objects are false."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(value) == 0)


def _failed(result: StepResult, exc: StepError) -> StepResult:
    result.status = "failed"
    result.error = {
        "type": exc.type,
        "message": exc.message,
        "retryable": exc.retryable,
        **({"details": exc.details} if exc.details is not None else {}),
    }
    return result


def _describe(problems: list[Any]) -> str:
    return "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
