"""The JSON plan has Terraform's shape, so tools written for Terraform plans read it unchanged.

A Rego policy written the way teams write them for ``terraform show -json`` output (deny the
delete of anything whose address starts with ``model.``) is evaluated by an embedded Rego
engine (regopy: Microsoft's rego-cpp) against mlctl's JSON plan, without a word changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.plan.render import plan_json, render_json, terraform_actions
from plan.world import FakeReality, applied_state, load, plan, write_repo

# Written for Terraform plans (input.resource_changes[_].change.actions), not for mlctl.
TERRAFORM_POLICY = """
package terraform.protect

import rego.v1

deny contains msg if {
    rc := input.resource_changes[_]
    startswith(rc.address, "model.")
    rc.change.actions[_] == "delete"
    msg := sprintf("%s may not be destroyed", [rc.address])
}
"""


def deny(document: dict[str, Any], policy: str = TERRAFORM_POLICY) -> list[str]:
    """``data.terraform.protect.deny`` of ``policy`` evaluated on ``document``."""
    from regopy import Interpreter  # a dev dependency: rego-cpp's Python bindings

    interpreter = Interpreter()
    interpreter.add_module("protect.rego", policy)
    interpreter.set_input_term(json.dumps(document))
    output = json.loads(str(interpreter.query("data.terraform.protect.deny")))
    [expression] = output["expressions"]
    return sorted(expression)


def removed_model(root: Path) -> Plan:
    """The world's environment after its model (and what serves or watches it) left git."""
    state = applied_state(load(write_repo(root)))
    for name in ("models.yaml", "deployments.yaml", "monitors.yaml"):
        (root / "environments" / "dev" / name).unlink()
    return plan(load(root), state, FakeReality())


def test_a_terraform_policy_denies_destroying_a_model_unchanged(tmp_path: Path) -> None:
    document = plan_json(removed_model(tmp_path / "repo"))
    deleted = [c["address"] for c in document["resource_changes"] if c["change"]["actions"] == ["delete"]]
    assert "model.churn" in deleted
    assert deny(document) == ["model.churn may not be destroyed"]


def test_the_same_policy_passes_a_plan_that_trains_and_promotes(tmp_path: Path) -> None:
    document = plan_json(plan(load(write_repo(tmp_path / "repo")), None, FakeReality()))
    assert document["resource_changes"]
    assert deny(document) == []


def test_every_change_has_terraforms_fields(tmp_path: Path) -> None:
    document = json.loads(render_json(plan(load(write_repo(tmp_path / "repo")), None, FakeReality())))
    assert document["format_version"].split(".")[0] == "1"
    assert document["resource_drift"] == []
    for rc in document["resource_changes"]:
        assert {"address", "mode", "type", "name", "provider_name", "change", "mlctl"} <= set(rc)
        assert set(rc["change"]) == {
            "actions",
            "before",
            "after",
            "after_unknown",
            "before_sensitive",
            "after_sensitive",
        }
        assert rc["change"]["actions"] in (
            ["no-op"],
            ["create"],
            ["read"],
            ["update"],
            ["delete", "create"],
            ["create", "delete"],
            ["delete"],
        )
    summary = document["mlctl"]["summary"]
    assert summary and document["mlctl"]["summary_line"].startswith("Plan: ")


def test_values_known_after_apply_are_left_out_of_after_and_marked(tmp_path: Path) -> None:
    document = plan_json(plan(load(write_repo(tmp_path / "repo")), None, FakeReality()))
    train = next(c for c in document["resource_changes"] if c["mlctl"]["verbs"] == ["train"])
    assert train["change"]["after_unknown"] == {"version": True, "metrics": True}
    assert "version" not in train["change"]["after"] and "metrics" not in train["change"]["after"]
    assert "(known after apply)" not in json.dumps(train["change"])


def test_a_partly_known_value_keeps_its_known_part() -> None:
    window = change(["materialize"], {"watermark": "t0"}, {"window": {"start": "t0", "end": UNKNOWN}})
    made = Plan(environment="dev", created_at="t", spec_digest="d", resource_changes=[window])
    rc = plan_json(made)["resource_changes"][0]["change"]
    assert rc["after"] == {"window": {"start": "t0"}}
    assert rc["after_unknown"] == {"window": {"end": True}}


def test_drift_found_by_refresh_is_resource_drift(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    reality = FakeReality()
    reality.live["api"] = {"model": "churn", "version": 4}
    document = plan_json(plan(load(root), applied_state(load(root)), reality))
    [drift] = document["resource_drift"]
    assert drift["address"] == "endpoint.api"
    assert drift["change"]["actions"] == ["update"]
    assert drift["change"]["before"] == {"version": 1} and drift["change"]["after"] == {"version": 4}
    assert "another version" in drift["mlctl"]["reason"]


def change(actions: list[str], before: Any = None, after: Any = None, **kw: Any) -> ResourceChange:
    return ResourceChange(
        address="x.y", type="x", name="y", actions=actions, before=before, after=after, **kw
    )


@pytest.mark.parametrize(
    ("actions", "before", "expected"),
    [
        (["create"], None, ["create"]),
        (["create", "check"], None, ["create"]),
        (["create", "materialize"], None, ["create"]),
        (["update"], {"a": 1}, ["update"]),
        (["update", "materialize"], {"a": 1}, ["update"]),
        (["delete"], {"a": 1}, ["delete"]),
        (["delete", "create"], {"a": 1}, ["delete", "create"]),
        (["create", "delete"], {"a": 1}, ["create", "delete"]),
        (["train"], None, ["create"]),  # the first version of a model
        (["train"], {"version": 1}, ["update"]),  # a new version; v1 stays in the registry
        (["promote"], {"version": 1}, ["update"]),
        (["archive"], {"version": 1}, ["update"]),  # archived versions stay loadable
        (["deploy"], None, ["create"]),
        (["deploy"], {"version": 1}, ["update"]),
        (["materialize"], {"watermark": "t"}, ["update"]),
        (["rollback"], {"version": 2}, ["update"]),
        (["check"], {"fingerprint": "a"}, ["read"]),
    ],
)
def test_ml_verbs_map_onto_terraforms_actions(actions: list[str], before: Any, expected: list[str]) -> None:
    assert terraform_actions(change(actions, before, {"a": 2})) == expected


def test_secret_values_are_marked_sensitive_and_never_shown() -> None:
    secret = change(
        ["update"],
        before={"url": "redis://${REDIS_PASSWORD}@cache:6379", "db": 0, "nested": {"token": "${TOKEN}"}},
        after={"url": "redis://${REDIS_PASSWORD}@cache:6380", "db": 0, "nested": {"token": "${TOKEN}"}},
        reason="url changed: redis://${REDIS_PASSWORD}@cache",
        details=["~ url: redis://${REDIS_PASSWORD}@cache:6379 -> redis://${REDIS_PASSWORD}@cache:6380"],
    )
    made = Plan(environment="dev", created_at="t", spec_digest="d", resource_changes=[secret])
    text = render_json(made)
    assert "${" not in text and "REDIS_PASSWORD" not in text and "TOKEN}" not in text
    rc = json.loads(text)["resource_changes"][0]["change"]
    assert rc["before_sensitive"] == {"url": True, "nested": {"token": True}}
    assert rc["after_sensitive"] == {"url": True, "nested": {"token": True}}
    assert rc["after"]["url"] == "(sensitive)" and rc["after"]["db"] == 0


def test_a_value_from_an_environment_variable_is_sensitive_end_to_end(tmp_path: Path) -> None:
    from mlctl.spec.loader import load_environment
    from plan.world import edit

    root = write_repo(tmp_path / "repo")
    edit(root, "models.yaml", "tags: {team: growth}", 'tags: {team: growth, owner: "${OWNER}"}')
    spec = load_environment(root, "dev", environ={"OWNER": "alice-the-owner"})
    text = render_json(plan(spec, None, FakeReality()))
    assert "alice-the-owner" not in text and "${OWNER}" not in text
    model = next(c for c in json.loads(text)["resource_changes"] if c["address"] == "model.churn")
    assert model["change"]["after"]["tags"] == {"team": "growth", "owner": "(sensitive)"}
    assert model["change"]["after_sensitive"] == {"tags": {"owner": True}}
    assert model["change"]["before_sensitive"] is False


def test_nothing_sensitive_is_false_or_empty() -> None:
    rc = plan_json(
        Plan(
            environment="dev",
            created_at="t",
            spec_digest="d",
            resource_changes=[change(["create"], None, {"a": 1})],
        )
    )["resource_changes"][0]["change"]
    assert rc["before_sensitive"] is False and rc["after_sensitive"] == {}


def test_gate_verdicts_are_documented_extra_fields(tmp_path: Path) -> None:
    document = plan_json(plan(load(write_repo(tmp_path / "repo")), None, FakeReality()))
    train = next(c for c in document["resource_changes"] if c["mlctl"]["verbs"] == ["train"])
    assert train["mlctl"]["gates"]["status"] == "pending"
    assert train["mlctl"]["gates"]["checks"]

    evaluated = change(
        ["train"],
        before={"version": 1},
        after={
            "evaluation": {
                "passed": False,
                "gates": [
                    {
                        "gate": "min_auc",
                        "metric": "auc",
                        "op": ">=",
                        "threshold": 0.9,
                        "value": 0.8,
                        "passed": False,
                    }
                ],
            }
        },
        blocking=["fails gate min_auc"],
    )
    made = Plan(environment="dev", created_at="t", spec_digest="d", resource_changes=[evaluated])
    document = plan_json(made)
    gates = document["resource_changes"][0]["mlctl"]["gates"]
    assert gates["status"] == "failed" and gates["results"][0]["value"] == 0.8
    assert document["applyable"] is False and document["mlctl"]["blocking"] == ["fails gate min_auc"]


def test_plan_cli_json_is_the_terraform_shape(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlctl.cli.main import cli

    root = write_repo(tmp_path / "repo")
    args = ["-C", str(root), "plan", "-e", "dev", "--format", "json", "--no-refresh"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format_version"] and document["resource_changes"][0]["change"]["actions"]
    assert "\033[" not in result.stdout
