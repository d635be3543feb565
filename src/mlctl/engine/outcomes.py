"""How each action of an apply or a materialization ended: plain data the executor and the
operations return, and that renderers read. Importing this module imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mlctl.errors import MlctlError

__all__ = ["ActionFailed", "ActionOutcome", "OutcomeAddresses", "Skipped", "Status"]


class Status(StrEnum):
    """How one action ended."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ActionOutcome:
    """One action of a plan, done: ``message`` is the line progress showed for it."""

    address: str
    action: str
    status: Status
    message: str
    seconds: float | None = None


class ActionFailed(MlctlError):
    """An action ran and failed after recording what it did (a data check, a gate).

    ``str(self)`` is the reason the diagnostic gives; ``shown`` the shorter progress line.
    """

    def __init__(self, reason: str, shown: str | None = None) -> None:
        super().__init__(reason)
        self.shown = reason if shown is None else shown


@dataclass(frozen=True)
class Skipped:
    """An action that did not run because something it needs failed; ``reason`` says what."""

    reason: str


class OutcomeAddresses:
    """The addresses of ``self.outcomes`` by status: one definition for every result type
    that carries per-action outcomes (the executor's and the operations')."""

    outcomes: list[ActionOutcome]

    def _with(self, status: Status) -> list[str]:
        return [o.address for o in self.outcomes if o.status is status]

    @property
    def applied(self) -> list[str]:
        """Addresses whose action succeeded."""
        return self._with(Status.OK)

    @property
    def failed(self) -> list[str]:
        return self._with(Status.FAILED)

    @property
    def skipped(self) -> list[str]:
        return self._with(Status.SKIPPED)
