"""A minimal HTTP server for the scheduler's and workers' ``/metrics`` and ``/health``.

The processes are asyncio programs with their own signal handling; a full ASGI server would
install its own, so this answers the two GET routes over plain asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("ordinaut.metrics")

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


async def serve_metrics(host: str, port: int, health: HealthCheck) -> asyncio.Server:
    """Start serving ``GET /metrics`` and ``GET /health`` on ``host:port`` (port 0: any
    free port; read it from ``server.sockets``). ``/health`` answers 200 or 503 with the
    check's details as JSON."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b""):
                pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            status, content_type, body = await _respond(parts[0] if parts else "", path, health)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, EOFError):
            pass  # a slow, vanished or garbled client: nothing to answer
        except Exception:
            # A failing health check must not kill the server: answer 500 and log it.
            log.exception("metrics endpoint failed")
            with contextlib.suppress(ConnectionError):
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


async def _respond(method: str, path: str, health: HealthCheck) -> tuple[str, str, bytes]:
    if method != "GET":
        return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
    if path == "/health":
        healthy, details = await health()
        status = "200 OK" if healthy else "503 Service Unavailable"
        body = json.dumps({"status": "ok" if healthy else "unhealthy", **details}).encode()
        return status, "application/json", body
    return "404 Not Found", "text/plain", b"not found\n"
