"""The result of one monitor run: what every monitor found, which fired, what they did.

Contract: plain data, built by :func:`mlctl.operations.monitor` and rendered by
:mod:`mlctl.monitor.report`. ``errors`` lists what makes the run fail (a monitor that could
not be evaluated, an action other than ``retrain`` that failed, a metrics export in
``exports`` that failed, a rollout that could not be stepped); a monitor that fired is not an
error, nor is a rollout the analysis aborted. ``rollouts`` are the declared rollouts the run
stepped (:func:`mlctl.operations.rollout.step_all`), in the plan's shape. :func:`remember` turns one
result into the point of a monitor's bounded history in state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlctl.errors import Diagnostic
from mlctl.monitor.results import ActionResult, MonitorResult
from mlctl.plan.model import RolloutStep
from mlctl.state.document import MONITOR_HISTORY, MonitorPoint, MonitorRecord


@dataclass
class RolloutOutcome:
    """What the run did to one declared rollout: the step (``weight`` before, ``next_weight``
    after a move), the YAML file whose production pin a promotion rewrote, its commit."""

    step: RolloutStep
    written: str | None = None
    commit: str | None = None

    def lines(self) -> list[str]:
        """The report's lines: the move, its statistics and reason, the pin written."""
        from mlctl.plan.render import rollout_details, rollout_headline

        out = [f"  {rollout_headline(self.step)}"]
        out += [f"    {line}" for line in rollout_details(self.step)]
        if self.step.verdict is None and self.step.status == "running":
            out.append(f"    {self.step.reason}")
        if self.written:
            out.append(f"    wrote production: {self.step.candidate_version} to {self.written}")
        if self.commit:
            out.append(f"    committed {self.commit[:12]} (push it so the remote agrees)")
        return out

    def to_dict(self) -> dict[str, object]:
        return {**self.step.model_dump(mode="json"), "written": self.written, "commit": self.commit}


@dataclass
class RunResult:
    """One run of an environment's monitors at ``time`` (ISO-8601, UTC)."""

    environment: str
    time: str
    results: list[MonitorResult] = field(default_factory=list)
    exports: list[ActionResult] = field(default_factory=list)  # metrics pushed or written
    rollouts: list[RolloutOutcome] = field(default_factory=list)  # declared rollouts stepped

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
        out += [f"{e.action} failed: {e.detail}" for e in self.exports if not e.ok]
        out += [f"rollout {r.step.endpoint}: {r.step.error}" for r in self.rollouts if r.step.error]
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
            "rollouts": [r.to_dict() for r in self.rollouts],
        }

    def rollout_lines(self) -> list[str]:
        """The text report's block of rollouts stepped (empty when none is declared)."""
        if not self.rollouts:
            return []
        return [line for r in self.rollouts for line in r.lines()] + [""]


def remember(record: MonitorRecord, result: MonitorResult, time: str) -> None:
    """Append ``result`` (already folded into ``record`` by
    :func:`mlctl.monitor.evaluation.record`) to ``record.history`` as a
    :class:`~mlctl.state.document.MonitorPoint` at ``time``, keeping the last
    :data:`~mlctl.state.document.MONITOR_HISTORY` runs."""
    record.history.append(
        MonitorPoint(
            time=time,
            status=result.status,
            fired=result.fired,
            version=result.version,
            metrics={k: _finite(v) for k, v in result.metrics.items()},
            findings={f.name: _finite(f.statistic) for f in result.findings},
            breaches=[f.name for f in result.findings if f.breach],
        )
    )
    del record.history[:-MONITOR_HISTORY]


def _finite(value: float | None) -> float | None:
    """``value`` as a float, or None when absent or not finite (state JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
