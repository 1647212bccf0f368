"""A real webhook receiver for the tests, run as its own process so that a test can kill it
(``kill -9``) and start it again on the same port:

    python -m tests.servers.webhook_receiver PORT LOG

Every POST is appended to ``LOG`` as one JSON line ``{"path", "headers", "body"}`` (the body
as text, exactly as received) *before* it is answered. The query string says how to answer:
``?status=N`` (default 204) after ``?delay=S`` seconds (default 0).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_lock = threading.Lock()


def handler_for(log: Path) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            url = urlsplit(self.path)
            record = {"path": url.path, "headers": dict(self.headers.items()), "body": body}
            with _lock, log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
            query = parse_qs(url.query)
            time.sleep(float(query.get("delay", ["0"])[0]))
            self.send_response(int(query.get("status", ["204"])[0]))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Receiver


def main() -> None:
    port, log = int(sys.argv[1]), Path(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(log))
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
