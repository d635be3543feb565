"""Diagnostics as values: warnings, policy findings and monitor failures are
:class:`~mlctl.errors.Diagnostic`s with a severity and an address, read the way their lines
always read, and render through the one view (:mod:`mlctl.plan.diagnostics`) as text or JSON.
Plans saved before warnings were diagnostics still load."""

from __future__ import annotations

import json
from pathlib import Path

from mlctl.errors import ConfigError, Diagnostic, MlctlError
from mlctl.monitor.findings import ActionResult, MonitorResult
from mlctl.monitor.run import RolloutOutcome, RunResult
from mlctl.plan.diagnostics import diagnostics_of, render_diagnostics
from mlctl.plan.model import Plan, RolloutStep
from mlctl.plan.policy import PolicyError, PolicyFinding
from mlctl.plan.render import plan_json, render_markdown, render_text


def policy_plan() -> Plan:
    deny = PolicyFinding("deny", "model.churn may not be destroyed", "policies/protect.rego", 7, "protect")
    warn = PolicyFinding("warn", "model.churn has no team tag", "policies/teams.rego", 12, "teams")
    held = Diagnostic(
        "40 new rows since v1 was trained",
        path="model_version.churn",
        severity="warning",
        address="model_version.churn",
    )
    return Plan(
        environment="dev",
        created_at="t",
        spec_digest="x",
        warnings=[held, warn.diagnostic()],
        policies=[deny.diagnostic(), warn.diagnostic()],
    )


def test_a_policy_finding_is_a_diagnostic_that_reads_as_before() -> None:
    finding = PolicyFinding("deny", "no max_regression", "policies/gates.rego", 5, "gates")
    diagnostic = finding.diagnostic()
    assert str(diagnostic) == str(finding) == "policy policies/gates.rego:5: no max_regression"
    assert (diagnostic.severity, diagnostic.file, diagnostic.line, diagnostic.subject) == (
        "error",
        "policies/gates.rego",
        5,
        "policy",
    )
    assert PolicyFinding("warn", "m", "policies/a.rego", 1, "a").diagnostic().severity == "warning"


def test_a_broken_policy_is_a_config_error_with_one_located_diagnostic() -> None:
    error = PolicyError(Diagnostic("unexpected end of input", file="policies/bad.rego", line=6))
    assert isinstance(error, ConfigError)
    assert str(error) == "policies/bad.rego:6: unexpected end of input"
    assert (
        render_diagnostics(diagnostics_of(error)) == "Error: policies/bad.rego:6: unexpected end of input\n"
    )


def test_plan_text_shows_warnings_and_denials_as_it_always_did() -> None:
    made = policy_plan()
    lines = render_text(made).splitlines()
    assert lines[-5:] == [
        "Warning: model_version.churn: 40 new rows since v1 was trained",
        "Warning: policy policies/teams.rego:12: model.churn has no team tag",
        "Error: policy policies/protect.rego:7: model.churn may not be destroyed (apply is refused)",
        "",
        "No changes. The environment matches the configuration.",
    ]
    assert made.blocking == ["policy policies/protect.rego:7: model.churn may not be destroyed"]
    assert "> :warning: policy policies/teams.rego:12: model.churn has no team tag" in render_markdown(made)


def test_plan_json_lists_warnings_and_denials_as_diagnostics() -> None:
    document = plan_json(policy_plan())
    assert document["errored"] is False and document["applyable"] is False
    assert [(d["severity"], d["address"], d["subject"], d["range"]) for d in document["diagnostics"]] == [
        ("warning", "model_version.churn", None, None),
        ("warning", None, "policy", {"filename": "policies/teams.rego", "start": {"line": 12}}),
        ("error", None, "policy", {"filename": "policies/protect.rego", "start": {"line": 7}}),
    ]
    # mlctl.warnings keeps its documented shape: the warning lines as strings
    assert document["mlctl"]["warnings"] == [d["message"] for d in document["diagnostics"][:2]]


def test_plan_json_diagnostics_mask_secrets() -> None:
    made = Plan(
        environment="dev",
        created_at="t",
        spec_digest="x",
        warnings=[Diagnostic("bucket s3://${BUCKET}/x is slow", severity="warning")],
    )
    [diagnostic] = plan_json(made)["diagnostics"]
    assert diagnostic["summary"] == "bucket (sensitive) is slow" and "${" not in json.dumps(diagnostic)


def test_a_saved_plan_round_trips_and_one_from_before_diagnostics_loads(tmp_path: Path) -> None:
    made = policy_plan()
    made.save(tmp_path / "new.plan")
    assert Plan.load(tmp_path / "new.plan") == made

    old = json.loads((tmp_path / "new.plan").read_text())
    old["format_version"] = "1.0"
    old["warnings"] = ["model_version.churn: 40 new rows since v1 was trained"]
    old["policies"] = [{"kind": "deny", "message": "no", "file": "policies/p.rego", "line": 3}]
    (tmp_path / "old.plan").write_text(json.dumps(old))
    loaded = Plan.load(tmp_path / "old.plan")
    assert loaded.warnings == [
        Diagnostic("model_version.churn: 40 new rows since v1 was trained", severity="warning")
    ]
    assert [str(d) for d in loaded.denials] == ["policy policies/p.rego:3: no"]
    assert render_text(loaded).splitlines()[0] == (
        "Warning: model_version.churn: 40 new rows since v1 was trained"
    )


def test_render_diagnostics_text_and_json_agree() -> None:
    diagnostics = [
        Diagnostic(
            "unknown key 'tset_size'",
            "models.m.training.tset_size",
            "e/dev/m.yaml",
            9,
            "did you mean 'test_size'?",
        ),
        Diagnostic("stays at v1", path="stage.m.staging", severity="warning", address="stage.m.staging"),
    ]
    text = render_diagnostics(diagnostics, "text")
    assert text == (
        "Error: e/dev/m.yaml:9: models.m.training.tset_size: unknown key 'tset_size' "
        "(did you mean 'test_size'?)\n"
        "Warning: stage.m.staging: stays at v1\n"
    )
    document = json.loads(render_diagnostics(diagnostics, "json"))
    assert (document["valid"], document["errored"], document["error_count"], document["warning_count"]) == (
        False,
        True,
        1,
        1,
    )
    assert [f"{d['severity'].title()}: {d['message']}" for d in document["diagnostics"]] == text.splitlines()
    assert document["diagnostics"][0]["detail"] == "did you mean 'test_size'?"
    assert json.loads(render_diagnostics([diagnostics[1]], "json"))["valid"] is True
    assert render_diagnostics([], "text") == ""


def test_an_error_without_diagnostics_is_one_diagnostic_per_line() -> None:
    assert diagnostics_of(MlctlError("first\nsecond")) == [Diagnostic("first"), Diagnostic("second")]
    assert diagnostics_of(ConfigError([])) == [Diagnostic("ConfigError")]


def test_a_monitor_run_reports_structured_diagnostics() -> None:
    broken = MonitorResult(name="drift", kind="drift", model="churn", status="error", summary="no data")
    fired = MonitorResult(
        name="quality",
        kind="quality",
        model="churn",
        status="ok",
        summary="fine",
        actions=[ActionResult("alert", False, "webhook refused"), ActionResult("retrain", False, "held")],
    )
    step = RolloutStep(
        endpoint="api", model="churn", strategy="canary", candidate_stage="staging", error="log gone"
    )
    run = RunResult(
        environment="dev",
        time="t",
        results=[broken, fired],
        exports=[ActionResult("pushgateway", False, "refused")],
        rollouts=[RolloutOutcome(step)],
    )
    assert [(str(d), d.address, d.severity) for d in run.diagnostics] == [
        ("monitor drift: no data", "monitor.drift", "error"),
        ("monitor quality: alert failed: webhook refused", "monitor.quality", "error"),
        ("pushgateway failed: refused", None, "error"),
        ("rollout api: log gone", "endpoint.api", "error"),
    ]
    assert run.errors == [str(d) for d in run.diagnostics]
