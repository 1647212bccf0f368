"""An idempotent HTTP receiver: the side effect the chaos runs perform.

Registered as the ``http`` tool ``chaos.effect``; workers POST to it with
``Idempotency-Key: <run id>:<step id>``. The first delivery of a key applies the effect;
later ones (a run executed again after a crash: execution is at least once) are recorded as
redeliveries and change nothing. At the end every succeeded run must have exactly one effect
and every effect must belong to a succeeded run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    httpd: ThreadingHTTPServer
    effects: dict[str, float] = field(default_factory=dict)  # key → when it was applied
    deliveries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/effect"

    def deliver(self, key: str) -> bool:
        """Record a delivery; True when it applied the effect (the first for its key)."""
        with self.lock:
            self.deliveries[key] += 1
            if key in self.effects:
                return False
            self.effects[key] = time.time()
            return True

    @property
    def redeliveries(self) -> int:
        with self.lock:
            return sum(count - 1 for count in self.deliveries.values())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._answer(400, {"error": "Idempotency-Key is required"})
            return
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        self._answer(200, {"applied": receiver.deliver(key)})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A worker killed mid-request resets its connection: expected here, not news.
        pass


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A running receiver on a free local port."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    receiver = Receiver(httpd)
    httpd.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
