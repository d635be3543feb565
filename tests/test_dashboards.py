"""`mlctl render --dashboards`: Grafana dashboards whose queries name only metrics mlctl
exports (the serving registry's and the monitor exposition's); the monitor results as
Prometheus metrics in a textfile (parsed back with prometheus_client's parser) and pushed to a
Pushgateway (a real HTTP server on 127.0.0.1 that records what it was sent)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pushgateway
from conftest import invoke
from mlctl.errors import MlctlError
from mlctl.monitor import exposition
from mlctl.serving.prometheus import Metrics
from mlctl.spec.loader import load_environment
from mlctl.state.document import MonitorPoint, MonitorRecord, State
from pushgateway import Gateway

gateway = pushgateway.gateway  # a fixture: the URL of a Pushgateway stand-in
METRIC = re.compile(r"\b(mlctl_[a-z0-9_]+)\b")
GUIDE_PANELS = [  # the guide's monitoring table
    "p95 latency",
    "Volume against baseline",
    "Error rate",
    "Prediction distribution",
    "Per-feature drift: churn-drift",
    "Delayed accuracy: churn-quality",
    "Rollout arms: p95 latency",
    "Rollout arms: error rate",
    "Rollout arms: volume",
]


def serving_metric_names() -> set[str]:
    """Every sample name a live serving process can expose (read from its registry's
    collectors: counters end in _total, histograms in _bucket/_sum/_count)."""
    metrics = Metrics()
    metrics.set_model(
        {"model": "churn-predictor", "version": "1", "stage": "production", "sha256": "x", "predictor": "p"},
        {"task": "classification"},
    )
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def exprs(board: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return found


def test_render_dashboards_of_the_example(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    result = invoke(repo, "render", "-e", "dev", "--dashboards", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote 1 Grafana dashboard(s)" in result.stdout
    (path,) = sorted(out.iterdir())
    assert path.name == "mlctl-dev-churn-api.json"
    board = json.loads(path.read_text())
    assert board["title"] == "mlctl dev: churn-api" and board["uid"] == "mlctl-dev-churn-api"
    panels = board["panels"]
    titles = [p["title"] for p in panels]
    assert set(GUIDE_PANELS) <= set(titles), titles
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids)
    for panel in panels:
        assert panel["type"] in {"row", "timeseries", "heatmap", "stat"}, panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs) and all(refs)
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["instance"]["query"] == (
        'label_values(mlctl_model_info{model="churn-predictor", stage="production"}, instance)'
    )
    # thresholds from the monitors' YAML are drawn on their panels
    by_title = {p["title"]: p for p in panels}
    steps = by_title["p95 latency"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == pytest.approx(0.1)  # max_p95_latency_ms: 100
    drift = by_title["Per-feature drift: churn-drift"]
    assert drift["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.15
    assert drift["targets"][0]["legendFormat"] == "{{feature}}"
    heat = by_title["Prediction distribution"]["targets"][0]
    assert heat["format"] == "heatmap" and "mlctl_prediction_value_bucket" in heat["expr"]
    # rollout arms: grouped by the arm label, series without it shown as the stable arm
    for title in ("Rollout arms: p95 latency", "Rollout arms: error rate", "Rollout arms: volume"):
        (target,) = by_title[title]["targets"]
        assert target["legendFormat"] == "{{arm}}"
        assert target["expr"].startswith("label_replace(") and target["expr"].endswith(
            ', "arm", "stable", "arm", "")'
        )
        assert "arm)" in target["expr"]
    # rendering twice gives the same bytes
    first = path.read_bytes()
    assert invoke(repo, "render", "-e", "dev", "--dashboards", str(out)).exit_code == 0
    assert path.read_bytes() == first


def test_queries_name_only_metrics_mlctl_exports(repo: Path) -> None:
    from mlctl.monitor import dashboards

    boards = dashboards.build("dev", load_environment(repo, "dev").config)
    exported = serving_metric_names() | set(exposition.METRICS)
    used = {name for board in boards.values() for e in exprs(board) for name in METRIC.findall(e)}
    assert used and used <= exported, sorted(used - exported)
    assert set(dashboards.SERVING_METRICS) <= serving_metric_names()
    # every monitor metric the exposition defines is shown somewhere, but its bookkeeping ones
    shown = used & set(exposition.METRICS)
    assert set(exposition.METRICS) - shown <= {
        "mlctl_monitor_last_run_timestamp_seconds",
        "mlctl_monitor_status",
        "mlctl_monitor_consecutive_breaches",
        "mlctl_monitor_model_version",
        "mlctl_monitor_drift_breach",
        "mlctl_monitor_drift_threshold",
        "mlctl_monitor_labelled_predictions",
    }


def test_render_needs_a_target(repo: Path) -> None:
    result = invoke(repo, "render", "-e", "dev")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: say what to render: --out DIR (Kubernetes manifests) and/or --dashboards DIR"
    ]


# -- monitor results as Prometheus metrics ------------------------------------------------------


def state_with_runs() -> State:
    state = State(environment="dev")
    state.monitors["churn-drift"] = MonitorRecord(
        consecutive_breaches=1,
        history=[
            MonitorPoint(
                time="2026-11-29T10:00:00Z",
                status="breach",
                fired=True,
                version=3,
                metrics={"prediction_mean_reference": 0.31, "prediction_mean_current": 0.42},
                findings={"days_since_last_order": 0.72, "avg_order_value": 0.02, "prediction": 0.11},
                breaches=["days_since_last_order"],
            )
        ],
    )
    state.monitors["churn-serving"] = MonitorRecord(
        history=[
            MonitorPoint(
                time="2026-11-29T10:00:00Z",
                status="ok",
                version=3,
                metrics={
                    "p95_latency_ms": 12.5,
                    "baseline_p95_latency_ms": 10.0,
                    "error_rate": 0.0,
                    "endpoint_requests": 900.0,
                    "baseline_endpoint_requests": 1000.0,
                    "client_error_rate": None,
                },
            )
        ]
    )
    state.monitors["churn-quality"] = MonitorRecord()  # never run since history was kept: absent
    return state


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(monitor: str, **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({"environment": "dev", "monitor": monitor, "model": "churn-predictor", **extra}.items())


def test_textfile_holds_each_monitors_last_result(repo: Path, tmp_path: Path) -> None:
    monitors = load_environment(repo, "dev").config.monitors
    path = tmp_path / "textfile" / "mlctl-monitors.prom"
    exposition.write_textfile(path, exposition.registry("dev", state_with_runs(), monitors))
    found = samples(path.read_text())
    drift, serving = "churn-drift", "churn-serving"
    stat = ("mlctl_monitor_drift_statistic", labels(drift, feature="days_since_last_order", test="ks"))
    assert found[stat] == 0.72
    assert found[("mlctl_monitor_drift_breach", labels(drift, feature="days_since_last_order"))] == 1
    assert found[("mlctl_monitor_drift_breach", labels(drift, feature="avg_order_value"))] == 0
    assert found[("mlctl_monitor_drift_threshold", labels(drift))] == 0.15
    assert found[("mlctl_monitor_prediction_shift", labels(drift))] == 0.11
    assert found[("mlctl_monitor_prediction_mean", labels(drift, window="current"))] == 0.42
    assert found[("mlctl_monitor_breach", labels(drift))] == 1
    assert found[("mlctl_monitor_fired", labels(drift))] == 1
    assert found[("mlctl_monitor_status", labels(drift, status="breach"))] == 1
    assert found[("mlctl_monitor_status", labels(drift, status="ok"))] == 0
    assert found[("mlctl_monitor_model_version", labels(drift))] == 3
    assert found[("mlctl_monitor_last_run_timestamp_seconds", labels(drift, kind="drift"))] == 1795946400
    assert found[("mlctl_monitor_p95_latency_seconds", labels(serving, window="current"))] == 0.0125
    assert found[("mlctl_monitor_p95_latency_seconds", labels(serving, window="baseline"))] == 0.01
    assert found[("mlctl_monitor_requests", labels(serving, window="baseline"))] == 1000
    assert found[("mlctl_monitor_error_rate", labels(serving, window="current"))] == 0
    assert found[("mlctl_monitor_breach", labels(serving))] == 0
    assert not [k for k in found if dict(k[1]).get("monitor") == "churn-quality"]
    assert {name for name, _ in found} <= set(exposition.METRICS)


def test_push_replaces_the_environments_group(repo: Path, gateway: str) -> None:
    monitors = load_environment(repo, "dev").config.monitors
    exposition.push(gateway, "dev", exposition.registry("dev", state_with_runs(), monitors))
    ((method, path, body),) = Gateway.received
    assert method == "PUT" and path == "/metrics/job/mlctl_monitor/environment/dev"
    found = samples(body.decode())
    assert found[
        ("mlctl_monitor_drift_statistic", labels("churn-drift", feature="avg_order_value", test="ks"))
    ]


def test_push_failures_are_one_line(repo: Path) -> None:
    registry = exposition.registry("dev", State(), {})
    with pytest.raises(MlctlError, match=r"^--pushgateway ftp://x: not an http\(s\) URL"):
        exposition.push("ftp://x", "dev", registry)
    with pytest.raises(MlctlError, match=r"^--pushgateway http://127\.0\.0\.1:9: "):
        exposition.push("http://127.0.0.1:9", "dev", registry, timeout=5)
