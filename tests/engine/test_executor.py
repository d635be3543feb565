"""The executor against fake providers: a first apply converges, every action is checkpointed,
a failure halfway loses nothing and a rerun finishes the job without repeating it, failed
checks and gates stop only what depends on them, and nothing is ever trained twice."""

from __future__ import annotations

import json

import pytest

from engine.harness import World, actions, errors
from mlctl.errors import MlctlError
from mlctl.state.document import State
from plan.world import edit

EVERYTHING = [
    "dataset.activity",
    "dataset.labels",
    "entity.customer",
    "feature_view.cf",
    "model.churn",
    "model_version.churn",
    "stage.churn.staging",
    "stage.churn.production",
    "endpoint.api",
    "monitor.churn-drift",
]


def stored(world: World) -> State:
    state = world.state
    assert state is not None
    return state


def test_first_apply_makes_everything_true_and_the_next_plan_is_empty(world: World) -> None:
    plan = world.plan()
    assert list(actions(plan)) == EVERYTHING
    result = world.apply(plan)
    assert errors(result) == []

    state = stored(world)
    assert sorted(state.resources) == sorted(EVERYTHING)
    registry = state.models["churn"]
    [v1] = registry.versions
    assert (v1.version, v1.status, v1.stage, v1.git_commit) == (1, "passed", "production", "c0ffee")
    assert registry.stages == {"staging": 1, "production": 1}
    assert v1.artifact is not None and world.store.health(v1.artifact, deep=True) == "ok"
    assert v1.data_rows == {"labels": 8, "activity": 8}
    assert [(e.stage, e.from_version, e.to_version) for e in registry.history] == [
        ("staging", None, 1),
        ("production", None, 1),
    ]
    assert state.resources["dataset.activity"].status["passed"] is True
    assert state.resources["endpoint.api"].status["version"] == 1
    assert world.trainer.calls == ["churn"]
    assert world.serving.calls == [("deploy", "api", 1)]
    assert world.serving.live("api") == {"model": "churn", "version": 1}

    assert not world.plan().has_changes
    assert errors(world.apply(world.plan())) == []  # an empty plan does nothing
    assert world.trainer.calls == ["churn"] and len(world.serving.calls) == 1


def test_every_action_is_checkpointed_as_it_completes(world: World) -> None:
    plan = world.plan()
    world.apply(plan)
    snapshots = [json.loads(text) for text in world.backend.snapshots]
    assert len(snapshots) == len(plan.resource_changes)
    assert [s["serial"] for s in snapshots] == list(range(1, len(snapshots) + 1))
    assert len({s["lineage"] for s in snapshots}) == 1
    for done, snapshot in enumerate(snapshots):
        recorded = set(snapshot["resources"])
        assert recorded == set(EVERYTHING[: done + 1]), f"checkpoint {done + 1}"
        assert snapshot["git"]["commit"] == "c0ffee"


def test_a_crash_while_deploying_loses_nothing_and_the_rerun_only_deploys(world: World) -> None:
    world.serving.fail = RuntimeError("connection reset by peer")
    with pytest.raises(RuntimeError):
        world.apply()
    state = stored(world)  # what the last checkpoint holds, as a new process reads it
    assert "endpoint.api" not in state.resources
    assert state.models["churn"].stages == {"staging": 1, "production": 1}
    assert world.trainer.calls == ["churn"]

    world.serving.fail = None
    plan = world.plan()
    assert actions(plan) == {"endpoint.api": ["create", "deploy"], "monitor.churn-drift": ["create"]}
    assert errors(world.apply(plan)) == []
    state = stored(world)
    assert sorted(state.resources) == sorted(EVERYTHING)
    assert [v.version for v in state.models["churn"].versions] == [1]
    assert world.trainer.calls == ["churn"], "resuming trained nothing again"
    assert world.serving.serving == {"api": ("churn", 1)}
    history = [(e.stage, e.to_version) for e in state.models["churn"].history]
    assert history == [("staging", 1), ("production", 1)], "no stage move recorded twice"
    assert not world.plan().has_changes


def test_a_crash_while_training_resumes_with_the_same_version_number(world: World) -> None:
    world.trainer.fail = RuntimeError("out of memory")
    with pytest.raises(RuntimeError):
        world.apply()
    state = stored(world)
    assert sorted(state.resources) == EVERYTHING[:5]  # up to model.churn
    assert state.models.get("churn") is None or state.models["churn"].versions == []

    world.trainer.fail = None
    plan = world.plan()
    assert list(actions(plan)) == EVERYTHING[5:]
    assert errors(world.apply(plan)) == []
    registry = stored(world).models["churn"]
    assert [v.version for v in registry.versions] == [1] and registry.next_version == 2
    assert world.serving.serving == {"api": ("churn", 1)}


def test_a_crash_while_checkpointing_a_version_loses_only_that_action(world: World) -> None:
    """The version is registered in the same write that records it: a failed write leaves no
    half-registered version, and the rerun registers it as v1 (the in-flight training is the
    one thing repeated)."""
    world.backend.fail_at = EVERYTHING.index("model_version.churn") + 1
    with pytest.raises(OSError):
        world.apply()
    state = stored(world)
    assert "model_version.churn" not in state.resources
    assert state.models.get("churn") is None or state.models["churn"].versions == []

    assert list(actions(world.plan())) == EVERYTHING[5:]
    assert errors(world.apply()) == []
    registry = stored(world).models["churn"]
    assert [v.version for v in registry.versions] == [1] and registry.next_version == 2
    assert len(world.trainer.calls) == 2
    assert not world.plan().has_changes


def test_a_failing_provider_fails_its_action_and_independent_work_goes_on(world: World) -> None:
    world.serving.fail = MlctlError("cluster unreachable")
    result = world.apply()
    assert [line for line in errors(result)] == ["endpoint.api: cluster unreachable"]
    state = stored(world)
    assert "endpoint.api" not in state.resources
    assert "monitor.churn-drift" in state.resources  # after the failure, still applied

    world.serving.fail = None
    assert actions(world.plan()) == {"endpoint.api": ["create", "deploy"]}
    world.apply()
    assert not world.plan().has_changes
    assert world.trainer.calls == ["churn"]


def test_a_failed_data_check_stops_training_and_everything_after_it(world: World) -> None:
    edit(world.root, "data.yaml", "checks: {min_rows: 1}", "checks: {min_rows: 100}")
    result = world.apply()
    lines = errors(result)
    assert lines[0].startswith("dataset.activity: check min_rows failed")
    assert any(
        line.startswith("model_version.churn: training skipped: dataset.activity failed") for line in lines
    )
    assert world.trainer.calls == [] and world.serving.calls == []
    state = stored(world)
    assert state.resources["dataset.activity"].status["passed"] is False
    assert state.models.get("churn") is None or state.models["churn"].stages["production"] is None

    # the next plan checks the data again; with the check fixed the rest follows
    assert actions(world.plan())["dataset.activity"] == ["check"]
    edit(world.root, "data.yaml", "checks: {min_rows: 100}", "checks: {min_rows: 1}")
    assert errors(world.apply()) == []
    assert world.trainer.calls == ["churn"] and world.serving.serving == {"api": ("churn", 1)}


def test_a_version_failing_its_gates_is_kept_but_never_promoted_nor_retrained(world: World) -> None:
    world.trainer.metrics = {"auc": 0.55, "accuracy": 0.6, "latency_p95_ms": 2.0}
    result = world.apply()
    assert any(
        line.startswith("model_version.churn: churn v1 rejected by its gates") for line in errors(result)
    )
    registry = stored(world).models["churn"]
    [v1] = registry.versions
    assert v1.status == "rejected" and v1.failed_gates == ["min_auc"]
    assert registry.stages == {"staging": None, "production": None}
    assert world.serving.calls == []

    plan = world.plan()  # same spec, same data: the rejected version is the candidate
    assert "model_version.churn" not in actions(plan)
    assert any("fails its gates" in str(warning) for warning in plan.warnings)
    world.apply(plan)
    assert world.trainer.calls == ["churn"]

    # lowering the gate promotes the stored version: one model update, no training
    edit(world.root, "models.yaml", "min_auc: 0.8", "min_auc: 0.5")
    plan = world.plan()
    assert actions(plan) == {
        "model.churn": ["update"],
        "stage.churn.staging": ["promote"],
        "stage.churn.production": ["promote"],
        "endpoint.api": ["deploy"],
    }
    assert errors(world.apply(plan)) == []
    registry = stored(world).models["churn"]
    assert registry.stages == {"staging": 1, "production": 1} and registry.versions[0].status == "passed"
    assert world.trainer.calls == ["churn"] and world.serving.serving == {"api": ("churn", 1)}


def test_a_gate_change_updates_the_model_and_nothing_else(world: World) -> None:
    world.apply()
    before = len(world.backend.snapshots)
    edit(world.root, "models.yaml", "min_auc: 0.8", "min_auc: 0.85")
    assert errors(world.apply()) == []
    assert len(world.backend.snapshots) == before + 1
    assert stored(world).resources["model.churn"].spec["gates"]["min_auc"] == 0.85
    assert world.trainer.calls == ["churn"] and len(world.serving.calls) == 1


def test_new_training_spec_trains_v2_promotes_it_and_reverting_reuses_v1(world: World) -> None:
    world.apply()
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    assert errors(world.apply()) == []
    registry = stored(world).models["churn"]
    assert [(v.version, v.stage) for v in registry.versions] == [(1, "archived"), (2, "production")]
    assert world.serving.serving == {"api": ("churn", 2)}

    edit(world.root, "models.yaml", "params: {C: 0.5}", "params: {C: 1.0}")
    assert "model_version.churn" in actions(world.plan())
    result = world.apply()
    assert errors(result) == []
    assert [o.message for o in result.outcomes if o.address == "model_version.churn"] == [
        "reuses v1 (no training)"
    ]
    registry = stored(world).models["churn"]
    assert registry.stages == {"staging": 1, "production": 1}
    assert [v.version for v in registry.versions] == [1, 2] and registry.next_version == 3
    assert world.trainer.calls == ["churn", "churn"], "v1 was reused, not trained again"
    assert world.serving.serving == {"api": ("churn", 1)}


def test_a_tampered_artifact_is_retrained_under_the_same_version_number(world: World) -> None:
    world.apply()
    v1 = stored(world).models["churn"].versions[0]
    assert v1.artifact is not None
    world.store.tamper(v1.artifact)
    plan = world.plan()
    assert [d.address for d in plan.drift] == ["model_version.churn"]
    assert errors(world.apply(plan)) == []
    registry = stored(world).models["churn"]
    [again] = registry.versions
    assert again.version == 1 and again.artifact is not None and again.artifact.uri != v1.artifact.uri
    assert world.store.health(again.artifact, deep=True) == "ok"
    assert world.trainer.calls == ["churn", "churn"]
    assert not world.plan().has_changes


def test_a_promotion_refuses_a_tampered_artifact(world: World) -> None:
    world.apply()
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    world.apply()
    v1 = stored(world).models["churn"].versions[0]
    assert v1.artifact is not None
    world.store.tamper(v1.artifact)  # archived v1 is damaged, then production is pinned to it
    edit(world.root, "models.yaml", "production: staging", "production: 1")
    plan = world.plan()
    assert actions(plan)["stage.churn.production"] == ["promote"]
    result = world.apply(plan)
    assert (
        f"stage.churn.production: refusing to promote v1: artifact {v1.artifact.uri} is tampered"
        in errors(result)
    )
    assert stored(world).models["churn"].stages["production"] == 2
    assert world.serving.serving == {"api": ("churn", 2)}


def test_removed_endpoint_is_undeployed_and_forgotten(world: World) -> None:
    world.apply()
    (world.root / "environments" / "dev" / "deployments.yaml").unlink()
    assert actions(world.plan()) == {"endpoint.api": ["delete"]}
    assert errors(world.apply()) == []
    assert "endpoint.api" not in stored(world).resources
    assert world.serving.calls[-1] == ("undeploy", "api", None) and world.serving.serving == {}
    assert not world.plan().has_changes


def test_a_replaced_version_is_trained_again_in_place(world: World) -> None:
    world.apply()
    plan = world.plan(replace=["model_version.churn"])
    assert errors(world.apply(plan)) == []
    registry = stored(world).models["churn"]
    assert [v.version for v in registry.versions] == [1] and world.trainer.calls == ["churn", "churn"]
    assert registry.versions[0].run_id == "run-2"


def test_a_targeted_apply_does_only_the_target_and_what_it_needs(world: World) -> None:
    plan = world.plan(targets=["feature_view.cf"])
    assert list(actions(plan)) == ["dataset.activity", "entity.customer", "feature_view.cf"]
    assert errors(world.apply(plan)) == []
    assert sorted(stored(world).resources) == ["dataset.activity", "entity.customer", "feature_view.cf"]
    assert world.trainer.calls == [] and world.serving.calls == []
    rest = [a for a in EVERYTHING if a not in ("dataset.activity", "entity.customer", "feature_view.cf")]
    assert list(actions(world.plan())) == rest
