"""A stage moves only once the endpoints serving it serve the new version (issue 12).

Serving processes follow the stage in state (``serving/follower.py``), so a stage recorded
before its endpoint's rollout is proven would make the old, healthy pods load a version whose
own pods crash-loop. The executor therefore deploys an endpoint before the stage it serves
moves away from a version, and a failed deploy leaves the stage where it was: the candidate
stays registered (and in staging), production keeps naming the version that serves, the
endpoint's state records the failed rollout, and the next plan proposes both again.
"""

from __future__ import annotations

from engine.harness import World, actions, errors
from mlctl.engine.outcomes import Status
from mlctl.state.document import State
from plan.world import edit


def stored(world: World) -> State:
    state = world.state
    assert state is not None
    return state


def production_while_deploying(world: World) -> list[int | None]:
    """What the stored state says production holds at each deploy, as a follower reads it."""
    seen: list[int | None] = []
    world.serving.during = lambda endpoint, version: seen.append(
        stored(world).models["churn"].stages["production"]
    )
    return seen


def test_a_failed_deploy_leaves_production_on_the_version_that_serves(world: World) -> None:
    world.apply()
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    world.serving.broken[("api", 2)] = "pod api-7f: CrashLoopBackOff"
    seen = production_while_deploying(world)

    result = world.apply()
    assert errors(result) == [
        "endpoint.api: rollout of v2 to api failed: pod api-7f: CrashLoopBackOff; production stays at v1"
    ]
    outcomes = [(o.address, o.status, o.message) for o in result.outcomes]
    assert [o[0] for o in outcomes] == [
        "model_version.churn",
        "stage.churn.staging",
        "endpoint.api",  # deployed before the stage it serves moves
        "stage.churn.production",
    ]
    assert outcomes[-1] == (
        "stage.churn.production",
        Status.SKIPPED,
        "production stays at v1: endpoint.api did not roll out v2",
    )
    assert seen == [1], "while v2 rolled out, the state still named v1 for production"

    state = stored(world)
    registry = state.models["churn"]
    assert registry.stages == {"staging": 2, "production": 1}
    assert [(v.version, v.status, v.stage) for v in registry.versions] == [
        (1, "passed", "production"),
        (2, "passed", "staging"),
    ]
    assert [(e.stage, e.to_version) for e in registry.history] == [
        ("staging", 1),
        ("production", 1),
        ("staging", 2),
    ], "production never moved, so its history records no move"
    assert state.resources["stage.churn.production"].status["version"] == 1
    endpoint = state.resources["endpoint.api"].status
    assert endpoint["version"] == 1
    failure = endpoint["failed_deploy"]
    assert (failure["version"], failure["commit"], failure["by"]) == (2, "c0ffee", "tester@host")
    assert failure["reason"] == "rollout of v2 to api failed: pod api-7f: CrashLoopBackOff"
    assert world.serving.serving == {"api": ("churn", 1)}

    # The next plan proposes the promotion and the deploy again; once the pods come up,
    # production moves, after the endpoint serves v2 and without training again.
    plan = world.plan()
    assert actions(plan) == {"stage.churn.production": ["promote"], "endpoint.api": ["deploy"]}
    [retry] = [c for c in plan.resource_changes if c.address == "endpoint.api"]
    assert "retry: its last deploy failed at " in retry.reason
    assert retry.reason.endswith("pod api-7f: CrashLoopBackOff")
    world.serving.broken.clear()
    seen.clear()
    assert errors(world.apply(plan)) == []
    assert seen == [1]
    state = stored(world)
    assert state.models["churn"].stages == {"staging": 2, "production": 2}
    assert state.resources["endpoint.api"].status["version"] == 2
    assert "failed_deploy" not in state.resources["endpoint.api"].status
    assert world.serving.serving == {"api": ("churn", 2)}
    assert world.trainer.calls == ["churn", "churn"]
    assert not world.plan().has_changes


def test_a_first_deploy_promotes_first_since_nothing_served_before(world: World) -> None:
    """With production empty there is no version to keep serving, and a new pod has nothing
    to load (``/ready`` answers 503) until production names one: the stage moves first."""
    seen = production_while_deploying(world)
    world.serving.broken[("api", 1)] = "pod api-1a: ImagePullBackOff"
    result = world.apply()
    assert errors(result) == ["endpoint.api: rollout of v1 to api failed: pod api-1a: ImagePullBackOff"]
    assert seen == [1]
    assert stored(world).models["churn"].stages == {"staging": 1, "production": 1}
    assert "endpoint.api" not in stored(world).resources
    world.serving.broken.clear()
    assert actions(world.plan()) == {"endpoint.api": ["create", "deploy"]}


def test_when_one_of_two_endpoints_fails_the_other_is_put_back(world: World) -> None:
    (world.root / "environments" / "dev" / "deployments.yaml").write_text(
        "endpoints:\n  api: {model: churn, stage: production}\n  eu: {model: churn, stage: production}\n"
    )
    world.apply()
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    world.serving.broken[("eu", 2)] = "pod eu-3c: CrashLoopBackOff"
    result = world.apply()
    assert errors(result) == [
        "endpoint.eu: rollout of v2 to eu failed: pod eu-3c: CrashLoopBackOff; production stays at v1"
    ]
    skipped = [(o.address, o.message) for o in result.outcomes if o.status is Status.SKIPPED]
    assert skipped == [
        (
            "stage.churn.production",
            "production stays at v1: endpoint.eu did not roll out v2 (endpoint.api put back to v1)",
        )
    ]
    assert world.serving.calls[-3:] == [("deploy", "api", 2), ("deploy", "eu", 2), ("deploy", "api", 1)]
    assert world.serving.serving == {"api": ("churn", 1), "eu": ("churn", 1)}
    state = stored(world)
    assert state.models["churn"].stages["production"] == 1
    assert state.resources["endpoint.api"].status["version"] == 1
    assert state.resources["endpoint.eu"].status["version"] == 1

    world.serving.broken.clear()
    assert errors(world.apply()) == []
    assert world.serving.serving == {"api": ("churn", 2), "eu": ("churn", 2)}
    assert stored(world).models["churn"].stages["production"] == 2
    assert not world.plan().has_changes
