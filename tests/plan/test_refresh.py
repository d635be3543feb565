"""What refresh finds (artifacts missing or tampered, data changed, endpoints serving something
else), and how --target, --replace and saved-plan freshness behave."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlctl.errors import MlctlError, StalePlanError
from mlctl.plan.model import Plan
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import State
from plan.world import FINGERPRINTS, FakeReality, add_version, by_address, edit, load, plan

ROLLOUT = {
    "model_version.churn": ["train"],
    "stage.churn.staging": ["promote"],
    "stage.churn.production": ["promote"],
    "endpoint.api": ["deploy"],
}


# -- drift ------------------------------------------------------------------------------


@pytest.mark.parametrize("health", ["missing", "tampered"])
def test_a_broken_artifact_of_the_candidate_is_drift_and_retrains_it(
    spec: EnvSpec, state: State, reality: FakeReality, health: str
) -> None:
    v1 = state.models["churn"].versions[0]
    assert v1.artifact is not None
    reality.artifacts[v1.artifact.uri] = health  # type: ignore[assignment]
    made = plan(spec, state, reality)
    assert by_address(made) == ROLLOUT
    [drift] = made.drift
    assert drift.address == "model_version.churn"
    assert drift.before == {"version": 1, "sha256": v1.artifact.sha256}
    assert drift.after == {"version": 1, "artifact": health}
    why = "sha256 no longer matches state" if health == "tampered" else "not found"
    assert drift.reason == f"artifact {v1.artifact.uri} is {health}: {why}"
    assert made.resource_changes[0].reason == f"artifact of v1 is {health} ({v1.artifact.uri})"


def test_a_broken_artifact_of_a_pinned_production_version_is_drift_and_a_warning(
    root: Path, state: State, reality: FakeReality
) -> None:
    """Production pinned to v1 while staging follows a newer candidate: v1's artifact is
    checked although it is not the candidate, and apply is warned it will refuse it."""
    v1 = state.models["churn"].versions[0]
    assert v1.artifact is not None
    reality.artifacts[v1.artifact.uri] = "missing"
    add_version(state, "churn", 2, identity=v1.identity, training=v1.training, data=v1.data)
    v1.identity = "sha256:superseded"
    state.models["churn"].stages["staging"] = 2
    state.resources["stage.churn.staging"].status["version"] = 2
    state.resources["model_version.churn"].status = {"identity": state.models["churn"].versions[1].identity}
    edit(root, "models.yaml", "production: staging", "production: 1")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"model.churn": ["update"]}
    assert [(d.address, d.after) for d in made.drift] == [
        ("model_version.churn", {"version": 1, "artifact": "missing"})
    ]
    [warning] = made.warnings
    assert (str(warning), warning.severity, warning.address) == (
        "churn v1 artifact is missing: apply will refuse to deploy it",
        "warning",
        "model_version.churn",
    )


def test_changed_data_is_reported_as_drift_with_both_fingerprints(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    reality.fingerprints["labels"] = "sha256:" + "3" * 64
    made = plan(spec, state, reality)
    [drift] = made.drift
    assert drift.address == "dataset.labels"
    assert drift.before == {"fingerprint": FINGERPRINTS["labels"]}
    assert drift.after == {"fingerprint": "sha256:" + "3" * 64}
    assert drift.reason == "the data at data/labels.csv changed since the last apply"
    assert made.data["labels"] == "sha256:" + "3" * 64  # the plan is bound to what it saw
    assert by_address(made) == {"dataset.labels": ["check"], **ROLLOUT}


def test_missing_data_is_an_error_naming_the_file_and_line(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    reality.fingerprints["labels"] = None
    with pytest.raises(MlctlError) as caught:
        plan(spec, state, reality)
    assert str(caught.value) == "environments/dev/data.yaml:8: dataset.labels: data/labels.csv not found"


def test_an_endpoint_serving_another_version_is_drift_and_redeployed(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    reality.live["api"] = {"model": "churn", "version": 7}
    made = plan(spec, state, reality)
    [drift] = made.drift
    assert (drift.address, drift.before, drift.after) == ("endpoint.api", {"version": 1}, {"version": 7})
    assert by_address(made) == {"endpoint.api": ["deploy"]}
    assert made.resource_changes[0].before["version"] == 7 and made.resource_changes[0].after["version"] == 1


def test_an_endpoint_serving_nothing_is_redeployed(spec: EnvSpec, state: State, reality: FakeReality) -> None:
    reality.live["api"] = {"model": None, "version": None}
    made = plan(spec, state, reality)
    assert [d.address for d in made.drift] == ["endpoint.api"]
    assert by_address(made) == {"endpoint.api": ["deploy"]}


def test_a_provider_that_cannot_tell_leaves_the_state_trusted(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    reality.live["api"] = None  # Reality contract: None means the provider cannot tell
    assert not plan(spec, state, reality).has_changes


# -- --target and --replace ---------------------------------------------------------------


def test_target_keeps_the_address_and_what_it_depends_on(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    edit(root, "models.yaml", "tags: {team: growth}", "tags: {team: risk}")
    edit(root, "monitors.yaml", "threshold: 0.2", "threshold: 0.3")
    spec = load(root)
    everything = plan(spec, state, reality)
    assert set(by_address(everything)) == {"model.churn", "monitor.churn-drift", *ROLLOUT}

    made = plan(spec, state, reality, targets=["model_version.churn"])
    assert by_address(made) == {"model.churn": ["update"], "model_version.churn": ["train"]}
    assert made.targets == ["model_version.churn"]

    made = plan(spec, state, reality, targets=["endpoint.api"])
    assert set(by_address(made)) == {"model.churn", *ROLLOUT}  # the monitor is left out

    made = plan(spec, state, reality, targets=["monitor.churn-drift"])
    assert by_address(made) == {"model.churn": ["update"], "monitor.churn-drift": ["update"]}


def test_target_and_replace_reject_unknown_addresses(spec: EnvSpec, state: State) -> None:
    with pytest.raises(MlctlError, match=r"no resource at address 'model.churm'"):
        plan(spec, state, None, targets=["model.churm"])
    with pytest.raises(MlctlError, match=r"no resource at address 'endpoint.nope'"):
        plan(spec, state, None, replace=["endpoint.nope"])


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("model.churn", {"model.churn": ["delete", "create"]}),
        ("monitor.churn-drift", {"monitor.churn-drift": ["delete", "create"]}),
        ("dataset.activity", {"dataset.activity": ["check"]}),
        ("feature_view.cf", {"feature_view.cf": ["update", "materialize"]}),
        ("model_version.churn", ROLLOUT),
        ("endpoint.api", {"endpoint.api": ["deploy"]}),
    ],
)
def test_replace_forces_the_action_on_an_unchanged_resource(
    spec: EnvSpec, state: State, reality: FakeReality, address: str, expected: dict[str, list[str]]
) -> None:
    made = plan(spec, state, reality, replace=[address])
    assert by_address(made) == expected
    assert made.replace == [address]


def test_replace_reasons_say_it_was_requested(spec: EnvSpec, state: State, reality: FakeReality) -> None:
    reasons = {
        address: plan(spec, state, reality, replace=[address]).resource_changes[0].reason
        for address in ("model.churn", "dataset.activity", "feature_view.cf", "model_version.churn")
    }
    assert reasons == {
        "model.churn": "replacement requested",
        "dataset.activity": "re-check requested",
        "feature_view.cf": "rebuild requested (--replace)",
        "model_version.churn": "replacement requested (--replace)",
    }
    made = plan(spec, state, reality, replace=["model.churn"])
    assert made.summary() == "Plan: 1 to add, 0 to change, 1 to destroy."


# -- saved plans and staleness ------------------------------------------------------------


def fresh(saved: Plan, spec: EnvSpec, state: State | None, data: dict[str, str | None]) -> None:
    saved.check_fresh(
        lineage=state.lineage if state else None,
        serial=state.serial if state else 0,
        spec_digest=spec.digest,
        data=data,
    )


def test_a_saved_plan_round_trips_and_is_fresh_while_nothing_moved(
    tmp_path: Path, root: Path, spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    spec = load(root)
    made = plan(spec, state, reality)
    made.save(tmp_path / "out" / "plan.json")
    saved = Plan.load(tmp_path / "out" / "plan.json")
    assert saved == made
    fresh(saved, spec, state, dict(FINGERPRINTS))
    # comments and key order are not the desired state: still fresh
    edit(root, "models.yaml", "models:", "# reviewed\nmodels:")
    fresh(saved, load(root), state, dict(FINGERPRINTS))


def test_a_state_write_since_planning_makes_the_plan_stale(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    made = plan(spec, state, reality, replace=["model.churn"])
    state.serial += 1
    with pytest.raises(StalePlanError, match="state serial is 8, the plan was made at serial 7"):
        fresh(made, spec, state, dict(FINGERPRINTS))


def test_another_lineage_makes_the_plan_stale(spec: EnvSpec, state: State, reality: FakeReality) -> None:
    made = plan(spec, state, reality, replace=["model.churn"])
    other = State(environment="dev", serial=state.serial)
    with pytest.raises(StalePlanError, match="different state lineage"):
        fresh(made, spec, other, dict(FINGERPRINTS))


def test_a_plan_made_before_the_first_apply_is_stale_after_it(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    made = plan(spec, None, reality)
    fresh(made, spec, None, dict(FINGERPRINTS))
    with pytest.raises(StalePlanError, match="state serial is 7"):
        fresh(made, spec, state, dict(FINGERPRINTS))


def test_a_configuration_change_makes_the_plan_stale(
    root: Path, spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    made = plan(spec, state, reality, replace=["model.churn"])
    edit(root, "models.yaml", "min_auc: 0.8", "min_auc: 0.81")
    with pytest.raises(StalePlanError, match="configuration changed"):
        fresh(made, load(root), state, dict(FINGERPRINTS))


def test_new_data_makes_the_plan_stale(spec: EnvSpec, state: State, reality: FakeReality) -> None:
    made = plan(spec, state, reality, replace=["model.churn"])
    with pytest.raises(StalePlanError, match=r"data changed since it was made \(activity\)"):
        fresh(made, spec, state, {**FINGERPRINTS, "activity": "sha256:new"})


def test_a_plan_file_that_is_not_a_plan_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text('{"environment": "dev"}')
    with pytest.raises(MlctlError, match="is not an mlctl plan file"):
        Plan.load(tmp_path / "plan.json")
    with pytest.raises(MlctlError, match="not found"):
        Plan.load(tmp_path / "missing.json")
