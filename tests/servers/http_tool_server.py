"""A real local HTTP tool server for the tests (stdlib ``ThreadingHTTPServer`` in a thread).

Routes (any method):

- ``/echo``: 200, ``{"received": <JSON body>, "method", "path", "headers": {...}}``
- ``/status/<code>``: that status with ``{"error": "status <code>"}``
- ``/slow?seconds=S``: waits, then 200 ``{"slept": S}``
- ``/big?bytes=N``: 200 with a JSON body of about N bytes
- ``/text``: 200 ``text/plain``
- ``/list``: 200 with a JSON array (not an object)
- ``/redirect``: 302 to ``/echo``
- ``/flaky?fail=N``: 503 for the first N calls to this path, then 200 ``{"calls": n}``
- ``/trickle?bytes=N&interval=S``: 200 announcing N bytes of JSON, then one byte every S
  seconds (a server that keeps a request alive without ever being idle for long)

Every request is recorded (``server.requests``) so tests can check headers and bodies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ToolServer:
    httpd: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else host
        return f"http://{text}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _tool_server(self) -> ToolServer:
        return self.server.tool_server  # type: ignore[attr-defined]

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        state = self._tool_server()
        with state.lock:
            state.requests.append(
                Recorded(
                    self.command, parts.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            state.counts[parts.path] = state.counts.get(parts.path, 0) + 1
            count = state.counts[parts.path]
        self._route(parts.path, query, body, count)

    def _route(self, path: str, query: dict[str, str], body: Any, count: int) -> None:
        if path == "/echo":
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._json(
                200, {"received": body, "method": self.command, "path": path, "headers": headers}
            )
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._json(code, {"error": f"status {code}"})
        elif path == "/slow":
            seconds = float(query.get("seconds", "5"))
            time.sleep(seconds)
            self._json(200, {"slept": seconds})
        elif path == "/big":
            size = int(query.get("bytes", "2000000"))
            self._json(200, {"data": "x" * size})
        elif path == "/text":
            self._send(200, b"hello, world", "text/plain; charset=utf-8")
        elif path == "/list":
            self._json(200, [1, 2, 3])
        elif path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": "/echo"})
        elif path == "/flaky":
            if count <= int(query.get("fail", "1")):
                self._json(503, {"error": "try later"})
            else:
                self._json(200, {"calls": count})
        elif path == "/trickle":
            self._trickle(int(query.get("bytes", "60")), float(query.get("interval", "1")))
        else:
            self._json(404, {"error": "no such route"})

    def _trickle(self, size: int, interval: float) -> None:
        body = json.dumps({"pad": "x" * max(0, size - 11)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for index in range(len(body)):
            try:
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
            except OSError:  # the client gave up: stop trickling
                return
            time.sleep(interval)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


@contextmanager
def serve_http_tools(host: str = "127.0.0.1") -> Iterator[ToolServer]:
    """Run the server on a free port for the duration of the block."""
    httpd = ThreadingHTTPServer((host, 0), _Handler)
    httpd.daemon_threads = True
    state = ToolServer(httpd)
    httpd.tool_server = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, name="http-tool-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
