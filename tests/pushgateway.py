"""A Pushgateway stand-in: a real HTTP server on 127.0.0.1 that records what it was sent.

The ``gateway`` fixture (a test module takes it by name: ``gateway = pushgateway.gateway``)
yields the server's URL; :attr:`Gateway.received` holds each request's method, path and body
in order, emptied when the fixture starts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest


class Gateway(BaseHTTPRequestHandler):
    """A Pushgateway stand-in: records each request's method, path and body."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.command, self.path, body))
        self.send_response(202)
        self.end_headers()

    do_PUT = do_POST = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    """A running gateway's URL (``http://127.0.0.1:<port>``); stopped after the test."""
    Gateway.received = []
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
