"""What a monitor found: its findings, its result and the results of its actions.

Contract: plain data, no I/O. A :class:`MonitorResult`'s ``status`` is ``ok``, ``breach`` (a
threshold is crossed), ``insufficient`` (too little data to judge: said so, never fired),
``skipped`` (no production version yet, or not due) or ``error`` (with the message); the
checks fill ``findings`` and ``metrics``, the monitor operation fills ``consecutive``,
``fired`` and ``actions`` (:class:`ActionResult`). ``to_dict`` is the JSON shape of reports
and alerts (non-finite numbers become null); :func:`sort_findings` is the one order every
report uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlctl.state.document import ModelVersion, State

_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass
class Finding:
    """One judged quantity: a feature's drift, the predictions' shift, a quality or serving metric."""

    name: str
    test: str
    statistic: float | None
    threshold: float | None
    breach: bool
    severity: str = "low"
    p_value: float | None = None
    p_adjusted: float | None = None
    n_reference: int | None = None
    n_current: int | None = None
    op: str = ">"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "test": self.test,
            "statistic": _num(self.statistic),
            "threshold": self.threshold,
            "op": self.op,
            "breach": self.breach,
            "severity": self.severity,
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "note": self.note,
        }


@dataclass
class ActionResult:
    action: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ok": self.ok, "detail": self.detail}


@dataclass
class MonitorResult:
    """What one monitor found (and, after the runner, whether it fired and what it did)."""

    name: str
    kind: str
    model: str
    status: str
    summary: str
    version: int | None = None
    source: str = ""
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    consecutive: int = 0
    required: int = 1
    fired: bool = False
    actions: list[ActionResult] = field(default_factory=list)
    samples: dict[str, tuple[Any, Any, bool]] = field(default_factory=dict, repr=False)

    @property
    def severity(self) -> str:
        found = [f.severity for f in self.findings if f.breach]
        return min(found, key=lambda s: _SEVERITY_ORDER[s]) if found else "low"

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.name,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "fired": self.fired,
            "severity": self.severity,
            "summary": self.summary,
            "source": self.source,
            "consecutive": {"breaches": self.consecutive, "required": self.required},
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "findings": [f.to_dict() for f in sort_findings(self.findings)],
            "actions": [a.to_dict() for a in self.actions],
        }


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Breaches first, then by severity, then by statistic (largest first)."""
    return sorted(
        findings,
        key=lambda f: (not f.breach, _SEVERITY_ORDER.get(f.severity, 3), -(f.statistic or 0.0), f.name),
    )


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def production_version(state: State, model: str, result: MonitorResult) -> ModelVersion | None:
    """``model``'s production version, or None after marking ``result`` skipped (none yet)."""
    registry = state.models.get(model)
    number = registry.stages.get("production") if registry else None
    version = registry.get(number) if registry and number is not None else None
    if version is None:
        result.status = "skipped"
        result.summary = f"{model} has no production version to monitor yet"
        return None
    result.version = version.version
    return version
