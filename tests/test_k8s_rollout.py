"""Deploy means serving: the k8s provider waits for the rollout and records a failed one as a
failed action, the previous version still live. The cluster is kmock's emulator with
:class:`k8s_emulator.DeploymentController` playing the Deployment controller and kubelet
(rollouts complete, or one new pod crash-loops / fails its readiness probe on purpose)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import kmock  # noqa: F401  (a dev extra: the in-memory Kubernetes API emulator)
import pytest

import k8s_emulator
from conftest import edit, invoke, state_of
from k8s_emulator import ARTIFACT, PROVIDER, EmulatorThread, FakeSpec, requests_of
from mlctl.providers.k8s import K8sServing, RolloutFailed, pod_problem, rollout_progress
from mlctl.spec.models import Endpoint

emulator = k8s_emulator.emulator  # fixtures: kmock's emulator, KUBECONFIG pointing at it
kube = k8s_emulator.kube
DEPLOYMENTS = Path("environments/dev/deployments.yaml")
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/ml/deployments/churn-api"


def serving(timeout: int = 30, replicas: int = 2) -> K8sServing:
    provider = PROVIDER.model_copy(update={"rollout_timeout": timeout})
    spec = FakeSpec({"churn-api": Endpoint(model="churn", provider="k8s", replicas=replicas)})
    return K8sServing(spec, provider)  # type: ignore[arg-type]


def live_version(kube: EmulatorThread) -> str:
    deployment = kube.objects("deployments")[("ml", "churn-api")]
    return str(deployment["metadata"]["labels"]["mlctl.dev/model-version"])


def reads_of_the_deployment(kube: EmulatorThread) -> int:
    if not hasattr(kube.handler, "seen"):  # no request yet
        return 0
    return sum(1 for r in requests_of(kube, "GET") if r.name == "churn-api")


def test_deploy_returns_only_once_the_rollout_is_complete(kube: EmulatorThread) -> None:
    kube.controller.paused.set()
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(serving().deploy("churn-api", "churn", 1, ARTIFACT))
    )
    thread.start()
    try:
        # The manifests are accepted and polled several times, and deploy has not returned.
        while reads_of_the_deployment(kube) < 5:
            assert thread.is_alive(), outcome
            thread.join(0.02)
        assert thread.is_alive() and not outcome and not kube.controller.rollouts
    finally:
        kube.controller.paused.clear()
        thread.join(30)
    assert not thread.is_alive()
    assert kube.controller.rollouts == [("churn-api", "1")]
    assert outcome["rollout"] == "complete: 2 of 2 replicas updated and available"


def test_rollout_timeout_zero_does_not_wait(kube: EmulatorThread) -> None:
    kube.controller.paused.set()
    status = serving(timeout=0).deploy("churn-api", "churn", 1, ARTIFACT)
    assert status["rollout"] == "not awaited (rollout_timeout: 0)"
    assert not kube.controller.rollouts


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "CreateContainerConfigError"])
def test_a_failing_pod_fails_the_rollout_and_restores_the_previous_version(
    kube: EmulatorThread, reason: str
) -> None:
    provider = serving()
    provider.deploy("churn-api", "churn", 1, ARTIFACT)
    kube.controller.broken["2"] = reason
    with pytest.raises(RolloutFailed) as failed:
        provider.deploy("churn-api", "churn", 2, ARTIFACT)
    message = str(failed.value)
    assert message.startswith("rollout of v2 to ml/churn-api failed: pod churn-api-")
    assert reason in message and message.endswith(
        "; the Deployment is back at v1 (its old pods kept running)"
    )
    if reason == "CrashLoopBackOff":
        assert "last exit code 1 (Error)" in message
    # The Deployment's spec is v1's again: the cluster agrees with what the state will say.
    assert live_version(kube) == "1"
    template = kube.objects("deployments")[("ml", "churn-api")]["spec"]["template"]
    assert template["metadata"]["labels"]["mlctl.dev/model-version"] == "1"
    live = provider.live("churn-api")
    assert live is not None and live["version"] == 1


def test_readiness_failing_until_the_deadline_fails_the_rollout(kube: EmulatorThread) -> None:
    provider = serving(timeout=1)
    provider.deploy("churn-api", "churn", 1, ARTIFACT)
    kube.controller.broken["2"] = "unready"
    with pytest.raises(
        RolloutFailed,
        match=r"running but not ready \(readiness probe failing\); the Deployment is back at v1",
    ):
        provider.deploy("churn-api", "churn", 2, ARTIFACT)
    assert live_version(kube) == "1"


def test_a_first_deploy_that_fails_says_nothing_served_before(kube: EmulatorThread) -> None:
    kube.controller.broken["1"] = "CrashLoopBackOff"
    with pytest.raises(RolloutFailed, match="nothing served before"):
        serving().deploy("churn-api", "churn", 1, ARTIFACT)


def test_rollout_progress_reads_the_deployment_as_kubectl_does() -> None:
    def deployment(generation: int, **status: Any) -> dict[str, Any]:
        return {"metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status}

    full = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    assert rollout_progress(deployment(2, observedGeneration=1, **full))[0] is False  # stale status
    assert rollout_progress(deployment(2, observedGeneration=2, **full))[0] is True
    assert rollout_progress(deployment(2, observedGeneration=2, **{**full, "updatedReplicas": 1})) == (
        False,
        "1 of 2 replicas updated",
    )
    assert rollout_progress(deployment(2, observedGeneration=2, **{**full, "replicas": 3}))[1] == (
        "1 old replica(s) pending termination"
    )
    assert rollout_progress(deployment(2, observedGeneration=2, **{**full, "availableReplicas": 1}))[1] == (
        "1 of 2 updated replicas available"
    )
    exceeded = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": "m",
    }
    with pytest.raises(RolloutFailed, match="ProgressDeadlineExceeded: m"):
        rollout_progress(deployment(2, observedGeneration=2, conditions=[exceeded]))
    forbidden = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": 'pods "x" is forbidden: violates PodSecurity "restricted:latest"',
    }
    with pytest.raises(RolloutFailed, match=r"FailedCreate: pods .* violates PodSecurity"):
        rollout_progress(deployment(2, observedGeneration=2, conditions=[forbidden]))


def test_pod_problem_waits_for_transient_states_until_the_deadline() -> None:
    pulling = {
        "metadata": {"name": "p"},
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]},
    }
    assert pod_problem([pulling], final=False) is None
    assert pod_problem([pulling], final=True) == "pod p: ContainerCreating"
    unschedulable = {
        "metadata": {"name": "q"},
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
            ]
        },
    }
    assert pod_problem([unschedulable], final=False) is None
    assert pod_problem([unschedulable], final=True) == "pod q: Unschedulable 0/3 nodes"


# -- through the CLI ------------------------------------------------------------------------


@pytest.fixture
def on_k8s(applied: Path, kube: EmulatorThread) -> Path:
    (applied / "providers" / "k8s.yaml").write_text(
        "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\nrollout_timeout: 60\n"
    )
    edit(applied / DEPLOYMENTS, "provider: local", "provider: k8s")
    return applied


def endpoint_change(repo: Path) -> dict[str, Any] | None:
    result = invoke(repo, "plan", "-e", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    for change in json.loads(result.stdout)["resource_changes"]:
        if change["address"] == "endpoint.churn-api":
            return dict(change)
    return None


def test_a_crash_looping_version_is_a_failed_deploy_and_the_next_plan_retries_it(
    on_k8s: Path, kube: EmulatorThread
) -> None:
    first = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
    assert first.exit_code == 0, first.output
    assert live_version(kube) == "1" and kube.controller.rollouts == [("churn-api", "1")]
    assert state_of(on_k8s)["resources"]["endpoint.churn-api"]["status"]["rollout"].startswith("complete")

    # v2 trains and passes its gates, but its pods crash-loop.
    kube.controller.broken["2"] = "CrashLoopBackOff"
    edit(on_k8s / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 7")
    failed = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
    assert failed.exit_code == 1
    assert "Traceback" not in failed.output
    errors = [
        line for line in failed.output.splitlines() if "endpoint.churn-api" in line and "CrashLoop" in line
    ]
    assert errors, failed.output
    assert (
        "rollout of v2 to ml/churn-api failed" in errors[-1] and "the Deployment is back at v1" in errors[-1]
    )
    # The state keeps v1 as what the endpoint serves; the cluster's Deployment is v1's again.
    endpoint = state_of(on_k8s)["resources"]["endpoint.churn-api"]["status"]
    assert endpoint["version"] == 1
    assert live_version(kube) == "1"

    # The next plan shows the deploy still to do (no drift: the cluster agrees with state).
    plan = json.loads(invoke(on_k8s, "plan", "-e", "dev", "--format", "json").stdout)
    assert not [d for d in plan.get("resource_drift", []) if d["address"] == "endpoint.churn-api"]
    change = endpoint_change(on_k8s)
    assert change is not None and change["change"]["actions"] != ["no-op"]
    text = invoke(on_k8s, "plan", "-e", "dev").stdout
    assert "endpoint.churn-api" in text

    # Fixed (the image, say): the same apply converges.
    kube.controller.broken.clear()
    fixed = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
    assert fixed.exit_code == 0, fixed.output
    assert live_version(kube) == "2"
    assert state_of(on_k8s)["resources"]["endpoint.churn-api"]["status"]["version"] == 2
    assert invoke(on_k8s, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


# -- a canary on the cluster ------------------------------------------------------------------
#
# One Deployment serves both arms (docs/rollouts.md#kubernetes): a step is a state write that
# every pod's state follower picks up, not a new pod template, so it restarts nothing; the
# promotion is a deploy of the candidate like any other. The "pod" below is the serving app
# built from the container args the emulated Deployment holds, reading the same state (a
# real pod reads it from the environment's S3 backend; here the repository's state file).


def pod_app(repo: Path, kube: EmulatorThread) -> Any:
    """The serving app a pod of the live Deployment runs (its args: ``serve MODEL -e ENV
    --stage STAGE ...`` after the image's ``mlctl`` ENTRYPOINT)."""
    from mlctl.serving.app import create_app

    deployment = kube.objects("deployments")[("ml", "churn-api")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "serve"
    env, stage = args[args.index("-e") + 1], args[args.index("--stage") + 1]
    return create_app(repo, env, args[1], stage, token=None, flush_interval=0.05, poll_interval=0.05)


def wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_canary_step_reaches_the_pods_without_a_restart_and_promotion_rolls_the_deployment(
    on_k8s: Path, kube: EmulatorThread
) -> None:
    from fastapi.testclient import TestClient

    from rollout_support import row

    models = on_k8s / "environments" / "dev" / "models.yaml"
    edit(models, "      production: staging ", "      production: 1       ")
    first = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
    assert first.exit_code == 0, first.output
    edit(models, "random_state: 42", "random_state: 7")  # v2: another forest, as good
    second = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
    assert second.exit_code == 0, second.output
    assert state_of(on_k8s)["models"]["churn-predictor"]["stages"] == {"staging": 2, "production": 1}
    assert kube.controller.rollouts == [("churn-api", "1")] and live_version(kube) == "1"

    with TestClient(pod_app(on_k8s, kube)) as pod:
        before = kube.objects("deployments")[("ml", "churn-api")]
        started = invoke(on_k8s, "rollout", "step", "churn-api", "-e", "dev")
        assert started.exit_code == 0, started.output
        assert "canary of staging v2 next to v1: running, step 1/4 [5, 25, 50, 100]" in started.output
        follower = pod.app.state.service.follower  # type: ignore[attr-defined]
        wait_until(lambda: follower.arms is not None and follower.arms.weight == 5.0, "the pod to serve 5%")
        # the step changed what the pods serve, not the Deployment: no new pod template
        after = kube.objects("deployments")[("ml", "churn-api")]
        assert (
            after["spec"] == before["spec"]
            and after["metadata"]["generation"] == before["metadata"]["generation"]
        )
        assert kube.controller.rollouts == [("churn-api", "1")]
        arms: dict[str, int] = {}
        for i in range(2000):
            response = pod.post("/predict", json=row(i))
            assert response.status_code == 200
            arm = response.headers["x-mlctl-arm"]
            arms[arm] = arms.get(arm, 0) + 1
            if arm == "candidate":
                assert response.headers["x-mlctl-version"] == "2"
        assert abs(arms.get("candidate", 0) / 2000 - 0.05) <= 0.03, arms

        # the people's lever: production moves to v2 and the Deployment rolls out v2
        promoted = invoke(on_k8s, "rollout", "promote", "churn-api", "-e", "dev", "--reason", "looks good")
        assert promoted.exit_code == 0, promoted.output
        assert kube.controller.rollouts == [("churn-api", "1"), ("churn-api", "2")]
        assert live_version(kube) == "2"
        wait_until(lambda: follower.arms is None and pod.get("/model").json()["version"] == 2, "v2 to serve")
    state = state_of(on_k8s)
    assert state["models"]["churn-predictor"]["stages"]["production"] == 2
    assert state["resources"]["endpoint.churn-api"]["status"]["version"] == 2
    assert "production: 2" in models.read_text()  # written back, as rollback does
    # state, git and the cluster agree: nothing to plan, no drift
    assert invoke(on_k8s, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0
