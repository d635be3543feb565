"""Golden files pin what users read: the text and JSON plans of fixed cases, and the
diagnostics of bad configurations as the CLI's error boundary prints them.

After an intended change of the output, rewrite them and review the diff:

    MLCTL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/plan -q && git diff tests/plan/golden
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlctl import redaction
from mlctl.cli.boundary import error_boundary
from mlctl.errors import MlctlError
from mlctl.plan.diagnostics import diagnostics_of, render_diagnostics
from mlctl.plan.model import Plan, ResourceChange
from mlctl.plan.render import render_json, render_text
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import State
from plan.world import FakeReality, applied_state, edit, load, plan, write_repo

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str, text: str) -> None:
    """Compare ``text`` with golden/NAME exactly (MLCTL_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / name
    if os.environ.get("MLCTL_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path} (run with MLCTL_UPDATE_GOLDEN=1)"
    assert text == path.read_text(), f"{name} changed (MLCTL_UPDATE_GOLDEN=1 rewrites it; review the diff)"


def first_plan(root: Path) -> Plan:
    return plan(load(root), None, FakeReality())


def retrain_with_drift(root: Path) -> Plan:
    """A training change on top of new labels, an endpoint serving something else, a new tag
    and a removed monitor: drift heading, details, warnings-free summary with every verb."""
    state = applied_state(load(root))
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5, max_iter: 200}")
    edit(root, "models.yaml", "tags: {team: growth}", "tags: {team: growth, owner: ana}")
    (root / "environments" / "dev" / "monitors.yaml").unlink()
    reality = FakeReality()
    reality.fingerprints["labels"] = "sha256:" + "3" * 64
    reality.live["api"] = {"model": "churn", "version": 4}
    return plan(load(root), state, reality)


def gate_only(root: Path) -> Plan:
    state = applied_state(load(root))
    edit(root, "models.yaml", "min_auc: 0.8", "min_auc: 0.95")
    return plan(load(root), state, FakeReality())


def tampered(root: Path) -> Plan:
    state = applied_state(load(root))
    artifact = state.models["churn"].versions[0].artifact
    assert artifact is not None
    return plan(load(root), state, FakeReality(artifacts={artifact.uri: "tampered"}))


def no_changes(root: Path) -> Plan:
    spec = load(root)
    return plan(spec, applied_state(spec), FakeReality())


CASES: dict[str, Callable[[Path], Plan]] = {
    "first_plan": first_plan,
    "retrain_with_drift": retrain_with_drift,
    "gate_only": gate_only,
    "tampered_artifact": tampered,
    "no_changes": no_changes,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_plans(case: str, tmp_path: Path) -> None:
    made = CASES[case](write_repo(tmp_path / "repo"))
    golden(f"{case}.txt", render_text(made))
    golden(f"{case}.json", render_json(made))


@pytest.mark.parametrize(
    "order",
    [
        ["create", "check", "update", "materialize"],
        ["materialize", "update", "check", "create"],
        ["check", "materialize", "create", "update"],
        ["update", "create", "materialize", "check"],
        ["train", "deploy", "promote", "archive"],
    ],
)
def test_json_summary_follows_the_plan_not_the_hash_seed(order: list[str]) -> None:
    """Python randomizes string hashing per process, so anything rendered from a set flaps
    between runs (and between CI diffs of saved plans); the counts follow the plan's order."""
    change = ResourceChange(address="dataset.d", type="dataset", name="d", actions=order)
    made = Plan(environment="dev", created_at="t", spec_digest="x", resource_changes=[change])
    assert list(json.loads(render_json(made))["mlctl"]["summary"]) == order


# -- diagnostics --------------------------------------------------------------------------


def printed(capsys: pytest.CaptureFixture[str], action: Callable[[], object]) -> str:
    """What the CLI's error boundary prints (stderr) when ``action`` raises; it must exit 1."""
    with pytest.raises(SystemExit) as caught, error_boundary():
        action()
    assert caught.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def as_json(action: Callable[[], object]) -> str:
    """The JSON view of the diagnostics ``action`` raises (what ``plan``/``validate --format
    json`` print on stdout), made inside a redaction scope as the CLI makes it; its diagnostics
    must read as the text view's lines."""
    with redaction.scope(), pytest.raises(MlctlError) as caught:
        action()
    text = render_diagnostics(diagnostics_of(caught.value), "text")
    document = json.loads(render_diagnostics(diagnostics_of(caught.value), "json"))
    assert document["errored"] is True and document["valid"] is False
    assert [f"Error: {d['message']}" for d in document["diagnostics"]] == text.splitlines()
    return render_diagnostics(diagnostics_of(caught.value), "json")


def test_diagnostics_of_schema_errors_in_several_files(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 1.0}\n      test_sise: 0.3")
    edit(root, "deployments.yaml", "stage: production}", "stage: production, replicas: 0}")
    edit(root, "data.yaml", "orders: int", "orders: integer")
    golden("diagnostics_schema.txt", printed(capsys, lambda: load(root)))
    golden("diagnostics_schema.json", as_json(lambda: load(root)))


def test_diagnostics_of_broken_references(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(root, "models.yaml", "cf:value]", "cf:valeu]")
    edit(root, "deployments.yaml", "model: churn", "model: chrun")
    edit(root, "monitors.yaml", "model: churn", "model: churm")
    golden("diagnostics_references.txt", printed(capsys, lambda: load(root)))


def test_diagnostics_of_a_name_defined_twice(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "environments" / "dev" / "more.yaml").write_text(
        "entities:\n  customer: {join_key: cid, value_type: string}\n"
    )
    golden("diagnostics_duplicate.txt", printed(capsys, lambda: load(root)))


def test_diagnostics_of_a_secret_never_show_its_value(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(root, "deployments.yaml", "stage: production}", "stage: production, replicas: '${REPLICAS}'}")
    from mlctl.spec.loader import load_environment

    text = printed(capsys, lambda: load_environment(root, "dev", environ={"REPLICAS": "hunter2"}))
    assert "hunter2" not in text
    golden("diagnostics_secret.txt", text)
    document = as_json(lambda: load_environment(root, "dev", environ={"REPLICAS": "hunter2"}))
    assert "hunter2" not in document
    golden("diagnostics_secret.json", document)


def test_diagnostics_of_a_plan_that_cannot_be_made(
    root: Path, spec: EnvSpec, state: State, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(root, "models.yaml", "production: staging", "production: 9")
    reality = FakeReality()
    reality.fingerprints["activity"] = None
    golden("diagnostics_plan.txt", printed(capsys, lambda: plan(load(root), state, reality)))
    golden("diagnostics_plan.json", as_json(lambda: plan(load(root), state, reality)))


def test_a_change_without_details_renders_its_values() -> None:
    """The create block lists the new values when there are no detail lines."""
    made = Plan(
        environment="dev",
        created_at="t",
        spec_digest="x",
        resource_changes=[
            ResourceChange(
                address="entity.e", type="entity", name="e", actions=["create"], after={"join_key": "id"}
            )
        ],
    )
    assert '        join_key: "id"' in render_text(made).splitlines()
