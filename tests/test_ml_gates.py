"""Quality gates: floors, ceilings, latency, regression against production, missing metrics."""

from __future__ import annotations

import subprocess
import sys

from mlctl.ml.gates import describe_gates, evaluate_gates
from mlctl.spec.models import Gates

METRICS = {"accuracy": 0.9, "auc": 0.93, "latency_p95_ms": 12.0, "log_loss": 0.3}


def results(gates: Gates, metrics: dict = METRICS, production: dict | None = None) -> dict:
    return {r.gate: r for r in evaluate_gates(metrics, gates, "classification", production)}


def test_floors_and_ceilings() -> None:
    gates = Gates(min_accuracy=0.85, min_auc=0.95, max_latency_ms=50, max_log_loss=0.2)
    found = results(gates)
    assert found["min_accuracy"].passed and found["min_accuracy"].value == 0.9
    assert not found["min_auc"].passed
    latency = found["max_latency_ms"]
    assert latency.passed and latency.metric == "latency_p95_ms" and latency.op == "<="
    assert not found["max_log_loss"].passed


def test_boundary_values_pass() -> None:
    found = results(Gates(min_accuracy=0.9, max_latency_ms=12))
    assert found["min_accuracy"].passed and found["max_latency_ms"].passed


def test_missing_metric_fails_with_none() -> None:
    found = results(Gates(min_f1=0.5))
    assert not found["min_f1"].passed and found["min_f1"].value is None


def test_max_regression_against_production() -> None:
    gates = Gates(max_regression=0.01)
    assert "max_regression" not in results(gates)  # first version: nothing to compare
    ok = results(gates, production={"auc": 0.94})["max_regression"]
    assert ok.passed and ok.metric == "auc" and abs(ok.threshold - 0.93) < 1e-12
    bad = results(gates, production={"auc": 0.95})["max_regression"]
    assert not bad.passed
    primary = results(Gates(max_regression=0.0, primary_metric="accuracy"), production={"accuracy": 0.91})
    assert not primary["max_regression"].passed


def test_regression_uses_r2_by_default() -> None:
    found = evaluate_gates(
        {"r2": 0.7, "rmse": 2.0},
        Gates(max_regression=0.05, max_rmse=1.5),
        "regression",
        {"r2": 0.74},
    )
    by = {r.gate: r for r in found}
    assert by["max_regression"].metric == "r2" and by["max_regression"].passed
    assert not by["max_rmse"].passed


def test_describe_gates() -> None:
    gates = Gates(min_accuracy=0.85, min_auc=0.9, max_latency_ms=50, max_regression=0.01)
    assert describe_gates(gates, "classification") == [
        "accuracy >= 0.85",
        "auc >= 0.9",
        "latency_p95_ms <= 50",
        "auc >= production - 0.01",
    ]
    assert describe_gates(Gates(max_regression=0.02), "regression") == ["r2 >= production - 0.02"]


def test_gates_import_nothing_heavy() -> None:
    code = (
        "import sys, mlctl.ml.gates; "
        "print([m for m in ('pandas', 'numpy', 'sklearn', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
