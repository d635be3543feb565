"""`mlctl monitor run` end to end on the applied example: drift -> trigger -> plan -> apply ->
cleared; serving breach -> auto-rollback -> write-back -> no changes; webhook; reports;
refusals and user errors."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import edit, invoke, plan_json, state_of
from monitor_support import activity_rows, write_log

MODELS = Path("environments/dev/models.yaml")
MONITORS = Path("environments/dev/monitors.yaml")


def relax_latency_gate(repo: Path) -> None:
    """Retraining tests judge triggers, not speed: a loaded CI machine must not fail the gate.
    (conftest.make_fast already relaxes it for every example repository.)"""
    assert "max_latency_ms: 2000" in (repo / MODELS).read_text()


def shifted_log(repo: Path, n: int = 2000, shift: float = 15, **kw: Any) -> None:
    rows = activity_rows(repo, n, seed=1)
    rows["days_since_last_order"] = rows["days_since_last_order"] + shift
    write_log(repo, rows, **kw)


def run(repo: Path, *args: str) -> Any:
    return invoke(repo, "monitor", "run", "-e", "dev", *args)


def test_no_drift_on_unshifted_traffic(applied: Path) -> None:
    write_log(applied, activity_rows(applied, 2000, seed=3))
    result = run(applied, "churn-drift", "--detailed-exitcode", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    drift = report["monitors"][0]
    assert drift["status"] == "ok" and not drift["fired"]
    assert all(not f["breach"] for f in drift["findings"])
    assert {f["name"] for f in drift["findings"]} >= {"days_since_last_order", "prediction"}
    assert state_of(applied)["models"]["churn-predictor"]["triggers"] == []


def test_drift_records_trigger_plan_trains_apply_clears(applied: Path) -> None:
    relax_latency_gate(applied)
    shifted_log(applied)
    result = run(applied, "churn-drift", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "FIRED" in result.stdout
    assert "ALERT dev/churn-drift (high): drift in days_since_last_order, KS" in result.stdout
    triggers = state_of(applied)["models"]["churn-predictor"]["triggers"]
    assert len(triggers) == 1 and triggers[0]["kind"] == "drift" and triggers[0]["monitor"] == "churn-drift"

    # a second breach while the first trigger is open does not stack another trigger
    again = run(applied, "churn-drift")
    assert "already pending" in again.stdout
    assert len(state_of(applied)["models"]["churn-predictor"]["triggers"]) == 1

    plan = plan_json(applied)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert change["mlctl"]["verbs"] == ["train"]
    assert change["mlctl"]["reason"].startswith("drift in days_since_last_order, KS 0.")
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "train model_version.churn-predictor" in text

    applied_run = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert applied_run.exit_code == 0, applied_run.output
    state = state_of(applied)
    registry = state["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 2  # same spec, same data: still a NEW version
    assert registry["triggers"][0]["trained_version"] == 2
    assert registry["versions"][1]["identity"] != registry["versions"][0]["identity"]

    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0
    listing = invoke(applied, "monitor", "triggers", "-e", "dev", "--json")
    assert [t["status"] for t in json.loads(listing.stdout)] == ["cleared"]


def test_trigger_not_recorded_without_consent_in_retrain_on(applied: Path) -> None:
    edit(applied / MODELS, '"on": [drift, new_data]', '"on": [new_data]')
    shifted_log(applied)
    result = run(applied, "churn-drift", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "not recorded: models.churn-predictor.retrain.on does not include 'drift'" in result.stdout
    assert state_of(applied)["models"]["churn-predictor"]["triggers"] == []


def test_consecutive_breaches_required_before_acting(applied: Path) -> None:
    edit(applied / MONITORS, "    threshold: 0.15\n", "    threshold: 0.15\n    consecutive: 2\n")
    shifted_log(applied)
    first = run(applied, "churn-drift", "--detailed-exitcode")
    assert first.exit_code == 0, first.output
    assert "breach 1/2" in first.stdout
    assert state_of(applied)["models"]["churn-predictor"]["triggers"] == []
    second = run(applied, "churn-drift", "--detailed-exitcode")
    assert second.exit_code == 2
    assert state_of(applied)["monitors"]["churn-drift"]["consecutive_breaches"] == 2
    assert len(state_of(applied)["models"]["churn-predictor"]["triggers"]) == 1


def test_tiny_samples_are_refused_not_fired(applied: Path) -> None:
    shifted_log(applied, n=15)
    result = run(applied, "churn-drift", "churn-serving", "--detailed-exitcode", "--json")
    assert result.exit_code == 0, result.output
    monitors = {m["monitor"]: m for m in json.loads(result.stdout)["monitors"]}
    assert monitors["churn-drift"]["status"] == "insufficient"
    assert "fewer than min_samples 100" in monitors["churn-drift"]["summary"]
    assert monitors["churn-serving"]["status"] == "insufficient"
    assert state_of(applied)["models"]["churn-predictor"]["triggers"] == []


def _train_v2(repo: Path) -> None:
    relax_latency_gate(repo)
    edit(repo / MODELS, "max_depth: 8", "max_depth: 6")
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert state_of(repo)["models"]["churn-predictor"]["stages"]["production"] == 2


def test_serving_breach_rolls_back_writes_back_and_plan_is_clean(applied: Path) -> None:
    _train_v2(applied)
    # v1 was fast earlier (outside the window's judgement: another version), v2 is slow now
    write_log(applied, activity_rows(applied, 200), version=1, latency_ms=5.0, part="v1")
    write_log(applied, activity_rows(applied, 200), latency_ms=400.0, part="v2", predict=False)
    result = run(applied, "churn-serving", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "p95 latency 400.0 ms > 100 ms" in result.stdout
    assert "rollback: production v2 -> v1" in result.stdout
    state = state_of(applied)
    registry = state["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 1
    event = registry["history"][-1]
    assert event["action"] == "rollback" and event["reason"].startswith(
        "auto-rollback by monitor churn-serving"
    )
    assert "production: 1" in (applied / MODELS).read_text()
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0
    # the next run judges v1's traffic only: no second rollback
    again = run(applied, "churn-serving", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert state_of(applied)["models"]["churn-predictor"]["stages"]["production"] == 1


def test_error_rate_breach_alerts(applied: Path) -> None:
    statuses = [500] * 10 + [200] * 190
    write_log(applied, activity_rows(applied, 200), status=statuses, predict=False)
    result = run(applied, "churn-serving", "--json")
    assert result.exit_code == 1  # the rollback action has nothing to roll back to
    report = json.loads(result.stdout)["monitors"][0]
    assert report["fired"] and report["metrics"]["error_rate"] == pytest.approx(0.05)
    assert "no earlier production version" in result.stderr
    assert result.stderr.count("\n") == 1


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"type": self.headers["Content-Type"], "payload": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Any:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_webhook_receives_json_payload(applied: Path, webhook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = webhook
    monkeypatch.setenv("MLCTL_ALERT_WEBHOOK", url)
    shifted_log(applied)
    result = run(applied, "churn-drift")
    assert result.exit_code == 0, result.output
    assert "webhook answered HTTP 204" in result.stdout
    assert len(received) == 1
    payload = received[0]["payload"]
    assert received[0]["type"] == "application/json"
    assert payload["monitor"] == "churn-drift" and payload["environment"] == "dev"
    assert payload["severity"] == "high" and payload["version"] == 1
    assert payload["breaches"][0]["name"] == "days_since_last_order"
    assert payload["actions"] == ["retrain"]
    assert payload["text"].startswith("[mlctl] dev/churn-drift fired (high)")


def test_unreachable_webhook_is_an_error_after_the_report(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCTL_ALERT_WEBHOOK", "http://127.0.0.1:9/hook")
    shifted_log(applied)
    result = run(applied, "churn-drift")
    assert result.exit_code == 1
    assert "ALERT dev/churn-drift" in result.stdout
    assert result.stderr.startswith("Error: monitor churn-drift: alert failed: webhook unreachable")
    assert len(state_of(applied)["models"]["churn-predictor"]["triggers"]) == 1


def test_reports_json_markdown_html(applied: Path, tmp_path: Path) -> None:
    shifted_log(applied)
    out = tmp_path / "reports"
    result = run(applied, "churn-drift", "--report", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "monitor-report.json").read_text())
    findings = data["monitors"][0]["findings"]
    assert findings[0]["name"] == "days_since_last_order" and findings[0]["severity"] == "high"
    assert all(f["p_adjusted"] is None or f["p_adjusted"] >= f["p_value"] for f in findings)
    markdown = (out / "monitor-report.md").read_text()
    assert markdown.startswith("### 🔴 mlctl monitors: 1 of 1 fired in `dev`")
    assert "| 🔴 | `days_since_last_order` | ks |" in markdown
    page = (out / "monitor-report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # five features and the predictions
    assert "http" not in page.replace("http-equiv", "")  # self-contained
    first = page.index("alt='days_since_last_order histogram'")
    assert all(first < page.index(f"alt='{name} histogram'") for name in ("avg_order_value", "prediction"))


def test_current_file_override(applied: Path, tmp_path: Path) -> None:
    rows = activity_rows(applied, 3000, seed=5)
    rows["avg_order_value"] = rows["avg_order_value"] * 1.8
    path = tmp_path / "current.parquet"
    rows.to_parquet(path)
    result = run(applied, "churn-drift", "--current", str(path), "--json")
    assert result.exit_code == 0, result.output
    drift = json.loads(result.stdout)["monitors"][0]
    assert next(f["name"] for f in drift["findings"] if f["breach"]) == "avg_order_value"
    assert "current.parquet (3,000 rows)" in drift["source"]


def test_dataset_as_current(applied: Path) -> None:
    edit(applied / MONITORS, "current: predictions", "current: customer_activity")
    result = run(applied, "churn-drift", "--json", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    drift = json.loads(result.stdout)["monitors"][0]
    assert drift["status"] == "ok" and "dataset customer_activity" in drift["source"]


def test_performance_from_delayed_labels(applied: Path) -> None:
    outcomes = __import__("pandas").read_csv(applied / "data" / "churn_outcomes.csv")
    activity = activity_rows(applied, 40000, seed=0).drop_duplicates("customer_id")
    rows = activity[activity["customer_id"].isin(outcomes["customer_id"])].head(1500)
    # predictions made well before the labels' times
    write_log(applied, rows, when=datetime(2024, 1, 1, tzinfo=UTC))
    edit(applied / MONITORS, "labels: churn_outcomes", "labels: churn_outcomes\n    window: 10000d")
    result = run(applied, "churn-quality", "--json")
    assert result.exit_code == 0, result.output
    quality = json.loads(result.stdout)["monitors"][0]
    assert quality["status"] in ("ok", "breach")
    assert quality["metrics"]["labelled"] >= 100
    assert 0.5 < quality["metrics"]["accuracy"] <= 1.0
    assert quality["metrics"]["auc"] > 0.6
    edit(applied / MONITORS, "min_accuracy: 0.70", "min_accuracy: 0.99")
    failing = run(applied, "churn-quality", "--detailed-exitcode")
    assert failing.exit_code == 2
    assert "quality below its floor: accuracy" in failing.stdout


def test_unknown_monitor_is_one_line_and_state_unchanged(applied: Path) -> None:
    before = (applied / "state" / "dev.json").read_text()
    result = run(applied, "churn-drfit")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: monitor 'churn-drfit' is not defined in environment 'dev' (did you mean 'churn-drift'?)\n"
    )
    assert (applied / "state" / "dev.json").read_text() == before


def test_no_state_yet(repo: Path) -> None:
    result = run(repo)
    assert result.exit_code == 1
    assert result.stderr == "Error: environment 'dev' has no state yet: run mlctl apply -e dev first\n"


def test_missing_current_path(applied: Path) -> None:
    result = run(applied, "--current", "nope.csv")
    assert result.exit_code == 1 and "--current" in result.stderr and "Traceback" not in result.output


def test_scheduled_retraining_is_planned_against_last_training_time(applied: Path) -> None:
    relax_latency_gate(applied)
    state_file = applied / "state" / "dev.json"
    state = json.loads(state_file.read_text())
    old = (datetime.now(UTC) - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for version in state["models"]["churn-predictor"]["versions"]:
        version["created_at"] = old
    state_file.write_text(json.dumps(state))
    plan = plan_json(applied)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert change["mlctl"]["verbs"] == ["train"]
    assert change["mlctl"]["reason"].startswith("scheduled retraining (0 6 * * 1) due since ")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    registry = state_of(applied)["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 2
    assert registry["triggers"][0]["kind"] == "schedule" and registry["triggers"][0]["trained_version"] == 2
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_reverting_spec_after_a_trigger_still_reuses_the_old_version(applied: Path) -> None:
    relax_latency_gate(applied)
    shifted_log(applied)
    run(applied, "churn-drift")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0  # v2 for the trigger
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0  # v3, new spec
    edit(applied / MODELS, "max_depth: 6", "max_depth: 8")
    plan = plan_json(applied)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert change["mlctl"]["verbs"] == ["update"] and change["change"]["after"]["version"] == 2


def test_new_data_waits_for_min_new_rows(applied: Path) -> None:
    edit(applied / MODELS, '"on": [drift, new_data]', '"on": [drift, new_data]\n      min_new_rows: 50')
    labels = applied / "data" / "churn_labels.csv"
    with labels.open("a") as handle:
        handle.writelines(f"N{i:06d},2024-06-01T00:00:00Z,No\n" for i in range(10))
    plan = plan_json(applied)
    actions = {c["address"]: c["mlctl"]["verbs"] for c in plan["resource_changes"]}
    assert actions["dataset.churn_labels"] == ["check"]
    assert "model_version.churn-predictor" not in actions
    assert any("10 in churn_labels new rows since v1 was trained" in w for w in plan["mlctl"]["warnings"])
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    assert len(state_of(applied)["models"]["churn-predictor"]["versions"]) == 1
    with labels.open("a") as handle:
        handle.writelines(f"M{i:06d},2024-06-01T00:00:00Z,Yes\n" for i in range(45))
    plan = plan_json(applied)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert change["mlctl"]["verbs"] == ["train"] and change["mlctl"]["reason"] == "data changed: churn_labels"


def test_unreadable_current_data_is_a_user_error_and_changes_no_state(applied: Path) -> None:
    bad = applied / "not-a-table.csv"
    bad.write_bytes(b"\x00\x01 not, a\n table \xff\n")
    before = (applied / "state" / "dev.json").read_bytes()
    result = run(applied, "churn-drift", "--current", str(bad))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "churn-drift" in result.stderr
    assert (applied / "state" / "dev.json").read_bytes() == before
