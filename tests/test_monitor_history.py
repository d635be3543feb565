"""Monitor history: every run of a monitor is kept in state (bounded), exposed as Prometheus
metrics (textfile and Pushgateway) and drawn over time by `mlctl monitor report --history`
in one self-contained page with the dashboards' panels."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import pushgateway
from conftest import invoke, state_of
from mlctl.monitor.findings import Finding, MonitorResult
from mlctl.monitor.history_report import PANELS
from mlctl.monitor.run import remember
from mlctl.state.document import MONITOR_HISTORY, MonitorRecord, State
from monitor_support import activity_rows, write_log
from pushgateway import Gateway

gateway = pushgateway.gateway  # a fixture: the URL of a Pushgateway stand-in
MONITORS = ("churn-drift", "churn-quality", "churn-serving")


def test_history_is_bounded_and_optional_in_state_json() -> None:
    record = MonitorRecord()
    for i in range(MONITOR_HISTORY + 5):
        result = MonitorResult("m", "drift", "model", "ok", "fine", version=1)
        result.findings = [Finding("f", "ks", float(i), 0.15, False)]
        result.metrics = {"nan": float("nan"), "x": 1.0}
        remember(record, result, f"2026-11-29T10:00:{i % 60:02d}Z")
    assert len(record.history) == MONITOR_HISTORY
    assert (
        record.history[0].findings == {"f": 5.0} and record.history[-1].findings["f"] == MONITOR_HISTORY + 4
    )
    assert record.history[-1].metrics == {"nan": None, "x": 1.0}
    # a monitor without recorded runs writes no history key: older readers see the same JSON
    state = State(environment="dev", monitors={"m": MonitorRecord(last_status="ok")})
    assert "history" not in json.loads(state.to_json())["monitors"]["m"]
    state.monitors["m"] = record
    again = State.from_json(state.to_json())
    assert len(again.monitors["m"].history) == MONITOR_HISTORY


def test_runs_are_kept_exposed_and_drawn_over_time(
    applied: Path,
    tmp_path: Path,
    gateway: str,
) -> None:
    metrics_file = tmp_path / "textfile" / "mlctl.prom"
    write_log(applied, activity_rows(applied, 600, seed=3), part="a")
    for run in range(3):
        if run == 2:  # the last run sees drifted traffic
            rows = activity_rows(applied, 600, seed=4)
            rows["days_since_last_order"] = rows["days_since_last_order"] + 15
            write_log(applied, rows, part="b")
        result = invoke(
            applied,
            "monitor",
            "run",
            "-e",
            "dev",
            "--metrics-file",
            str(metrics_file),
            "--pushgateway",
            gateway,
        )
        assert result.exit_code == 0, result.output
        assert f"Metrics: wrote {metrics_file}" in result.stderr
        assert f"Metrics: pushed to {gateway}" in result.stderr

    monitors = state_of(applied)["monitors"]
    for name in MONITORS:
        assert len(monitors[name]["history"]) == 3, name
    drift = monitors["churn-drift"]["history"]
    assert drift[-1]["status"] == "breach" and "days_since_last_order" in drift[-1]["breaches"]
    assert drift[0]["status"] == "ok" and drift[0]["findings"]["days_since_last_order"] < 0.15
    serving = monitors["churn-serving"]["history"][-1]
    assert serving["metrics"]["p95_latency_ms"] == 5.0 and serving["metrics"]["endpoint_requests"] == 1200

    # the textfile (node_exporter's format) holds the last run of every monitor
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics_file.read_text())
        for s in family.samples
    }
    base = (("environment", "dev"), ("model", "churn-predictor"))
    key = tuple(
        sorted((*base, ("monitor", "churn-drift"), ("feature", "days_since_last_order"), ("test", "ks")))
    )
    assert samples[("mlctl_monitor_drift_statistic", key)] > 0.15
    assert samples[("mlctl_monitor_breach", tuple(sorted((*base, ("monitor", "churn-drift")))))] == 1
    window = tuple(sorted((*base, ("monitor", "churn-serving"), ("window", "current"))))
    assert samples[("mlctl_monitor_p95_latency_seconds", window)] == 0.005
    assert samples[("mlctl_monitor_requests", window)] == 1200
    # the Pushgateway got the same, once per run, replacing the environment's group
    assert [(m, p) for m, p, _ in Gateway.received] == [
        ("PUT", "/metrics/job/mlctl_monitor/environment/dev")
    ] * 3
    assert b"mlctl_monitor_drift_statistic{" in Gateway.received[-1][2]

    page_path = tmp_path / "out" / "history.html"
    result = invoke(applied, "monitor", "report", "--history", "-e", "dev", "--out", str(page_path))
    assert result.exit_code == 0, result.output
    assert f"Wrote {page_path} (9 monitor runs)." in result.stdout
    page = page_path.read_text()
    for key in PANELS:
        assert f"data-panel='{key}'" in page, key
    for title in ("p95 latency", "Volume against baseline", "Error rate", "Prediction distribution"):
        assert f"<img alt='{title} over time' src='data:image/png;base64," in page, title
    assert "<img alt='Per-feature drift: churn-drift over time'" in page
    assert "no rollout recorded" in page
    # self-contained: every src/href is inline data, nothing names a network location
    assert not re.findall(r"""(?:src|href)\s*=\s*['"](?!data:)""", page)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "//" not in text and "url(" not in text and "@import" not in text


def test_report_and_export_refusals(applied: Path, tmp_path: Path) -> None:
    result = invoke(applied, "monitor", "report", "-e", "dev")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: monitor report needs --history (the report of one run: mlctl monitor run --report DIR)"
    ]
    before = (applied / "state" / "dev.json").read_bytes()
    result = invoke(applied, "monitor", "run", "-e", "dev", "--pushgateway", "ftp://gateway")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --pushgateway ftp://gateway: not an http(s) URL (e.g. http://pushgateway:9091)"
    ]
    assert (applied / "state" / "dev.json").read_bytes() == before
    # an unreachable gateway: the run is recorded and reported, then the command fails naming it
    write_log(applied, activity_rows(applied, 300, seed=3))
    result = invoke(
        applied, "monitor", "run", "-e", "dev", "churn-serving", "--pushgateway", "http://127.0.0.1:9"
    )
    assert result.exit_code == 1
    assert "churn-serving" in result.stdout
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: pushgateway failed: --pushgateway http://127")
    )
    assert len(state_of(applied)["monitors"]["churn-serving"]["history"]) == 1
