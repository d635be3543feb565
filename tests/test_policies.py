"""Policies on the plan: ``policies/*.rego`` evaluated on the JSON plan (mlctl.plan.policy).

The example policies mlctl ships (``src/mlctl/example/files/policies``, copied by ``mlctl
init`` and kept in the project's own ``policies/``) each get a deny case and an allow case on
hand-made JSON plans; a real plan of the example shows a denial with its file:line in text and
in the PR comment, a saved plan with a denial is refused by apply (one line, exit 1, no state),
and a broken policy is one line naming file:line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import invoke
from mlctl.example.init import template_root
from mlctl.plan.policy import PolicyContext, PolicyError, PolicyFinding, evaluate_policies

SHIPPED = Path(str(template_root())) / "policies"
PROJECT = Path(__file__).resolve().parents[1] / "policies"


def policy_repo(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(SHIPPED / name, folder / name)
    return tmp_path


def change(address: str, actions: list[str], before: Any = None, after: Any = None) -> dict[str, Any]:
    kind, name = address.split(".")[0], address.split(".")[1]
    return {
        "address": address,
        "type": kind,
        "name": name,
        "change": {"actions": actions, "before": before, "after": after},
    }


def document(env: str, *changes: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": "1.2", "resource_changes": list(changes), "mlctl": {"environment": env}}


def model(team: str | None = "growth", production: str | None = "staging", **gates: float) -> dict[str, Any]:
    return {
        "tags": {"team": team} if team else {},
        "gates": gates,
        "stages": {"staging": "latest", "production": production},
    }


def findings(repo: Path, doc: dict[str, Any], **context: Any) -> list[PolicyFinding]:
    return evaluate_policies(repo, doc, PolicyContext(**context))


def line_of(name: str, head: str) -> int:
    lines = (SHIPPED / name).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.startswith(head))


def test_project_policies_are_the_shipped_ones() -> None:
    assert sorted(p.name for p in PROJECT.glob("*.rego")) == sorted(p.name for p in SHIPPED.glob("*.rego"))
    for path in SHIPPED.glob("*.rego"):
        assert (PROJECT / path.name).read_text() == path.read_text()


def test_a_production_pin_without_max_regression_is_denied_at_its_rule(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "production_gates.rego")
    doc = document("prod", change("stage.churn.production", ["update"]))
    [found] = findings(repo, doc, models={"churn": model(min_auc=0.9)})
    assert found.kind == "deny" and found.message.startswith(
        "model.churn serves production but has no max_regression"
    )
    assert (found.file, found.line) == (
        "policies/production_gates.rego",
        line_of("production_gates.rego", "deny"),
    )
    assert str(found).startswith("policy policies/production_gates.rego:")


def test_a_production_pin_with_max_regression_passes(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "production_gates.rego")
    doc = document("prod", change("stage.churn.production", ["update"]))
    assert findings(repo, doc, models={"churn": model(min_auc=0.9, max_regression=0.01)}) == []
    assert findings(repo, doc, models={"churn": model(production="none", min_auc=0.9)}) == []


def test_destroying_a_model_or_endpoint_serving_production_is_denied(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "protect_production.rego")
    doc = document(
        "prod",
        change("model.churn", ["delete"], before={"stages": {"production": "staging"}}),
        change("endpoint.churn-api", ["delete"], before={"model": "churn", "stage": "production"}),
    )
    found = findings(repo, doc)
    assert [f.message for f in found] == [
        "model.churn serves production and may not be destroyed",
        "endpoint.churn-api serves production and may not be destroyed",
    ]
    heads = [
        i
        for i, line in enumerate((SHIPPED / "protect_production.rego").read_text().splitlines(), 1)
        if line.startswith("deny")
    ]
    assert [f.line for f in found] == heads  # each message at the rule that produced it


def test_destroying_a_model_out_of_production_passes(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "protect_production.rego")
    doc = document(
        "prod",
        change("model.old", ["delete"], before={"stages": {"production": "none"}}),
        change("model.churn", ["update"], before={"stages": {"production": "staging"}}),
    )
    assert findings(repo, doc) == []


def test_only_the_labeled_team_may_change_prod(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "team_labels.rego")
    doc = document("prod", change("model_version.churn", ["update"]))
    models = {"churn": model(team="growth")}
    [denied] = findings(repo, doc, labels=("risk",), models=models)
    assert denied.kind == "deny"
    assert (
        denied.message
        == "model.churn (team: growth) changes in prod, but the pull request is not labeled growth"
    )
    assert findings(repo, doc, labels=("growth", "urgent"), models=models) == []
    assert findings(repo, doc, labels=None, models=models) == []  # not a pull request: no restriction
    assert (
        findings(repo, document("dev", change("model_version.churn", ["update"])), labels=(), models=models)
        == []
    )


def test_an_untagged_model_is_a_warning(tmp_path: Path) -> None:
    repo = policy_repo(tmp_path, "team_labels.rego")
    doc = document("prod", change("model_version.churn", ["update"]))
    found = findings(repo, doc, models={"churn": model(team=None)})
    assert [(f.kind, f.line) for f in found] == [("warn", line_of("team_labels.rego", "warn"))]


def test_a_broken_policy_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "bad.rego").write_text(
        "package bad\n\nimport rego.v1\n\ndeny contains msg if {\n  msg := 1 +\n}\n"
    )
    with pytest.raises(PolicyError) as caught:
        findings(tmp_path, document("dev"))
    message = str(caught.value)
    assert message.startswith("policies/bad.rego:6: ") and "\n" not in message


def test_no_policies_no_findings(tmp_path: Path) -> None:
    assert findings(tmp_path, document("dev")) == []


@pytest.mark.slow
def test_a_denied_plan_shows_the_rule_and_apply_refuses_it(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "prod.plan"
    result = invoke(repo, "plan", "-e", "prod", "--label", "risk", "--out", str(out))
    assert result.exit_code == 0, result.output
    line = line_of("team_labels.rego", "deny")
    assert (
        f"Error: policy policies/team_labels.rego:{line}: model.churn-predictor (team: growth)"
        in result.output
    )
    comment = invoke(repo, "plan", "-e", "prod", "--no-refresh", "--label", "risk", "--format", "markdown")
    assert (
        f"policies/team_labels.rego:{line}" in comment.output and "**Would block apply:**" in comment.output
    )
    document = json.loads(
        invoke(repo, "plan", "-e", "prod", "--no-refresh", "--format", "json", "--label", "risk").output
    )
    assert document["applyable"] is False and document["mlctl"]["blocking"]
    refused = invoke(repo, "apply", "-e", "prod", str(out))
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "refusing to apply: 1 policy denial" in refused.output
    assert not (repo / "state" / "prod.json").exists()
    labeled = invoke(repo, "plan", "-e", "prod", "--no-refresh", "--label", "growth")
    assert labeled.exit_code == 0 and "policies/" not in labeled.output


def test_a_broken_policy_fails_plan_with_one_line(repo: Path) -> None:
    (repo / "policies" / "broken.rego").write_text("package broken\n\ndeny contains msg if {\n")
    result = invoke(repo, "plan", "-e", "dev", "--no-refresh")
    assert result.exit_code == 1
    assert result.output.startswith("Error: policies/broken.rego:") and result.output.count("\n") == 1
