"""Judge one monitor: pick the check for its kind and turn user errors into a result.

Contract: read-only (no state writes, no actions). :func:`evaluate` runs the drift
(:mod:`~mlctl.monitor.drift`), quality (:mod:`~mlctl.monitor.quality`) or serving-traffic
(:mod:`~mlctl.monitor.serving_checks`) check of monitor ``name`` and always returns a
:class:`~mlctl.monitor.findings.MonitorResult`: an :class:`~mlctl.errors.MlctlError` becomes
status ``error`` with its message. Whether a breach *fires* (runs the actions) depends on
``consecutive`` and is decided by the runner.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.monitor.drift import evaluate_drift
from mlctl.monitor.findings import MonitorResult
from mlctl.monitor.quality import evaluate_performance
from mlctl.monitor.serving_checks import evaluate_serving
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import DriftMonitor, PerformanceMonitor
from mlctl.state.document import State


def evaluate(spec: EnvSpec, name: str, state: State, now: datetime, override: Path | None) -> MonitorResult:
    """Evaluate monitor ``name``; user errors become a result with status ``error``."""
    monitor = spec.config.monitors[name]
    try:
        if isinstance(monitor, DriftMonitor):
            return evaluate_drift(spec, name, monitor, state, now, override)
        if isinstance(monitor, PerformanceMonitor):
            return evaluate_performance(spec, name, monitor, state, now, override)
        return evaluate_serving(spec, name, monitor, state, now, override)
    except MlctlError as exc:
        message = str(exc).removeprefix(f"monitor {name}: ")
        return MonitorResult(
            name, monitor.kind, monitor.model, "error", message, required=monitor.consecutive
        )
