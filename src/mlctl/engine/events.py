"""Progress events the executor emits; the CLI turns them into terminal output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Event:
    """``start`` when an action begins, then exactly one of ``done``/``failed``/``skipped``."""

    kind: Literal["start", "done", "failed", "skipped", "info"]
    address: str
    action: str
    message: str = ""
    seconds: float | None = None


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


def quiet(event: Event) -> None:
    """A listener that drops every event."""
