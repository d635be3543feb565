"""plan and apply end to end on the example repository, through the CLI: what the commands
themselves do (exit codes, --detailed-exitcode, one-line errors, no state written on error,
flags reaching the planner and the executor, files on disk). What the planner and the executor
decide is asserted by the unit tests in tests/plan and tests/engine, in milliseconds; the tests
that repeated them here with real training were removed (real training through the CLI still
runs in test_cli_rollback, test_history, test_k8s_* and others):

- test_plan_json_shape: tests/plan/test_golden.py::test_rendered_plans[first_plan] (the whole
  JSON plan, format_version included) and test_plan_json.py::test_plan_cli_json_is_the_terraform_shape
- test_changing_only_a_gate_is_one_update_of_the_model:
  tests/plan/test_actions.py::test_only_a_gate_changed_is_one_update_of_the_model_and_no_training,
  tests/plan/test_golden.py::test_rendered_plans[gate_only]
- test_training_param_change_trains_and_gates_promotions:
  tests/plan/test_actions.py::test_a_training_change_trains_and_rolls_the_new_version_out,
  tests/engine/test_executor.py::test_new_training_spec_trains_v2_promotes_it_and_reverting_reuses_v1
  ("gated by:" text: tests/plan/golden/first_plan.txt)
- test_spec_change_then_revert_reuses_the_old_version:
  tests/plan/test_actions.py::test_reverting_the_spec_reuses_the_earlier_version_without_training,
  tests/engine/test_executor.py::test_new_training_spec_trains_v2_promotes_it_and_reverting_reuses_v1
  (which now also pins the "reuses v1 (no training)" line)
- test_saved_plan_is_refused_when_config_or_data_changed:
  tests/engine/test_saved_plans.py::test_a_saved_plan_is_refused_once_the_configuration_changed
  and ::test_a_saved_plan_is_refused_once_the_data_changed (no state written); the CLI's exit 1
  and one line for a stale plan: test_saved_plan_applies_exactly_once below
- test_gate_failure_rejects_the_version_and_keeps_production and
  test_lowering_a_gate_lets_a_rejected_version_in_without_training:
  tests/engine/test_executor.py::test_a_version_failing_its_gates_is_kept_but_never_promoted_nor_retrained;
  apply's exit 1 on a failed action: test_failed_data_check_stops_training_and_names_the_check
- test_replace_retrains_the_same_version (apply part):
  tests/engine/test_executor.py::test_a_replaced_version_is_trained_again_in_place,
  tests/plan/test_refresh.py::test_replace_forces_the_action_on_an_unchanged_resource; the flag
  on both commands: test_replace_reaches_plan_and_apply below
- test_tampered_artifact_is_reported_and_retrained (apply part):
  tests/engine/test_executor.py::test_a_tampered_artifact_is_retrained_under_the_same_version_number,
  tests/plan/test_golden.py::test_rendered_plans[tampered_artifact]; real detection by the
  local store: test_tampering_is_detected_even_at_the_same_size below
- test_new_data_plans_a_check_and_a_new_version:
  tests/plan/test_actions.py::test_new_data_checks_the_dataset_rematerializes_and_retrains,
  tests/plan/test_refresh.py::test_changed_data_is_reported_as_drift_with_both_fingerprints;
  real fingerprinting through the CLI: test_no_refresh_trusts_state
- test_saved_plan_applies_exactly + test_saved_plan_is_refused_when_state_moved: merged
"""

from __future__ import annotations

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


def test_saved_plan_applies_exactly_once(applied: Path, tmp_path: Path) -> None:
    edit(applied / MODELS, "min_auc: 0.80", "min_auc: 0.79")
    planfile = tmp_path / "gate.plan"
    assert invoke(applied, "plan", "-e", "dev", "--out", str(planfile)).exit_code == 0
    result = invoke(applied, "apply", "-e", "dev", str(planfile))  # no confirmation asked
    assert result.exit_code == 0, result.output
    assert state_of(applied)["resources"]["model.churn-predictor"]["spec"]["gates"]["min_auc"] == 0.79
    # Its own apply moved the state: the same file is now stale, refused in one line.
    before = (applied / "state" / "dev.json").read_text()
    result = invoke(applied, "apply", "-e", "dev", str(planfile))
    assert result.exit_code == 1
    assert "stale" in result.stderr and "serial" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert (applied / "state" / "dev.json").read_text() == before


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


def test_no_refresh_trusts_state(applied: Path) -> None:
    with (applied / "data" / "churn_labels.csv").open("a") as handle:
        handle.write("C999999,2026-06-01T00:00:00Z,No\n")
    assert invoke(applied, "plan", "-e", "dev", "--no-refresh", "--detailed-exitcode").exit_code == 0
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 2


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


def test_replace_reaches_plan_and_apply(applied: Path) -> None:
    plan = plan_json(applied, "--replace", "model_version.churn-predictor")
    assert any(c["mlctl"]["verbs"] == ["train"] for c in plan["resource_changes"])
    checked = state_of(applied)["resources"]["dataset.churn_labels"]["status"]["checked_at"]
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve", "--replace", "dataset.churn_labels")
    assert result.exit_code == 0, result.output
    assert "Apply complete! 1 applied, 0 failed, 0 skipped." in result.stdout
    assert state_of(applied)["resources"]["dataset.churn_labels"]["status"]["checked_at"] != checked


def test_tampering_is_detected_even_at_the_same_size(applied: Path) -> None:
    uri = state_of(applied)["models"]["churn-predictor"]["versions"][0]["artifact"]["uri"]
    path = applied / uri
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "Objects have changed outside of mlctl" in text
    assert "tampered" in text
    plan = plan_json(applied)
    retrain = next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")
    assert retrain["mlctl"]["verbs"] == ["train"]
