"""Quality gates: compare a candidate's metrics with the bars of its model's ``gates``.

Contract: pure functions of plain values, importing nothing heavy (``plan`` uses
:func:`describe_gates`). ``min_<m>`` passes when metric ``m`` >= the bar, ``max_<m>`` when
it is <= the bar; ``max_latency_ms`` bounds ``latency_p95_ms``. ``max_regression`` bounds the
drop of the primary metric (``gates.primary_metric``, else ``auc`` for classifiers and ``r2``
for regressors) below production: candidate >= production - max_regression. It is evaluated
only when production metrics holding the primary metric are given (a first version has
nothing to regress from). A metric that is absent (or NaN) fails its gate with value None.
Results come in the order of the fields of :class:`~mlctl.spec.models.Gates`.
"""

from __future__ import annotations

import math
from typing import Literal

from mlctl.spec.estimators import Task
from mlctl.spec.models import Gates
from mlctl.state.document import GateResult

__all__ = ["GATE_METRICS", "describe_gates", "evaluate_gates", "primary_metric"]

Op = Literal[">=", "<="]

#: Comparisons allow this much floating-point noise (0.9 - 0.01 is not exactly 0.89).
_EPSILON = 1e-12

#: gate field -> (metric it reads, comparison that passes)
GATE_METRICS: dict[str, tuple[str, Op]] = {
    "min_accuracy": ("accuracy", ">="),
    "min_precision": ("precision", ">="),
    "min_recall": ("recall", ">="),
    "min_f1": ("f1", ">="),
    "min_auc": ("auc", ">="),
    "max_log_loss": ("log_loss", "<="),
    "max_rmse": ("rmse", "<="),
    "max_mae": ("mae", "<="),
    "min_r2": ("r2", ">="),
    "max_latency_ms": ("latency_p95_ms", "<="),
}


def primary_metric(gates: Gates, task: Task) -> str:
    """The metric ``max_regression`` compares: the declared one, else auc or r2 by task."""
    if gates.primary_metric:
        return gates.primary_metric
    return "auc" if task == "classification" else "r2"


def evaluate_gates(
    metrics: dict[str, float],
    gates: Gates,
    task: Task,
    production: dict[str, float] | None = None,
) -> list[GateResult]:
    """One :class:`GateResult` per gate that applies (see module contract)."""
    results = []
    for gate, (metric, op) in GATE_METRICS.items():
        threshold = getattr(gates, gate)
        if threshold is not None:
            results.append(_result(gate, metric, op, float(threshold), metrics))
    if gates.max_regression is not None and production:
        metric = primary_metric(gates, task)
        baseline = _value(production, metric)
        if baseline is not None:
            threshold = baseline - float(gates.max_regression)
            results.append(_result("max_regression", metric, ">=", threshold, metrics))
    return results


def describe_gates(gates: Gates, task: Task) -> list[str]:
    """Human lines such as ``'auc >= 0.9'`` and ``'auc >= production - 0.01'``."""
    lines = []
    for gate, (metric, op) in GATE_METRICS.items():
        threshold = getattr(gates, gate)
        if threshold is not None:
            lines.append(f"{metric} {op} {_number(threshold)}")
    if gates.max_regression is not None:
        metric = primary_metric(gates, task)
        lines.append(f"{metric} >= production - {_number(gates.max_regression)}")
    return lines


def _result(gate: str, metric: str, op: Op, threshold: float, metrics: dict[str, float]) -> GateResult:
    value = _value(metrics, metric)
    if value is None:
        passed = False
    else:
        passed = value >= threshold - _EPSILON if op == ">=" else value <= threshold + _EPSILON
    return GateResult(gate=gate, metric=metric, op=op, threshold=threshold, value=value, passed=passed)


def _value(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _number(value: float) -> str:
    return f"{value:g}"
