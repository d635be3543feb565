"""A crash-looping rollout never reaches the replicas that follow the state (issue 12).

End to end through the CLI: kmock's emulator is the cluster (with
:class:`k8s_emulator.DeploymentController` rolling Deployments out, or crash-looping the
new pods of a version on purpose), and a real :class:`~mlctl.serving.follower.StateFollower`
-- what every serving pod runs -- watches the state file for the whole apply. A failed
rollout of v2 is recorded as a failed deploy; production keeps naming v1 in state, so the
follower never loads v2; once v2's pods come up, production moves and the follower follows.
"""

from __future__ import annotations

import time
from pathlib import Path

import kmock  # noqa: F401  (a dev extra: the in-memory Kubernetes API emulator)
import pytest

import k8s_emulator
from conftest import edit, invoke, state_of
from k8s_emulator import EmulatorThread
from mlctl.serving.follower import LoadedModel, StateFollower

emulator = k8s_emulator.emulator  # fixtures: kmock's emulator, KUBECONFIG pointing at it
kube = k8s_emulator.kube
MODEL = "churn-predictor"


@pytest.fixture
def on_k8s(applied: Path, kube: EmulatorThread) -> Path:
    """The applied example (v1 in staging and production), its endpoint moved to the cluster
    and deployed there."""
    (applied / "providers" / "k8s.yaml").write_text(
        "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\nrollout_timeout: 60\n"
    )
    edit(applied / "environments" / "dev" / "deployments.yaml", "provider: local", "provider: k8s")
    first = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert first.exit_code == 0, first.output
    assert kube.controller.rollouts == [("churn-api", "1")]
    return applied


def live_version(kube: EmulatorThread) -> str:
    deployment = kube.objects("deployments")[("ml", "churn-api")]
    return str(deployment["metadata"]["labels"]["mlctl.dev/model-version"])


def test_a_crash_looping_rollout_is_a_failed_deploy_and_production_stays(
    on_k8s: Path, kube: EmulatorThread
) -> None:
    swaps: list[int | None] = []

    def swapped(old: LoadedModel | None, new: LoadedModel | None) -> None:
        swaps.append(new.version if new else None)

    follower = StateFollower(on_k8s, "dev", MODEL, "production", poll_interval=0.05, on_swap=swapped)
    follower.refresh(force=True)
    assert follower.current is not None and follower.current.version == 1
    assert swaps == [1]  # the first load
    swaps.clear()
    follower.start()
    try:
        # v2 trains and passes its gates, but its pods crash-loop.
        kube.controller.broken["2"] = "CrashLoopBackOff"
        edit(on_k8s / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 7")
        failed = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
        assert failed.exit_code == 1, failed.output
        assert "Traceback" not in failed.output
        follower.refresh(force=True)
        assert swaps == [] and follower.current is not None and follower.current.version == 1
        # One line says the stage did not move, and why.
        assert (
            f"stage.{MODEL}.production: skipped: production stays at v1: "
            "endpoint.churn-api did not roll out v2" in failed.output.splitlines()
        )

        state = state_of(on_k8s)
        registry = state["models"][MODEL]
        assert registry["stages"] == {"staging": 2, "production": 1}
        assert [(v["version"], v["status"]) for v in registry["versions"]] == [(1, "passed"), (2, "passed")]
        assert not [e for e in registry["history"] if e["stage"] == "production" and e["to_version"] == 2]
        assert state["resources"][f"stage.{MODEL}.production"]["status"]["version"] == 1
        endpoint = state["resources"]["endpoint.churn-api"]["status"]
        assert endpoint["version"] == 1 and endpoint["rollout"].startswith("complete")
        failure = endpoint["failed_deploy"]
        assert failure["version"] == 2
        assert failure["reason"].startswith("rollout of v2 to ml/churn-api failed: pod churn-api-")
        assert "CrashLoopBackOff" in failure["reason"] and "back at v1" in failure["reason"]
        assert live_version(kube) == "1"

        # The next plan proposes the promotion and the deploy again.
        plan = invoke(on_k8s, "plan", "-e", "dev").stdout
        assert f"stage.{MODEL}.production" in plan and "endpoint.churn-api" in plan

        # Once v2's pods come up, production moves, and the follower (a live one: it did
        # not just fail to notice) swaps to v2.
        kube.controller.broken.clear()
        fixed = invoke(on_k8s, "apply", "-e", "dev", "--auto-approve")
        assert fixed.exit_code == 0, fixed.output
        deadline = time.monotonic() + 10
        while swaps != [2] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert swaps == [2]
    finally:
        follower.stop()
    assert state_of(on_k8s)["models"][MODEL]["stages"]["production"] == 2
    assert "failed_deploy" not in state_of(on_k8s)["resources"]["endpoint.churn-api"]["status"]
    assert live_version(kube) == "2"
    assert invoke(on_k8s, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0
