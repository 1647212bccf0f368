"""HTTP tools: the ``http`` transport and the ``http.request`` builtin.

``http`` transport (a tool an admin registered, a trusted endpoint): the rendered arguments
are POSTed as a JSON object to the tool's ``endpoint`` with ``Idempotency-Key: <run id>:<step
id>``. A 2xx JSON object is the result (an empty body is ``{}``); 408, 425, 429 and 5xx are
retryable step errors, other 4xx (and 3xx: redirects are not followed) are not; timeouts and
connection errors are retryable.

``http.request {method, url, headers?, json?, timeout_seconds?, fail_on_status?}`` (a URL an
agent wrote): the SSRF guard (:mod:`.ssrf`) checks the resolved address and the request goes
to that very address (``Host`` and TLS SNI keep the name). The result is ``{status, headers,
json}`` when the body is JSON, else ``{status, headers, text}``, whatever the status, unless
``fail_on_status`` makes 4xx/5xx step errors. Redirects are not followed (the 3xx answer and
its ``location`` header are the result).

Both read at most ``max_response_bytes`` of (decoded) body — more is a non-retryable error —
and both stop at the step's deadline, which bounds the whole request (connecting, sending,
waiting and reading: a server that trickles a byte a second is cut off too, where httpx's
own timeouts, which bound each read, would never fire); ``http.request``'s
``timeout_seconds`` is such a deadline as well. Each endpoint has a circuit breaker.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from engine.catalog import ToolSpec
from engine.errors import StepTimeout, ToolFailed, ToolInputInvalid
from engine.pipeline import CallContext
from workers.tools.breaker import CircuitBreakers
from workers.tools.router import hiding, within_deadline
from workers.tools.ssrf import AddressRefused, AllowList, Resolver, checked_address, system_resolver

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
RETRYABLE_STATUSES = frozenset({408, 425, 429})
_BODY_EXCERPT = 500


@dataclass(frozen=True)
class Response:
    """A response read within the size limit."""

    status: int
    headers: dict[str, str]
    body: bytes
    content_type: str

    def excerpt(self) -> str:
        text = self.body[:_BODY_EXCERPT].decode("utf-8", errors="replace")
        return text + ("..." if len(self.body) > _BODY_EXCERPT else "")


async def fetch(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    max_bytes: int,
    what: str,
) -> Response:
    """Send ``request`` and read its body, refusing more than ``max_bytes``.

    Network failures become retryable :class:`ToolFailed`, timeouts :class:`StepTimeout`.
    """
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise StepTimeout(f"{what}: timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise ToolFailed(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(what, max_bytes)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(what, max_bytes)
    except httpx.TimeoutException as exc:
        raise StepTimeout(
            f"{what}: timed out reading the response ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        raise ToolFailed(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    finally:
        await response.aclose()
    headers: dict[str, str] = {}
    for key, value in response.headers.multi_items():
        key = key.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    content_type = response.headers.get("content-type", "")
    return Response(response.status_code, headers, bytes(body), content_type)


def _too_large(what: str, max_bytes: int) -> ToolFailed:
    return ToolFailed(f"{what}: response body larger than {max_bytes} bytes", retryable=False)


@dataclass
class HttpTransport:
    """The ``http`` transport (see the module docstring)."""

    client: httpx.AsyncClient
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    async def __call__(
        self, tool: ToolSpec, arguments: dict[str, Any], context: CallContext
    ) -> dict[str, Any]:
        if not tool.endpoint:
            raise ToolFailed(f"tool {tool.address!r} has no endpoint", retryable=False)
        what = f"{tool.address} ({tool.endpoint})"
        request = self.client.build_request(
            "POST",
            tool.endpoint,
            json=arguments,
            headers={
                "Idempotency-Key": context.idempotency_key,
                "Accept": "application/json",
                "X-Ordinaut-Run-Id": context.run_id,
                "X-Ordinaut-Task-Id": context.task_id,
            },
            timeout=httpx.Timeout(max(context.remaining(), 0.001)),
        )
        async with (
            hiding(tool.endpoint, "<endpoint>"),
            self.breakers.guard(tool.endpoint),
            within_deadline(context),
        ):
            response = await fetch(
                self.client, request, max_bytes=self.max_response_bytes, what=what
            )
            return _tool_result(response, what)


def _tool_result(response: Response, what: str) -> dict[str, Any]:
    status = response.status
    if 200 <= status < 300:
        if not response.body.strip():
            return {}
        try:
            value = json.loads(response.body)
        except (ValueError, RecursionError):  # not JSON, or nested beyond parsing
            raise ToolFailed(
                f"{what}: answered {status} with a body that is not JSON: {response.excerpt()}",
                retryable=False,
            ) from None
        if not isinstance(value, dict):
            raise ToolFailed(
                f"{what}: answered {status} with JSON that is not an object", retryable=False
            )
        return value
    raise _status_error(response, what)


def _status_error(response: Response, what: str) -> ToolFailed:
    """A non-2xx answer as a step error: 5xx and RETRYABLE_STATUSES are worth a retry."""
    status = response.status
    return ToolFailed(
        f"{what}: HTTP {status}: {response.excerpt()}",
        retryable=status >= 500 or status in RETRYABLE_STATUSES,
        details={"status": status},
    )


@dataclass
class HttpRequestTool:
    """The ``http.request`` builtin handler (see the module docstring)."""

    client: httpx.AsyncClient
    allow: AllowList = field(default_factory=AllowList)
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    resolve: Resolver = system_resolver

    async def __call__(self, arguments: dict[str, Any], context: CallContext) -> dict[str, Any]:
        url = _parse_url(arguments["url"])
        host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
        origin = f"{url.scheme}://{host}:{port}"
        # One circuit per agent and origin: the URL, headers and timeout are the agent's, so
        # one agent's failing calls must not make a site fail fast for every other agent.
        circuit = f"{origin} (agent {context.agent_id})"
        limit = _request_timeout(arguments.get("timeout_seconds"), context)
        async with (
            self.breakers.guard(circuit),
            within_deadline(context),
            _whole_request_within(limit, origin),
        ):
            try:
                address = await checked_address(host, port, self.allow, self.resolve)
            except AddressRefused as exc:
                raise ToolFailed(str(exc), retryable=False) from None
            request = self._request(arguments, url, str(address), context)
            response = await fetch(
                self.client,
                request,
                max_bytes=self.max_response_bytes,
                what=f"http.request {origin}",
            )
            if arguments.get("fail_on_status") and response.status >= 400:
                raise _status_error(response, f"http.request {origin}")
        return _request_result(response)

    def _request(
        self, arguments: dict[str, Any], url: httpx.URL, address: str, context: CallContext
    ) -> httpx.Request:
        # Connect to the address that was checked, never to the name again (DNS rebinding);
        # Host and SNI carry the name so virtual hosts and certificates still work.
        headers = {k: str(v) for k, v in (arguments.get("headers") or {}).items()}
        headers = {k: v for k, v in headers.items() if k.lower() != "host"}
        headers["Host"] = url.netloc.decode("ascii")
        headers.setdefault("Idempotency-Key", context.idempotency_key)
        limit = _request_timeout(arguments.get("timeout_seconds"), context)
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return self.client.build_request(
            arguments["method"].upper(),
            url.copy_with(host=address),
            headers=headers,
            json=arguments.get("json"),
            timeout=httpx.Timeout(max(limit, 0.001)),
            extensions=extensions,
        )


def _request_timeout(requested: Any, context: CallContext) -> float:
    """Seconds the request may take: its ``timeout_seconds`` when given, at most what is left
    of the step; a non-finite or non-positive value is refused (the input check refuses it
    first: this keeps a NaN from ever becoming a deadline)."""
    if requested is None:
        return context.remaining()
    seconds = float(requested)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ToolInputInvalid(
            f"http.request: timeout_seconds must be a finite number > 0, not {requested!r}"
        )
    return min(seconds, context.remaining())


@asynccontextmanager
async def _whole_request_within(seconds: float, origin: str) -> AsyncIterator[None]:
    """A deadline for everything inside, as a retryable :class:`StepTimeout`."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise StepTimeout(
            f"http.request {origin}: no complete answer within {seconds:g}s"
        ) from None


def _parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ToolInputInvalid(f"http.request: invalid url {raw!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ToolInputInvalid(f"http.request: url must be http(s)://host/..., not {raw!r}")
    return url


def _request_result(response: Response) -> dict[str, Any]:
    result: dict[str, Any] = {"status": response.status, "headers": response.headers}
    if "json" in response.content_type.lower() and response.body.strip():
        try:
            result["json"] = json.loads(response.body)
            return result
        except (ValueError, RecursionError):  # not JSON, or nested beyond parsing
            pass  # declared JSON but is not: hand back the text
    result["text"] = response.body.decode("utf-8", errors="replace")
    return result
