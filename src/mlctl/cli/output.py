"""Terminal output shared by commands: progress of apply, confirmations, JSON."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import click

from mlctl.engine.events import Event

_VERBING = {
    "check": "checking",
    "train": "training",
    "promote": "promoting",
    "archive": "archiving",
    "deploy": "deploying",
    "create": "creating",
    "update": "updating",
    "delete": "destroying",
}


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


#: Seconds between two "still training... [30s elapsed]" lines when output is not a terminal.
HEARTBEAT_SECONDS = 30.0


class Progress:
    """Prints apply events. On a terminal, long steps show a live elapsed-time line; elsewhere
    (CI logs) a ``ADDR: still training... [30s elapsed]`` line every ``interval`` seconds
    (default 30, or ``$MLCTL_PROGRESS_INTERVAL``), so a long training step is visibly alive."""

    def __init__(self, stream: Any = None, interval: float | None = None) -> None:
        import os

        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if interval is None:
            try:
                interval = float(os.environ.get("MLCTL_PROGRESS_INTERVAL") or HEARTBEAT_SECONDS)
            except ValueError:
                interval = HEARTBEAT_SECONDS
        self.interval = interval if interval > 0 else HEARTBEAT_SECONDS
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._line = ""
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            if self.tty and self._line:
                self.stream.write("\r\033[K")
            self.stream.write(text + "\n")
            self.stream.flush()
            if self.tty and self._line:
                self.stream.write(self._line)
                self.stream.flush()

    def _tick(self, address: str, verb: str, started: float) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._line = f"{address}: still {verb}... [{time.monotonic() - started:.0f}s elapsed]"
                self.stream.write("\r\033[K" + self._line)
                self.stream.flush()

    def _heartbeat(self, address: str, verb: str, started: float) -> None:
        while not self._stop.wait(self.interval):
            self._write(f"{address}: still {verb}... [{time.monotonic() - started:.0f}s elapsed]")

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            with self._lock:
                if self._line:
                    self.stream.write("\r\033[K")
                self._line = ""

    def __call__(self, event: Event) -> None:
        verb = _VERBING.get(event.action, event.action)
        if event.kind == "start":
            self._write(f"{event.address}: {verb}...")
            self._stop_ticker()
            self._stop = threading.Event()
            self._ticker = threading.Thread(
                target=self._tick if self.tty else self._heartbeat,
                args=(event.address, verb, time.monotonic()),
                daemon=True,
            )
            self._ticker.start()
            return
        if event.kind == "info":
            self._write(f"{event.address}: {event.message}")
            return
        self._stop_ticker()
        took = f" [{event.seconds:.1f}s]" if event.seconds is not None else ""
        if event.kind == "done":
            self._write(f"{event.address}: {event.message}{took}")
        elif event.kind == "failed":
            self._write(f"{event.address}: FAILED: {event.message}{took}")
        else:
            self._write(f"{event.address}: skipped: {event.message}")
