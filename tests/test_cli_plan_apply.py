"""plan and apply end to end on the example repository, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import edit, invoke, plan_json, state_of

MODELS = Path("environments/dev/models.yaml")


def test_fresh_plan_lists_every_resource_in_dependency_order(repo: Path) -> None:
    result = invoke(repo, "plan", "-e", "dev", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "* train model_version.churn-predictor" in out
    assert out.index("dataset.churn_labels") < out.index("model_version.churn-predictor")
    assert out.index("stage.churn-predictor.staging") < out.index("stage.churn-predictor.production")
    assert out.rstrip().splitlines()[-1].startswith("Plan: ")
    assert not (repo / "state" / "dev.json").exists(), "plan must never write state"


def test_plan_json_shape(repo: Path) -> None:
    plan = plan_json(repo)
    assert plan["format_version"] == "1.2"  # Terraform's plan shape (docs/plan-json.md)
    change = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert set(change) >= {"address", "type", "name", "change", "mlctl"}
    assert set(change["change"]) >= {"actions", "before", "after", "after_unknown"}
    assert change["change"]["actions"] == ["create"]  # the model's first version
    assert change["mlctl"]["verbs"] == ["train"]
    assert change["change"]["after_unknown"]["version"] is True  # Terraform's shape: known after apply
    assert "version" not in change["change"]["after"]


def test_apply_then_apply_again_is_a_noop(applied: Path) -> None:
    state = state_of(applied)
    registry = state["models"]["churn-predictor"]
    assert registry["stages"] == {"staging": 1, "production": 1}
    version = registry["versions"][0]
    assert version["status"] == "passed" and version["artifact"]["sha256"]
    assert {
        "auc",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "log_loss",
        "latency_p50_ms",
        "latency_p95_ms",
    } <= set(version["metrics"])
    assert state["resources"]["endpoint.churn-api"]["status"]["version"] == 1
    serial = state["serial"]

    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "No changes." in result.stdout
    assert state_of(applied)["serial"] == serial
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_changing_only_a_gate_is_one_update_of_the_model(applied: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.81")
    plan = plan_json(applied)
    assert [(c["address"], c["mlctl"]["verbs"]) for c in plan["resource_changes"]] == [
        ("model.churn-predictor", ["update"])
    ]
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "~ gates.min_auc: 0.8 -> 0.81" in text
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in text


def test_training_param_change_trains_and_gates_promotions(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    plan = plan_json(applied)
    actions = {c["address"]: c["mlctl"]["verbs"] for c in plan["resource_changes"]}
    assert actions == {
        "model_version.churn-predictor": ["train"],
        "stage.churn-predictor.staging": ["promote"],
        "stage.churn-predictor.production": ["promote"],
        "endpoint.churn-api": ["deploy"],
    }
    train = next(c for c in plan["resource_changes"] if c["mlctl"]["verbs"] == ["train"])
    assert "training spec changed" in train["mlctl"]["reason"]
    assert any("max_depth: 8 -> 6" in line for line in train["mlctl"]["details"])
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "gated by: accuracy >= 0.75, auc >= 0.8" in text

    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    registry = state_of(applied)["models"]["churn-predictor"]
    assert registry["stages"] == {"staging": 2, "production": 2}
    assert [v["stage"] for v in registry["versions"]] == ["archived", "production"]


def test_spec_change_then_revert_reuses_the_old_version(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    runs = json.loads(invoke(applied, "runs", "list", "-e", "dev", "--json").stdout)
    edit(applied / MODELS, "max_depth: 6", "max_depth: 8")
    plan = plan_json(applied)
    actions = {c["address"]: c["mlctl"]["verbs"] for c in plan["resource_changes"]}
    assert actions["model_version.churn-predictor"] == ["update"]
    assert "train" not in json.dumps(actions)
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "reuses v1 (no training)" in result.stderr
    registry = state_of(applied)["models"]["churn-predictor"]
    assert registry["stages"] == {"staging": 1, "production": 1}
    assert len(registry["versions"]) == 2
    assert len(json.loads(invoke(applied, "runs", "list", "-e", "dev", "--json").stdout)) == len(runs)


def test_saved_plan_applies_exactly(applied: Path, tmp_path: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.79")
    planfile = tmp_path / "gate.plan"
    assert invoke(applied, "plan", "-e", "dev", "--out", str(planfile)).exit_code == 0
    result = invoke(applied, "apply", "-e", "dev", str(planfile))
    assert result.exit_code == 0, result.output
    assert state_of(applied)["resources"]["model.churn-predictor"]["spec"]["gates"]["min_auc"] == 0.79


def test_saved_plan_is_refused_when_state_moved(applied: Path, tmp_path: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.79")
    planfile = tmp_path / "gate.plan"
    assert invoke(applied, "plan", "-e", "dev", "--out", str(planfile)).exit_code == 0
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    before = (applied / "state" / "dev.json").read_text()
    result = invoke(applied, "apply", "-e", "dev", str(planfile))
    assert result.exit_code == 1
    assert "stale" in result.stderr and "serial" in result.stderr
    assert (applied / "state" / "dev.json").read_text() == before


def test_saved_plan_is_refused_when_config_or_data_changed(applied: Path, tmp_path: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.79")
    planfile = tmp_path / "gate.plan"
    assert invoke(applied, "plan", "-e", "dev", "--out", str(planfile)).exit_code == 0
    edit(applied / MODELS, "min_auc: 0.79", "min_auc: 0.78")
    result = invoke(applied, "apply", "-e", "dev", str(planfile))
    assert result.exit_code == 1 and "stale" in result.stderr

    edit(applied / MODELS, "min_auc: 0.78", "min_auc: 0.79")
    with (applied / "data" / "churn_outcomes.csv").open("a") as handle:
        handle.write("C999999,2026-06-01T00:00:00Z,No\n")
    result = invoke(applied, "apply", "-e", "dev", str(planfile))
    assert result.exit_code == 1
    assert "stale" in result.stderr and "churn_outcomes" in result.stderr


def test_gate_failure_rejects_the_version_and_keeps_production(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 2")
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.99")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1
    assert "rejected" in result.stderr and "min_auc" in result.stderr
    registry = state_of(applied)["models"]["churn-predictor"]
    assert registry["stages"] == {"staging": 1, "production": 1}
    rejected = registry["versions"][-1]
    assert rejected["status"] == "rejected" and rejected["version"] == 2
    failing = [g for g in rejected["gates"] if not g["passed"]]
    assert [g["gate"] for g in failing] == ["min_auc"]
    # Planning again does not retrain the rejected version; it says why staging stays.
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "fails its gates" in text and "No changes." in text


def test_lowering_a_gate_lets_a_rejected_version_in_without_training(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 2")
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.99")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 1
    edit(applied / MODELS, "min_auc: 0.99", "min_auc: 0.5")
    edit(applied / MODELS, "max_regression: 0.02", "max_regression: 0.5")
    edit(applied / MODELS, "min_accuracy: 0.75", "min_accuracy: 0.5")
    plan = plan_json(applied)
    actions = {c["address"]: c["mlctl"]["verbs"] for c in plan["resource_changes"]}
    assert actions["stage.churn-predictor.staging"] == ["promote"]
    assert "model_version.churn-predictor" not in actions


def test_failed_data_check_stops_training_and_names_the_check(applied: Path) -> None:
    labels = applied / "data" / "churn_labels.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:500]) + "\n")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1
    assert "min_rows" in result.stderr
    assert "training skipped" in result.stderr
    registry = state_of(applied)["models"]["churn-predictor"]
    assert len(registry["versions"]) == 1 and registry["stages"]["production"] == 1


def test_target_limits_the_plan(applied: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.81")
    edit(applied / "environments/dev/monitors.yaml", "threshold: 0.15", "threshold: 0.2")
    plan = plan_json(applied, "--target", "model.churn-predictor")
    assert [c["address"] for c in plan["resource_changes"]] == ["model.churn-predictor"]
    # As in Terraform, a target brings the resources it depends on along.
    plan = plan_json(applied, "--target", "monitor.churn-drift")
    assert [c["address"] for c in plan["resource_changes"]] == [
        "model.churn-predictor",
        "monitor.churn-drift",
    ]
    result = invoke(applied, "plan", "-e", "dev", "--target", "monitor.nope")
    assert result.exit_code == 1 and "no resource at address 'monitor.nope'" in result.stderr


def test_replace_retrains_the_same_version(applied: Path) -> None:
    plan = plan_json(applied, "--replace", "model_version.churn-predictor")
    assert any(c["mlctl"]["verbs"] == ["train"] for c in plan["resource_changes"])
    result = invoke(
        applied,
        "apply",
        "-e",
        "dev",
        "--auto-approve",
        "--replace",
        "model_version.churn-predictor",
    )
    assert result.exit_code == 0, result.output
    registry = state_of(applied)["models"]["churn-predictor"]
    assert [v["version"] for v in registry["versions"]] == [1]
    assert registry["next_version"] == 2


def test_tampered_artifact_is_reported_and_retrained(applied: Path) -> None:
    uri = state_of(applied)["models"]["churn-predictor"]["versions"][0]["artifact"]["uri"]
    with (applied / uri).open("ab") as handle:
        handle.write(b"evil")
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "Objects have changed outside of mlctl" in text
    assert "tampered" in text
    plan = plan_json(applied)
    retrain = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert retrain["mlctl"]["verbs"] == ["train"]
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_no_refresh_trusts_state(applied: Path) -> None:
    with (applied / "data" / "churn_labels.csv").open("a") as handle:
        handle.write("C999999,2026-06-01T00:00:00Z,No\n")
    assert invoke(applied, "plan", "-e", "dev", "--no-refresh", "--detailed-exitcode").exit_code == 0
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 2


def test_new_data_plans_a_check_and_a_new_version(applied: Path) -> None:
    with (applied / "data" / "churn_labels.csv").open("a") as handle:
        handle.write("C999999,2026-06-01T00:00:00Z,No\n")
    plan = plan_json(applied)
    actions = {c["address"]: c["mlctl"]["verbs"] for c in plan["resource_changes"]}
    assert actions["dataset.churn_labels"] == ["check"]
    assert actions["model_version.churn-predictor"] == ["train"]
    train = next(c for c in plan["resource_changes"] if c["mlctl"]["verbs"] == ["train"])
    assert train["mlctl"]["reason"] == "data changed: churn_labels"
    assert plan["resource_drift"][0]["address"] == "dataset.churn_labels"


def test_markdown_format(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    out = invoke(applied, "plan", "-e", "dev", "--format", "markdown").stdout
    assert out.startswith("<!-- mlctl-plan -->\n## mlctl plan: `dev`")
    assert "<details>" in out and "| * train | 1 |" in out


def test_secrets_never_reach_state_or_plans(applied: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLCTL_TEST_TEAM", "s3cr3t-value")
    edit(applied / MODELS, "team: growth", "team: ${MLCTL_TEST_TEAM}")
    planfile = tmp_path / "secret.plan"
    result = invoke(applied, "plan", "-e", "dev", "--out", str(planfile))
    assert result.exit_code == 0
    assert "s3cr3t-value" not in result.stdout and "${MLCTL_TEST_TEAM}" in result.stdout
    assert "s3cr3t-value" not in planfile.read_text()
    assert invoke(applied, "apply", "-e", "dev", str(planfile)).exit_code == 0
    assert "s3cr3t-value" not in (applied / "state" / "dev.json").read_text()
    # A new secret value is not a configuration change.
    monkeypatch.setenv("MLCTL_TEST_TEAM", "rotated")
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_same_size_tampering_is_detected(applied: Path) -> None:
    uri = state_of(applied)["models"]["churn-predictor"]["versions"][0]["artifact"]["uri"]
    path = applied / uri
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "tampered" in text
