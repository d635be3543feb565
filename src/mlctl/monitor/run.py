"""The result of one monitor run: what every monitor found, which fired, what they did.

Contract: plain data, built by :func:`mlctl.operations.monitor` and rendered by
:mod:`mlctl.monitor.report`. ``errors`` lists what makes the run fail (a monitor that could
not be evaluated, an action other than ``retrain`` that failed); a monitor that fired is not
an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlctl.errors import Diagnostic
from mlctl.monitor.results import MonitorResult


@dataclass
class RunResult:
    """One run of an environment's monitors at ``time`` (ISO-8601, UTC)."""

    environment: str
    time: str
    results: list[MonitorResult] = field(default_factory=list)

    @property
    def fired(self) -> list[MonitorResult]:
        return [r for r in self.results if r.fired]

    @property
    def errors(self) -> list[str]:
        """One line per failure: ``monitor NAME: summary`` or ``monitor NAME: ACTION failed: why``."""
        out = [f"monitor {r.name}: {r.summary}" for r in self.results if r.status == "error"]
        out += [
            f"monitor {r.name}: {a.action} failed: {a.detail}"
            for r in self.results
            for a in r.actions
            if not a.ok and a.action != "retrain"
        ]
        return out

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """:attr:`errors` as error diagnostics (they read the same)."""
        return [Diagnostic(line) for line in self.errors]

    def to_dict(self) -> dict[str, object]:
        return {
            "format_version": 1,
            "environment": self.environment,
            "time": self.time,
            "fired": [r.name for r in self.fired],
            "monitors": [r.to_dict() for r in self.results],
        }
