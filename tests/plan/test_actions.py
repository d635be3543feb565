"""Every action the planner emits, from a hand-made state and a fake world (no I/O beyond the
YAML, no training): create, update, delete, replace, check, materialize, train, promote,
archive, deploy, and the version reuse that makes reverting a spec free."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlctl.errors import MlctlError
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.plan.resources import desired_resources
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import RetrainTrigger, RollbackMark, State
from plan.world import (
    FINGERPRINTS,
    T0,
    FakeReality,
    add_version,
    applied_state,
    by_address,
    edit,
    load,
    plan,
)

PENDING_ROLLOUT = {
    "stage.churn.staging": ["promote"],
    "stage.churn.production": ["promote"],
    "endpoint.api": ["deploy"],
}


def warnings(made: Plan) -> list[tuple[str, str | None]]:
    """``(text, address)`` of every warning; each must be a warning diagnostic."""
    assert all(w.severity == "warning" for w in made.warnings)
    return [(str(w), w.address) for w in made.warnings]


def change(made: Plan, address: str) -> ResourceChange:
    """The one planned change of ``address``."""
    [found] = [c for c in made.resource_changes if c.address == address]
    return found


def test_empty_state_creates_everything_in_dependency_order(spec: EnvSpec, reality: FakeReality) -> None:
    made = plan(spec, None, reality)
    assert by_address(made) == {
        "dataset.activity": ["create", "check"],
        "dataset.labels": ["create", "check"],
        "entity.customer": ["create"],
        "feature_view.cf": ["create", "materialize"],
        "model.churn": ["create"],
        "model_version.churn": ["train"],
        "stage.churn.staging": ["promote"],
        "stage.churn.production": ["promote"],
        "endpoint.api": ["create", "deploy"],
        "monitor.churn-drift": ["create"],
    }
    assert list(by_address(made)) == list(desired_resources(spec.config))
    train = change(made, "model_version.churn")
    assert train.after["version"] == UNKNOWN and train.after_unknown == ["version", "metrics"]
    assert train.after["identity"].startswith("sha256:")  # known: the data was fingerprinted
    assert "gates: auc >= 0.8, latency_p95_ms <= 50" in train.details
    assert change(made, "endpoint.api").after["version"] == UNKNOWN
    assert made.lineage is None and made.serial == 0 and made.data == FINGERPRINTS
    assert made.summary() == (
        "Plan: 7 to add, 0 to change, 0 to destroy; "
        "2 to check, 1 to materialize, 1 to train, 2 to promote, 1 to deploy."
    )


def test_applied_state_and_agreeing_world_plan_nothing(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    before = state.to_json()
    made = plan(spec, state, reality)
    assert not made.has_changes and made.drift == [] and made.warnings == []
    assert made.summary() == "No changes. The environment matches the configuration."
    assert (made.lineage, made.serial) == (state.lineage, state.serial)
    assert state.to_json() == before, "planning never changes the state it reads"
    assert "dataset.activity" in reality.asked and "endpoint.api" in reality.asked


def test_without_refresh_state_is_trusted_and_the_world_is_not_asked(spec: EnvSpec, state: State) -> None:
    made = plan(spec, state, None)
    assert not made.has_changes and made.refresh is False
    assert made.data == FINGERPRINTS  # taken from the state's recorded fingerprints


def test_only_a_gate_changed_is_one_update_of_the_model_and_no_training(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "min_auc: 0.8", "min_auc: 0.85")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"model.churn": ["update"]}
    assert change(made, "model.churn").details == ["~ gates.min_auc: 0.8 -> 0.85"]
    assert made.warnings == []


def test_a_gate_the_live_version_fails_blocks_its_stage_without_retraining(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "min_auc: 0.8", "min_auc: 0.95")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"model.churn": ["update"]}
    assert warnings(made) == [
        (
            "stage.churn.staging stays at v1: candidate v1 of churn fails its gates "
            "(min_auc: auc 0.91 not >= 0.95)",
            "stage.churn.staging",
        )
    ]


def test_a_tag_change_updates_the_model_only(root: Path, state: State, reality: FakeReality) -> None:
    edit(root, "models.yaml", "tags: {team: growth}", "tags: {team: growth, owner: ana}")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"model.churn": ["update"]}
    assert change(made, "model.churn").details == ['+ tags.owner: "ana"']


def test_a_training_change_trains_and_rolls_the_new_version_out(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"model_version.churn": ["train"], **PENDING_ROLLOUT}
    train = change(made, "model_version.churn")
    assert train.reason == "training spec changed"
    assert "~ training.params.C: 1.0 -> 0.5" in train.details
    assert train.before["version"] == 1
    assert change(made, "stage.churn.production").details[-1] == "v1 leaves production"
    assert change(made, "endpoint.api").reason == "serve churn production (known after apply)"


def test_new_data_checks_the_dataset_rematerializes_and_retrains(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    reality.fingerprints["activity"] = "sha256:" + "9" * 64
    made = plan(spec, state, reality)
    assert by_address(made) == {
        "dataset.activity": ["check"],
        "feature_view.cf": ["materialize"],
        "model_version.churn": ["train"],
        **PENDING_ROLLOUT,
    }
    assert change(made, "dataset.activity").reason == "data changed"
    assert change(made, "feature_view.cf").reason == "source activity changed"
    assert change(made, "feature_view.cf").after["window"] == {
        "start": "2026-01-01T00:00:00Z",
        "end": UNKNOWN,
    }
    assert change(made, "model_version.churn").reason == "data changed: activity"
    assert [d.address for d in made.drift] == ["dataset.activity"]


def test_a_failed_last_check_is_checked_again(spec: EnvSpec, state: State, reality: FakeReality) -> None:
    state.resources["dataset.labels"].status.update(passed=False, failed=["min_rows"])
    made = plan(spec, state, reality)
    assert by_address(made) == {"dataset.labels": ["check"]}
    assert change(made, "dataset.labels").reason == "last check failed (min_rows)"


def test_a_changed_check_updates_and_checks_the_dataset(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "data.yaml", "checks: {min_rows: 1}", "checks: {min_rows: 5}")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"dataset.activity": ["update", "check"]}
    assert change(made, "dataset.activity").details == ["~ checks.min_rows: 1 -> 5"]


def test_an_unused_new_feature_rebuilds_the_online_view_but_trains_nothing(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "data.yaml", "value: float}", "value: float, visits: int}")
    edit(root, "features.yaml", "value: float}", "value: float, visits: int}")
    made = plan(load(root), state, reality)
    assert by_address(made) == {
        "dataset.activity": ["update", "check"],
        "feature_view.cf": ["update", "materialize"],
    }
    view = change(made, "feature_view.cf")
    assert view.reason == "schema changed: the online view is rebuilt"
    assert view.after["window"]["start"] is None  # rebuilt from the beginning


def test_taking_a_view_offline_drops_its_records(root: Path, state: State, reality: FakeReality) -> None:
    edit(root, "features.yaml", "online: true", "online: false")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"feature_view.cf": ["update"]}
    assert "online: false drops its online records" in change(made, "feature_view.cf").reason


def test_removed_resources_are_deleted_dependents_first(
    root: Path, state: State, reality: FakeReality
) -> None:
    (root / "environments" / "dev" / "monitors.yaml").unlink()
    (root / "environments" / "dev" / "deployments.yaml").unlink()
    made = plan(load(root), state, reality)
    assert by_address(made) == {"monitor.churn-drift": ["delete"], "endpoint.api": ["delete"]}
    assert made.summary() == "Plan: 0 to add, 0 to change, 2 to destroy."


def test_a_removed_model_leaves_its_versions_in_the_registry(
    root: Path, state: State, reality: FakeReality
) -> None:
    for name in ("monitors.yaml", "deployments.yaml", "models.yaml"):
        (root / "environments" / "dev" / name).unlink()
    made = plan(load(root), state, reality)
    assert list(by_address(made)) == [
        "monitor.churn-drift",
        "endpoint.api",
        "stage.churn.production",
        "stage.churn.staging",
        "model_version.churn",
        "model.churn",
    ]
    assert all(actions == ["delete"] for actions in by_address(made).values())
    assert "versions of churn stay in the registry" in change(made, "model_version.churn").reason


def test_a_view_a_model_still_reads_is_not_deleted(root: Path, state: State, reality: FakeReality) -> None:
    (root / "environments" / "dev" / "features.yaml").write_text(
        "entities:\n  customer: {join_key: cid, value_type: string}\n"
    )
    (root / "environments" / "dev" / "models.yaml").unlink()
    (root / "environments" / "dev" / "deployments.yaml").unlink()
    (root / "environments" / "dev" / "monitors.yaml").unlink()
    # the model is gone from the YAML, but v1 (which reads cf) still holds production
    with pytest.raises(
        MlctlError, match=r"cannot delete feature_view\.cf: still used by churn v1 \(production\)"
    ):
        plan(load(root), state, reality)


def test_reverting_the_spec_reuses_the_earlier_version_without_training(
    root: Path, spec: EnvSpec, reality: FakeReality
) -> None:
    first = applied_state(spec)  # v1 trained on C: 1.0
    v1 = first.models["churn"].versions[0]
    edit(root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    second = applied_state(load(root))  # the same apply on C: 0.5, as v2
    v2 = second.models["churn"].versions[0].model_copy(update={"version": 2})
    v1.stage = "archived"
    first.models["churn"].versions.append(v2)
    first.models["churn"].next_version = 3
    first.models["churn"].stages = {"staging": 2, "production": 2}
    first.resources["model_version.churn"] = second.resources["model_version.churn"]
    first.resources["model_version.churn"].status = {"identity": v2.identity, "version": 2}
    for address in ("stage.churn.staging", "stage.churn.production", "endpoint.api"):
        first.resources[address].status["version"] = 2
    assert plan(load(root), first, reality).has_changes is False

    edit(root, "models.yaml", "params: {C: 0.5}", "params: {C: 1.0}")  # git revert
    made = plan(load(root), first, reality)
    assert by_address(made) == {
        "model_version.churn": ["update"],
        "stage.churn.staging": ["promote"],
        "stage.churn.production": ["promote"],
        "endpoint.api": ["deploy"],
    }
    reuse = change(made, "model_version.churn")
    assert reuse.after == {"version": 1, "identity": v1.identity}
    assert "reused, no training" in reuse.reason
    assert change(made, "stage.churn.production").after == {"version": 1}
    assert change(made, "endpoint.api").after["version"] == 1


def test_a_numeric_pin_promotes_and_none_archives(root: Path, state: State, reality: FakeReality) -> None:
    registry = state.models["churn"]
    v1 = registry.versions[0]
    add_version(state, "churn", 2, identity="sha256:v2", training=v1.training, data=v1.data)
    edit(root, "models.yaml", "production: staging", "production: 2")
    made = plan(load(root), state, reality)
    assert by_address(made) == {
        "model.churn": ["update"],
        "stage.churn.production": ["promote"],
        "endpoint.api": ["deploy"],
    }
    promote = change(made, "stage.churn.production")
    assert (promote.before, promote.after, promote.reason) == (
        {"version": 1},
        {"version": 2},
        "production: 2",
    )

    edit(root, "models.yaml", "staging: latest", "staging: none")
    made = plan(load(root), state, reality)
    assert by_address(made)["stage.churn.staging"] == ["archive"]
    assert change(made, "stage.churn.staging").after == {"version": None}


def test_a_pin_to_an_unknown_version_is_an_error_at_its_line(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "models.yaml", "production: staging", "production: 9")
    with pytest.raises(MlctlError) as caught:
        plan(load(root), state, reality)
    assert str(caught.value) == (
        "environments/dev/models.yaml:10: production: 9 names a version of churn that does not exist "
        "(known: v1)"
    )


def test_a_pin_to_a_version_failing_the_gates_is_an_error(
    root: Path, state: State, reality: FakeReality
) -> None:
    add_version(state, "churn", 2, metrics={"auc": 0.5, "latency_p95_ms": 3.0}, status="rejected")
    edit(root, "models.yaml", "production: staging", "production: 2")
    with pytest.raises(
        MlctlError, match=r"production: 2: v2 of churn did not pass its gates \(min_auc: auc 0.5"
    ):
        plan(load(root), state, reality)


def test_a_rolled_back_version_is_not_promoted_again_by_following(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    """After `mlctl rollback` took v1 out of production, `production: staging` does not put it
    back; only a numeric pin (an explicit decision in git) would."""
    registry = state.models["churn"]
    v2 = add_version(state, "churn", 2, identity="sha256:older")
    v1 = registry.get(1)
    assert v1 is not None
    v1.rolled_back = RollbackMark(at="2026-01-02T03:00:00Z", by="oncall@host", reason="latency")
    v1.stage, v2.stage = "staging", "production"
    registry.stages["production"] = 2
    state.resources["stage.churn.production"].status["version"] = 2
    state.resources["endpoint.api"].status["version"] = 2
    made = plan(spec, state, reality)
    assert not made.has_changes
    assert warnings(made) == [
        (
            "stage.churn.production stays at v2: v1 of churn was rolled back from production; "
            "pin production: 1 to promote it again",
            "stage.churn.production",
        )
    ]


def test_an_endpoint_setting_changes_in_place_without_redeploying(
    root: Path, state: State, reality: FakeReality
) -> None:
    edit(root, "deployments.yaml", "stage: production}", "stage: production, replicas: 3}")
    made = plan(load(root), state, reality)
    assert by_address(made) == {"endpoint.api": ["update"]}
    assert change(made, "endpoint.api").details == ["~ replicas: 1 -> 3"]


def test_kubernetes_manifest_changes_update_the_endpoint(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    state.resources["endpoint.api"].status.update(provider="k8s", manifests="image: a\nversion: VERSION\n")
    reality.manifests["api"] = "image: b\nversion: VERSION\n"
    made = plan(spec, state, reality)
    assert by_address(made) == {"endpoint.api": ["update"]}
    endpoint = change(made, "endpoint.api")
    assert endpoint.reason == "its rendered Kubernetes manifests changed"
    assert "-image: a" in endpoint.details and "+image: b" in endpoint.details
    assert "+version: 1" in endpoint.details  # rendered for the version production holds


def test_a_pending_retrain_trigger_trains_the_same_spec_on_the_same_data(
    spec: EnvSpec, state: State, reality: FakeReality
) -> None:
    state.models["churn"].triggers.append(
        RetrainTrigger(
            id="drift-1", kind="drift", monitor="churn-drift", reason="drift in orders", created_at=T0
        )
    )
    made = plan(spec, state, reality)
    assert by_address(made) == {
        "model_version.churn": ["train"],
        "stage.churn.staging": ["promote"],
        "stage.churn.production": ["promote"],
        "endpoint.api": ["deploy"],
    }
    train = change(made, "model_version.churn")
    assert train.reason == "drift in orders"
    assert train.after["identity"] != state.models["churn"].versions[0].identity  # a new version


NEW_DATA = "    tags: {team: growth}\n    retrain: {on: [new_data], min_new_rows: 100}\n"


@pytest.mark.parametrize(("rows_now", "trains"), [(50, False), (110, True), (None, True)])
def test_new_data_below_min_new_rows_keeps_the_current_version(
    root: Path, reality: FakeReality, rows_now: int | None, trains: bool
) -> None:
    edit(root, "models.yaml", "    tags: {team: growth}\n", NEW_DATA)
    spec = load(root)
    state = applied_state(spec)
    state.models["churn"].versions[0].data_rows = {"activity": 10, "labels": 10}
    reality.fingerprints["activity"] = "sha256:" + "9" * 64
    reality.rows = {"activity": rows_now, "labels": 10}
    made = plan(spec, state, reality)
    assert ("model_version.churn" in by_address(made)) is trains
    assert by_address(made)["dataset.activity"] == ["check"]
    if not trains:
        assert warnings(made) == [
            (
                "model_version.churn: 40 in activity new rows since v1 was trained, fewer than "
                "retrain.min_new_rows 100: v1 stays the candidate",
                "model_version.churn",
            )
        ]
