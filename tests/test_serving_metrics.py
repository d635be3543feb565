"""Metrics that add up: counters named _total, process metrics, regressor buckets from the
training target's range, and one scrape summing every worker of `mlctl serve --workers N`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from mlctl.serving.app import create_app
from mlctl.serving.prometheus import Metrics, value_buckets
from serving_helpers import ROW, Server


def sample(text: str, name: str, labels: str = "") -> float | None:
    """The value of the first sample of ``name`` whose labels include every ``k="v"`` given."""
    wanted = [pair for pair in labels.split(",") if pair]
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric == name and all(pair in rest.rstrip("}").split(",") for pair in wanted):
            return float(value)
    return None


def test_counters_are_counters_and_process_metrics_are_back(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", flush_interval=0.05)
    with TestClient(app) as c:
        for _ in range(3):
            assert c.post("/predict", json=ROW).status_code == 200
        app.state.service.writer.dropped = 2  # as if the buffer had overflowed twice
        text = c.get("/metrics").text
    for counter in (
        "mlctl_requests",
        "mlctl_predictions",
        "mlctl_model_swaps",
        "mlctl_prediction_log_dropped",
        "mlctl_prediction_log_records",
        "mlctl_prediction_log_errors",
    ):
        assert f"# TYPE {counter}_total counter" in text, counter
    assert sample(text, "mlctl_prediction_log_dropped_total") == 2.0
    assert sample(text, "mlctl_requests_total", 'route="/predict",status="200"') == 3.0
    assert sample(text, "mlctl_model_info", 'model="churn-predictor",version="1"') == 1.0
    assert sample(text, "process_cpu_seconds_total") is not None
    assert sample(text, "process_resident_memory_bytes") is not None
    assert 'mlctl_prediction_value_bucket{le="0.5",model="churn-predictor"}' in text


def test_regressors_get_buckets_over_the_training_target_range() -> None:
    regression = {"task": "regression", "target_range": [10.0, 110.0]}
    assert value_buckets(regression) == tuple(10.0 + 10.0 * i for i in range(11))
    assert value_buckets({"task": "classification"})[-1] == 1.0
    assert value_buckets({"task": "regression"}) != value_buckets({"task": "classification"})
    metrics = Metrics()
    metrics.set_model({"model": "m", "version": "1"}, regression)
    metrics.observe_prediction("m", 1, None, 57.0)
    text = metrics.render().decode()
    assert 'mlctl_prediction_value_bucket{le="60.0",model="m"} 1.0' in text
    assert 'mlctl_prediction_value_bucket{le="50.0",model="m"} 0.0' in text
    assert 'le="0.1"' not in text.split("mlctl_prediction_value_bucket", 1)[1].split("# HELP", 1)[0]


def test_a_swap_replaces_the_info_series(applied: Path) -> None:
    metrics = Metrics()
    metrics.set_model({"model": "m", "version": "1"}, {"task": "classification"})
    metrics.set_model({"model": "m", "version": "2"}, {"task": "classification"})
    text = metrics.render().decode()
    assert sample(text, "mlctl_model_info", 'model="m",version="2"') == 1.0
    assert 'version="1"' not in text


def test_workers_share_one_scrape(applied: Path, tmp_path: Path) -> None:
    """`--workers 2`: whichever worker answers the scrape, it shows the requests of both; a
    stale file of an earlier run in the directory is removed at start."""
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")
    server = Server(applied, "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    try:
        server.wait_ready()
        pids = set()
        for _ in range(40):
            with httpx.Client(base_url=server.url, timeout=10) as client:  # a new connection each
                assert client.post("/predict", json=ROW).status_code == 200
        for _ in range(6):
            text = httpx.get(server.url + "/metrics", timeout=10).text
            assert sample(text, "mlctl_requests_total", 'route="/predict",status="200"') == 40.0
            assert sample(text, "mlctl_predictions_total", 'model="churn-predictor"') is not None
            assert "# TYPE mlctl_prediction_log_dropped_total counter" in text
            match = re.search(r'^process_cpu_seconds_total\{pid="(\d+)"\} \S+$', text, re.M)
            assert match, text[-2000:]
            pids.add(match.group(1))
        assert not (directory / "counter_999999.db").exists()
        assert len(list(directory.glob("*.db"))) >= 2  # both workers write there
    finally:
        server.stop()
