"""The serving monitor judges what serving logs: one record per request, failures included.

Each check of the serving table against records the app itself wrote (TestClient over the
real app) or records in the log's format: p95 latency per request (a batch counts once),
error rate (5xx, now logged by the middleware), volume under 50% of the window before, and
a mean shift of the predictions above 0.1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from mlctl.monitor.serving_checks import evaluate_serving
from mlctl.providers.predlog import PredictionLogWriter, prediction_log_dir
from mlctl.serving.app import create_app
from mlctl.workspace import open_workspace
from serving_helpers import ROW


def judge(repo: Path, now: datetime | None = None) -> dict[str, Any]:
    ws = open_workspace(repo, "dev")
    state = ws.backend.read()
    assert state is not None
    monitor = ws.spec.config.monitors["churn-serving"]
    result = evaluate_serving(ws.spec, "churn-serving", monitor, state, now or datetime.now(UTC), None)
    return {"status": result.status, "findings": {f.name: f for f in result.findings}, "result": result}


def log(repo: Path, records: list[dict[str, Any]]) -> None:
    with PredictionLogWriter(prediction_log_dir(repo, ".mlctl", "dev", "churn-predictor")) as writer:
        writer.log_many(records)


def request(
    ts: datetime, *, latency_ms: float = 5.0, rows: int = 1, probability: float = 0.3, status: int = 200
):
    return {
        "ts": ts.isoformat(),
        "request_id": f"r{ts.timestamp()}-{rows}",
        "endpoint": "churn-api",
        "model": "churn-predictor",
        "version": 1,
        "route": "/predict" if rows == 1 else "/predict/batch",
        "status": status,
        "latency_ms": latency_ms,
        "rows": rows if status < 400 else 0,
        "predictions": [
            {"entity": {}, "inputs": {}, "prediction": "No", "probability": probability}
            for _ in range(rows if status < 400 else 0)
        ],
    }


def test_failed_requests_the_app_answered_fire_the_error_rate(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", flush_interval=0.05)
    service = app.state.service
    real = service.predict

    def broken(*args: object) -> None:
        raise RuntimeError("the model blew up")

    with TestClient(app, raise_server_exceptions=False) as c:
        for _ in range(20):
            assert c.post("/predict", json=ROW).status_code == 200
        for _ in range(5):
            assert c.post("/predict", json={"total_orders_30d": "x"}).status_code == 422  # the client's fault
        service.predict = broken
        for _ in range(5):
            assert c.post("/predict", json=ROW).status_code == 500
        service.predict = real
    found = judge(applied)
    error = found["findings"]["error_rate"]
    assert found["status"] == "breach" and error.breach
    assert error.statistic == 5 / 30 and error.n_current == 30
    assert found["result"].metrics["client_error_rate"] == 5 / 30


def test_a_few_big_batches_do_not_fire_the_latency_monitor(applied: Path) -> None:
    now = datetime.now(UTC)
    fast = [request(now - timedelta(minutes=10, seconds=i)) for i in range(100)]
    batches = [request(now - timedelta(minutes=5, seconds=i), latency_ms=400.0, rows=1000) for i in range(3)]
    log(applied, fast + batches)
    found = judge(applied)
    latency = found["findings"]["p95_latency_ms"]
    assert latency.n_current == 103 and latency.statistic is not None and latency.statistic < 100
    assert not latency.breach
    slow = [request(now - timedelta(minutes=4, seconds=i), latency_ms=400.0) for i in range(20)]
    log(applied, slow)
    assert judge(applied)["findings"]["p95_latency_ms"].breach  # slow requests still fire


def test_volume_above_half_of_the_window_before_is_fine(applied: Path) -> None:
    now = datetime.now(UTC)
    before = [request(now - timedelta(days=1, hours=2, seconds=i)) for i in range(200)]
    log(applied, before + [request(now - timedelta(hours=1, seconds=i)) for i in range(120)])
    volume = judge(applied)["findings"]["volume"]
    assert not volume.breach and volume.statistic == 120 and volume.threshold == 100


def test_volume_drop_breaches(applied: Path) -> None:
    now = datetime.now(UTC)
    before = [request(now - timedelta(days=1, hours=2, seconds=i)) for i in range(200)]
    log(applied, before + [request(now - timedelta(hours=1, seconds=i)) for i in range(60)])
    found = judge(applied)
    volume = found["findings"]["volume"]
    assert volume.breach and volume.statistic == 60 and volume.n_reference == 200
    assert found["status"] == "breach" and "< 50% of the window before" in found["result"].summary


def test_volume_without_a_baseline_is_not_judged(applied: Path) -> None:
    now = datetime.now(UTC)
    log(applied, [request(now - timedelta(hours=1, seconds=i)) for i in range(60)])
    volume = judge(applied)["findings"]["volume"]
    assert volume.statistic is None and not volume.breach and "not judged" in volume.note


def test_prediction_mean_shift_above_a_tenth_fires(applied: Path) -> None:
    now = datetime.now(UTC)
    before = [
        request(now - timedelta(days=1, hours=2, seconds=i), probability=0.2 + i % 5 / 100)
        for i in range(200)
    ]
    same = [request(now - timedelta(hours=1, seconds=i), probability=0.22 + i % 5 / 100) for i in range(200)]
    log(applied, before + same)
    shift = judge(applied)["findings"]["prediction"]
    assert shift.statistic is not None and abs(shift.statistic - 0.02) < 1e-9 and not shift.breach
    moved = [
        request(now - timedelta(minutes=30, seconds=i), probability=0.7 + i % 5 / 100) for i in range(400)
    ]
    log(applied, moved)
    found = judge(applied)
    shift = found["findings"]["prediction"]
    assert shift.breach and shift.statistic > 0.1
    assert found["result"].metrics["prediction_mean_baseline"] is not None


def test_predictions_without_a_baseline_say_which_window_is_short(applied: Path) -> None:
    """A first day of traffic: plenty of predictions now, none the day before. The note names
    the empty baseline, not "0 predictions" next to thousands of requests."""
    now = datetime.now(UTC)
    log(applied, [request(now - timedelta(hours=1, seconds=i)) for i in range(150)])
    shift = judge(applied)["findings"]["prediction"]
    assert shift.statistic is None and not shift.breach
    assert shift.note == "not judged: baseline window has 0 predictions < 100 (this window: 150 of v1)"


def test_too_few_current_predictions_say_so(applied: Path) -> None:
    now = datetime.now(UTC)
    before = [request(now - timedelta(days=1, hours=2, seconds=i)) for i in range(200)]
    log(applied, before + [request(now - timedelta(hours=1, seconds=i)) for i in range(40)])
    shift = judge(applied)["findings"]["prediction"]
    assert shift.statistic is None and not shift.breach
    assert shift.note == "not judged: 40 predictions of v1 < 100 (baseline window: 200)"
