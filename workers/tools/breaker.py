"""A circuit breaker per tool endpoint: stop hammering an endpoint that keeps failing.

States (the classic pattern, as in Polly, resilience4j or pybreaker):

- **closed**: calls pass; ``failure_threshold`` failures in a row open the circuit;
- **open**: calls fail fast with :class:`~engine.errors.CircuitOpen` (retryable, so the run
  retries later with its backoff) until ``cooldown_seconds`` have passed;
- **half-open**: one probe call passes (the others still fail fast); its success closes the
  circuit, its failure opens it for another cool-down.

Only *retryable* step errors count as failures (timeouts, connection errors, 5xx): a 4xx
means the endpoint works and the request was wrong. The clock is injected for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from engine.errors import CircuitOpen, StepError

log = logging.getLogger("ordinaut.tools")

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 30.0
# Circuits are kept only while an endpoint is failing (a success forgets it); past this many,
# the oldest are forgotten, so agents naming ever new hosts cannot grow the table forever.
MAX_CIRCUITS = 10_000


@dataclass
class Circuit:
    """The state of one endpoint's circuit."""

    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float, cooldown: float) -> str:
        if self.opened_at is None:
            return "closed"
        if now - self.opened_at < cooldown or self.probing:
            return "open"
        return "half_open"


@dataclass
class CircuitBreakers:
    """One :class:`Circuit` per key (a tool's endpoint or MCP server)."""

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, Circuit] = field(default_factory=dict)

    def state(self, key: str) -> str:
        """``closed``, ``open`` or ``half_open``."""
        circuit = self._circuits.get(key)
        return "closed" if circuit is None else circuit.state(self.clock(), self.cooldown_seconds)

    @asynccontextmanager
    async def guard(self, key: str) -> AsyncIterator[None]:
        """Run the block through ``key``'s circuit: fail fast when it is open, and record
        the block's outcome."""
        circuit = self._circuits.get(key) or self._new_circuit(key)
        state = circuit.state(self.clock(), self.cooldown_seconds)
        if state == "open":
            raise CircuitOpen(
                f"circuit open for {key}: {circuit.failures} failures in a row; "
                f"failing fast for up to {self.cooldown_seconds:g}s"
            )
        probe = state == "half_open"
        if probe:
            circuit.probing = True
        try:
            yield
        except StepError as exc:
            if exc.retryable:
                self._failed(key, circuit)
            elif probe:
                self._succeeded(circuit)  # the endpoint answered: it is up
            raise
        except BaseException:
            # Cancellation (a run timeout or cancel) says nothing about the endpoint.
            circuit.probing = False
            raise
        else:
            self._succeeded(circuit)
            self._circuits.pop(key, None)  # a working endpoint needs no state

    def _new_circuit(self, key: str) -> Circuit:
        while len(self._circuits) >= MAX_CIRCUITS:
            del self._circuits[next(iter(self._circuits))]  # the oldest
        circuit = self._circuits[key] = Circuit()
        return circuit

    def _failed(self, key: str, circuit: Circuit) -> None:
        circuit.failures += 1
        circuit.probing = False
        if circuit.opened_at is not None or circuit.failures >= self.failure_threshold:
            if circuit.opened_at is None:
                log.warning(
                    "circuit opened for %s after %d failures in a row; failing fast for %gs",
                    key,
                    circuit.failures,
                    self.cooldown_seconds,
                )
            circuit.opened_at = self.clock()

    def _succeeded(self, circuit: Circuit) -> None:
        circuit.failures = 0
        circuit.opened_at = None
        circuit.probing = False
