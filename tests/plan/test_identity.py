"""A version's identity covers every input that changes the trained bytes
(:func:`mlctl.plan.resources.training_inputs` lists them): changing one gives a new identity,
reverting it gives the old one back, and a changed identity plans training."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlctl.plan.planner import version_identity
from mlctl.plan.resources import desired_resources
from mlctl.state.document import State
from plan.world import (
    FINGERPRINTS,
    TOOLCHAIN,
    FakeReality,
    by_address,
    edit,
    install_toolchain,
    load,
    plan,
)

#: (file, text, replacement): one edit per input that enters the identity.
EDITS = {
    "estimator": (
        "models.yaml",
        "linear_model.LogisticRegression\n      params: {C: 1.0}",
        "tree.DecisionTreeClassifier\n      params: {max_depth: 3}",
    ),
    "params": ("models.yaml", "params: {C: 1.0}", "params: {C: 0.5}"),
    "features": ("models.yaml", "features: [cf:orders, cf:value]", "features: [cf:orders]"),
    "test_size": ("models.yaml", "params: {C: 1.0}", "params: {C: 1.0}\n      test_size: 0.3"),
    "view ttl": ("features.yaml", "ttl: 1d", "ttl: 2d"),
    "feature type": ("features.yaml", "features: {orders: int,", "features: {orders: float,"),
    "entity value_type": ("features.yaml", "value_type: string", "value_type: int"),
    "labels timestamp (the point-in-time join column)": (
        "data.yaml",
        "    timestamp: ts\n    schema: {cid: string, ts: datetime, churned",
        "    timestamp: cid\n    schema: {cid: string, ts: datetime, churned",
    ),
    "source timestamp": (
        "data.yaml",
        "    timestamp: ts\n    schema: {cid: string, ts: datetime, orders",
        "    timestamp: value\n    schema: {cid: string, ts: datetime, orders",
    ),
    "schema of a column read": ("data.yaml", "churned: int}", "churned: float}"),
    "schema of a join key": (
        "data.yaml",
        "schema: {cid: string, ts: datetime, orders",
        "schema: {cid: int, ts: datetime, orders",
    ),
    "format": ("data.yaml", "path: data/labels.csv\n", "path: data/labels.csv\n    format: parquet\n"),
}


def identity(root: Path, fingerprints: dict[str, str | None] | None = None) -> str:
    spec = load(root)
    d = desired_resources(spec.config, spec.placeholders)["model_version.churn"]
    data = fingerprints or FINGERPRINTS
    used = {a.split(".", 1)[1]: data[a.split(".", 1)[1]] for a in d.depends_on if a.startswith("dataset.")}
    found = version_identity(d.spec, used)
    assert found is not None
    return found


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_input_changes_the_identity_and_reverting_restores_it(root: Path, name: str) -> None:
    file, old, new = EDITS[name]
    original = identity(root)
    edit(root, file, old, new)
    changed = identity(root)
    assert changed != original, f"{name} does not enter the version identity"
    edit(root, file, new, old)
    assert identity(root) == original


@pytest.mark.parametrize("dataset", sorted(FINGERPRINTS))
def test_data_contents_change_the_identity(root: Path, dataset: str) -> None:
    original = identity(root)
    other = {**FINGERPRINTS, dataset: "sha256:" + "9" * 64}
    assert identity(root, other) != original
    assert identity(root, dict(FINGERPRINTS)) == original


@pytest.mark.parametrize("package", sorted(TOOLCHAIN))
def test_installed_versions_change_the_identity(
    root: Path, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another mlctl or scikit-learn trains other bytes: a new identity (read from the
    installed distributions' metadata, as a plan does, importing neither)."""
    original = identity(root)
    upgraded = {**TOOLCHAIN, package: "99.0.0"}
    monkeypatch.syspath_prepend(str(install_toolchain(tmp_path / "site-upgraded", upgraded)))
    changed = identity(root)
    assert changed != original
    monkeypatch.syspath_prepend(str(install_toolchain(tmp_path / "site-reverted", TOOLCHAIN)))
    assert identity(root) == original


def test_inputs_that_change_no_byte_keep_the_identity(root: Path) -> None:
    """Checks gate data, descriptions document it, an unread column's type is never used,
    and an explicit default format is the inferred one: none is a new version."""
    original = identity(root)
    edit(root, "data.yaml", "checks: {min_rows: 1}", "checks: {min_rows: 5}")
    edit(root, "data.yaml", "path: data/labels.csv\n", "path: data/labels.csv\n    format: csv\n")
    edit(root, "data.yaml", "value: float}", "value: float, visits: int}")
    edit(root, "models.yaml", "tags: {team: growth}", "tags: {team: churn}")
    assert identity(root) == original


def test_a_new_join_column_plans_training(root: Path, state: State, reality: FakeReality) -> None:
    file, old, new = EDITS["labels timestamp (the point-in-time join column)"]
    edit(root, file, old, new)
    made = plan(load(root), state, reality)
    assert by_address(made)["model_version.churn"] == ["train"]
    change = next(c for c in made.resource_changes if c.address == "model_version.churn")
    assert "training spec changed" in change.reason
    assert any("datasets.labels.timestamp" in line for line in change.details)


def test_a_scikit_learn_upgrade_plans_training_and_says_why(
    root: Path, state: State, reality: FakeReality, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(
        str(install_toolchain(tmp_path / "site-new", {**TOOLCHAIN, "scikit-learn": "1.1.0"}))
    )
    made = plan(load(root), state, reality)
    change = next(c for c in made.resource_changes if c.address == "model_version.churn")
    assert change.actions == ["train"]
    assert any("toolchain.scikit-learn" in line and "1.1.0" in line for line in change.details)


def test_a_plan_imports_no_scikit_learn(root: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mlctl.plan.resources import desired_resources\n"
        "from mlctl.spec.loader import load_environment\n"
        f"spec = load_environment(__import__('pathlib').Path({str(root)!r}), 'dev', environ={{}})\n"
        "inputs = desired_resources(spec.config)['model_version.churn'].spec\n"
        "assert inputs['toolchain']['scikit-learn'], inputs['toolchain']\n"
        "assert 'sklearn' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_inputs_from_the_environment_are_refused(root: Path) -> None:
    """A ``${VAR}`` training input would enter the identity as its placeholder (state and plans
    never hold a resolved value), so changing the variable would change the trained bytes and
    plan "No changes": the loader refuses it, once per key, located, naming the placeholder."""
    from mlctl.errors import ConfigError
    from mlctl.spec.loader import load_environment

    edit(
        root,
        "data.yaml",
        "    timestamp: ts\n    schema: {cid: string, ts: datetime, churned",
        "    timestamp: '${LABEL_TS}'\n    schema: {cid: string, ts: datetime, churned",
    )
    edit(root, "features.yaml", "ttl: 1d", "ttl: '${VIEW_TTL}'")
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: '${C}'}")
    with pytest.raises(ConfigError) as raised:
        load_environment(root, "dev", environ={"LABEL_TS": "ts", "VIEW_TTL": "7d", "C": "0.5"})
    found = {(d.path, d.summary) for d in raised.value.diagnostics}
    why = "training inputs cannot come from the environment: they enter the version identity"
    assert found == {
        ("datasets.labels.timestamp", f"'${{LABEL_TS}}': {why}"),
        ("feature_views.cf.ttl", f"'${{VIEW_TTL}}': {why}"),
        ("models.churn.training.params.C", f"'${{C}}': {why}"),
    }
    assert all(d.file and d.line for d in raised.value.diagnostics)


def test_inputs_hold_the_values_training_uses(root: Path) -> None:
    """Each input is the value itself (no placeholder can reach it: see the test above)."""
    spec = load(root)
    inputs = desired_resources(spec.config, spec.placeholders)["model_version.churn"].spec
    assert inputs["datasets"]["labels"]["timestamp"] == "ts"
    assert inputs["views"]["cf"]["ttl"] == "1d"
    assert "${" not in str(inputs)
