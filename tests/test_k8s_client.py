"""The Kubernetes client code over real HTTP, against kmock's in-memory Kubernetes emulator
(see ``k8s_emulator.py`` for what the emulator does and does not do, and the controller that
plays the Deployment controller and the kubelet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import k8s_emulator
from conftest import edit, invoke
from k8s_emulator import ARTIFACT, PROVIDER, EmulatorThread, FakeSpec, kubeconfig, patch_object, requests_of
from mlctl.errors import MlctlError
from mlctl.providers.k8s import K8sServing, K8sTraining
from mlctl.spec.models import Autoscale, Endpoint

emulator = k8s_emulator.emulator  # fixtures: kmock's emulator, KUBECONFIG pointing at it
kube = k8s_emulator.kube


def serving_for(endpoint: Endpoint) -> K8sServing:
    return K8sServing(FakeSpec({"churn-api": endpoint}), PROVIDER)  # type: ignore[arg-type]


def test_deploy_is_server_side_apply_and_live_reads_the_version_label(kube: EmulatorThread) -> None:
    serving = serving_for(Endpoint(model="churn", provider="k8s", replicas=2))
    assert serving.live("churn-api") is None
    status = serving.deploy("churn-api", "churn", 3, ARTIFACT)
    assert status["version"] == 3
    assert status["objects"] == ["Deployment/churn-api", "Service/churn-api", "PodDisruptionBudget/churn-api"]
    assert status["rollout"] == "complete: 2 of 2 replicas updated and available"
    assert kube.controller.rollouts == [("churn-api", "3")]
    deployments = kube.objects("deployments")
    assert deployments[("ml", "churn-api")]["metadata"]["labels"]["mlctl.dev/model-version"] == "3"
    assert ("ml", "churn-api") in kube.objects("services")
    patches = requests_of(kube, "PATCH")
    assert patches, "no PATCH reached the emulator"
    for request in patches:
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params.get("fieldManager") == "mlctl" and request.params.get("force") == "true"
        assert request.headers.get("Authorization") == "Bearer test-token"
    assert serving.live("churn-api") == {
        "model": "churn",
        "version": 3,
        "replicas": 2,
        "ready_replicas": 2,
    }

    # Someone edits the cluster by hand: live() reports what is really there.
    patch_object(
        kube.url,
        "/apis/apps/v1/namespaces/ml/deployments/churn-api",
        {"metadata": {"labels": {"mlctl.dev/model-version": "9"}}},
    )
    live = serving.live("churn-api")
    assert live is not None and live["version"] == 9

    # A rollback is a new apply of the previous version: the Deployment is patched in place.
    serving.deploy("churn-api", "churn", 2, ARTIFACT)
    deployment = kube.objects("deployments")[("ml", "churn-api")]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLCTL_MODEL_VERSION"] == "2"
    assert deployment["spec"]["template"]["metadata"]["labels"]["mlctl.dev/model-version"] == "2"


def test_autoscale_removed_deletes_the_hpa_and_undeploy_removes_everything(kube: EmulatorThread) -> None:
    serving_for(Endpoint(model="churn", provider="k8s", autoscale=Autoscale())).deploy(
        "churn-api", "churn", 1, ARTIFACT
    )
    assert ("ml", "churn-api") in kube.objects("horizontalpodautoscalers")
    plain = serving_for(Endpoint(model="churn", provider="k8s"))
    plain.deploy("churn-api", "churn", 1, ARTIFACT)
    assert ("ml", "churn-api") not in kube.objects("horizontalpodautoscalers")
    plain.undeploy("churn-api")
    assert not kube.objects("deployments") and not kube.objects("services")
    plain.undeploy("churn-api")  # absent is not an error
    assert plain.live("churn-api") is None


def test_apply_false_leaves_the_cluster_to_gitops(kube: EmulatorThread) -> None:
    provider = PROVIDER.model_copy(update={"apply": False})
    spec = FakeSpec({"churn-api": Endpoint(model="churn", provider="k8s")})
    serving = K8sServing(spec, provider)  # type: ignore[arg-type]
    status = serving.deploy("churn-api", "churn", 4, ARTIFACT)
    assert status["version"] == 4 and status["applied_by"].startswith("gitops")
    assert serving.live("churn-api") is None
    serving.undeploy("churn-api")
    assert not getattr(kube.handler, "seen", [])  # not one request reached the API server


def test_training_job_submit_and_wait(kube: EmulatorThread) -> None:
    training = K8sTraining(FakeSpec({}), PROVIDER)  # type: ignore[arg-type]
    identity = "sha256:" + "ab" * 32
    job = training.submit("churn", identity=identity, result_uri="s3://b/results/x.json")
    name = job["metadata"]["name"]
    assert ("ml", name) in kube.objects("jobs")
    path = f"/apis/batch/v1/namespaces/ml/jobs/{name}"
    sleeps: list[float] = []

    def finish_later(seconds: float) -> None:
        sleeps.append(seconds)
        patch_object(kube.url, path, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})

    done = training.wait(name, poll=0.01, sleep=finish_later)
    assert done["metadata"]["name"] == name and len(sleeps) == 1
    patch_object(
        kube.url,
        path,
        {"status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}},
    )
    with pytest.raises(MlctlError, match="failed: BackoffLimitExceeded"):
        training.wait(name, poll=0.01)


def test_unreachable_api_server_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")))
    with pytest.raises(MlctlError, match="cannot reach the Kubernetes API"):
        serving_for(Endpoint(model="churn", provider="k8s")).live("churn-api")


def test_missing_kubeconfig_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(MlctlError, match="cannot configure Kubernetes"):
        serving_for(Endpoint(model="churn", provider="k8s")).live("churn-api")


# -- the whole flow through the CLI ---------------------------------------------------------


def test_apply_drift_and_rollback_through_the_cli(applied: Path, kube: EmulatorThread) -> None:
    (applied / "providers" / "k8s.yaml").write_text(
        "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\n"
    )
    edit(applied / "environments" / "dev" / "deployments.yaml", "provider: local", "provider: k8s")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    deployment = kube.objects("deployments")[("ml", "churn-api")]
    assert deployment["metadata"]["labels"]["mlctl.dev/model-version"] == "1"
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0

    # A hand edit in the cluster shows as drift, and apply puts it back.
    patch_object(
        kube.url,
        "/apis/apps/v1/namespaces/ml/deployments/churn-api",
        {"metadata": {"labels": {"mlctl.dev/model-version": "5"}}},
    )
    plan = json.loads(invoke(applied, "plan", "-e", "dev", "--format", "json").stdout)
    assert [d["address"] for d in plan["resource_drift"]] == ["endpoint.churn-api"]
    assert plan["resource_drift"][0]["change"]["after"]["version"] == 5
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    assert (
        kube.objects("deployments")[("ml", "churn-api")]["metadata"]["labels"]["mlctl.dev/model-version"]
        == "1"
    )

    # v2 goes to production; rollback patches the Deployment back to v1.
    edit(applied / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 7")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    assert (
        kube.objects("deployments")[("ml", "churn-api")]["metadata"]["labels"]["mlctl.dev/model-version"]
        == "2"
    )
    rolled = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--reason", "latency")
    assert rolled.exit_code == 0, rolled.output
    deployment = kube.objects("deployments")[("ml", "churn-api")]
    assert deployment["metadata"]["labels"]["mlctl.dev/model-version"] == "1"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
