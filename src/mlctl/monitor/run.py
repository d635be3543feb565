"""The result of one monitor run: what every monitor found, which fired, what they did.

Contract: plain data, built by :func:`mlctl.operations.monitor` and rendered by
:mod:`mlctl.monitor.report`. ``diagnostics`` (error diagnostics with the address of the monitor
or endpoint concerned; ``errors`` their lines) list what makes the run fail (a monitor that could
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
from mlctl.monitor.findings import ActionResult, MonitorResult
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
    def diagnostics(self) -> list[Diagnostic]:
        """One error diagnostic per failure, about the monitor (``monitor.NAME``) or endpoint
        (``endpoint.NAME``) it concerns: a monitor that could not be evaluated (its summary), an
        action that failed, an export that failed, a rollout that could not be stepped. The text
        reads ``monitor NAME: summary``, ``monitor NAME: ACTION failed: why``, ``EXPORT failed:
        why``, ``rollout ENDPOINT: why``."""
        out = [
            Diagnostic(r.summary, subject=f"monitor {r.name}", address=f"monitor.{r.name}")
            for r in self.results
            if r.status == "error"
        ]
        out += [
            Diagnostic(
                f"{a.action} failed: {a.detail}", subject=f"monitor {r.name}", address=f"monitor.{r.name}"
            )
            for r in self.results
            for a in r.actions
            if not a.ok and a.action != "retrain"
        ]
        out += [Diagnostic(f"{e.action} failed: {e.detail}") for e in self.exports if not e.ok]
        out += [
            Diagnostic(
                r.step.error, subject=f"rollout {r.step.endpoint}", address=f"endpoint.{r.step.endpoint}"
            )
            for r in self.rollouts
            if r.step.error
        ]
        return out

    @property
    def errors(self) -> list[str]:
        """:attr:`diagnostics` as their one-line texts."""
        return [str(d) for d in self.diagnostics]

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
