"""A local HTTP endpoint for apprise's `json://` notifications, started by a test.

Responsible for listening on an ephemeral 127.0.0.1 port in a background thread, keeping
every JSON body POSTed to it (apprise sends {"version", "title", "message", "type", ...}),
and stopping when the test is done. Must not sleep: tests wait for notifications with
`waiting.wait_until`.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with outer._lock:
                    outer.received.append({**json.loads(body), "path": self.path})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    def titles(self) -> list[str]:
        with self._lock:
            return [r["title"] for r in self.received]

    def matching(self, needle: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if needle in r["title"]]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A json:// URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"json://127.0.0.1:{port}/notify"
