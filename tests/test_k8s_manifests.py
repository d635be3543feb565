"""Rendered Kubernetes manifests: deterministic, and valid against the real Kubernetes schemas
(`kubernetes-validate --strict`, which ships the OpenAPI schemas of each release)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import edit, invoke
from mlctl.providers.k8s import (
    VERSION_LABEL,
    endpoint_manifests,
    job_name,
    to_yaml,
    training_job_manifest,
)
from mlctl.spec.models import Autoscale, Endpoint, K8sProvider
from mlctl.state.document import Artifact

# Pinned: the oldest release we support and a current one.
K8S_VERSIONS = ("1.29.0", "1.33.0")
ARTIFACT = Artifact(uri="s3://models/artifacts/prod/churn/run1/model.joblib", sha256="ab" * 32, size=123)
PROVIDER = K8sProvider(
    type="k8s",
    namespace="ml-prod",
    image="ghcr.io/acme/mlctl:1.2.3",
    resources={"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "2Gi"}},
)


def validate(manifest: dict) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    return {m["kind"]: m for m in manifests}


def test_endpoint_manifests_are_valid_and_carry_the_version() -> None:
    endpoint = Endpoint(model="churn-predictor", stage="production", provider="k8s", replicas=3)
    manifests = endpoint_manifests("prod", "churn-api", endpoint, PROVIDER, version=7, artifact=ARTIFACT)
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "PodDisruptionBudget"]
    for manifest in manifests:
        validate(manifest)
    deployment = by_kind(manifests)["Deployment"]
    assert deployment["metadata"]["labels"][VERSION_LABEL] == "7"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "7"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"][VERSION_LABEL] == "7"
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "7"
    # Scraped by annotation (no ServiceMonitor CRD needed), on the container's port.
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(
        template["spec"]["containers"][0]["ports"][0]["containerPort"]
    )
    # The selector must not contain the version: a new version is a rolling update, not a new ReplicaSet set.
    assert VERSION_LABEL not in deployment["spec"]["selector"]["matchLabels"]
    container = template["spec"]["containers"][0]
    assert container["image"] == PROVIDER.image
    assert container["args"][:4] == ["serve", "churn-predictor", "-e", "prod"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLCTL_MODEL_VERSION"] == "7" and env["MLCTL_MODEL_URI"] == ARTIFACT.uri
    assert env["MLCTL_MODEL_SHA256"] == ARTIFACT.sha256
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"] == {
        "limits": {"memory": "2Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    service = by_kind(manifests)["Service"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # Three replicas: a drain takes at most one at a time.
    budget = by_kind(manifests)["PodDisruptionBudget"]
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}


def test_one_replica_has_no_disruption_budget() -> None:
    endpoint = Endpoint(model="churn-predictor", provider="k8s", replicas=1)
    manifests = endpoint_manifests("prod", "churn-api", endpoint, PROVIDER, version=1, artifact=ARTIFACT)
    assert [m["kind"] for m in manifests] == ["Deployment", "Service"]


def test_the_serving_token_comes_from_a_secret_or_the_manifest_says_insecure() -> None:
    endpoint = Endpoint(model="churn-predictor", provider="k8s")

    def container(provider: K8sProvider) -> dict:
        deployment = endpoint_manifests("prod", "api", endpoint, provider, version=1, artifact=ARTIFACT)[0]
        validate(deployment)
        return deployment["spec"]["template"]["spec"]["containers"][0]

    open_one = container(PROVIDER)
    assert open_one["args"][-1] == "--insecure"
    assert not [e for e in open_one["env"] if e["name"] == "MLCTL_SERVE_TOKEN"]
    guarded = container(PROVIDER.model_copy(update={"token_secret": "churn-api-token"}))
    assert "--insecure" not in guarded["args"]
    (token,) = [e for e in guarded["env"] if e["name"] == "MLCTL_SERVE_TOKEN"]
    assert token == {
        "name": "MLCTL_SERVE_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "churn-api-token", "key": "token"}},
    }


def test_autoscale_adds_a_valid_hpa_and_leaves_replicas_to_it() -> None:
    endpoint = Endpoint(
        model="churn-predictor",
        provider="k8s",
        autoscale=Autoscale(min_replicas=2, max_replicas=10, target_cpu_percent=60),
    )
    manifests = endpoint_manifests("prod", "churn-api", endpoint, PROVIDER, version=1, artifact=ARTIFACT)
    for manifest in manifests:
        validate(manifest)
    kinds = by_kind(manifests)
    assert list(kinds) == ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"]
    assert "replicas" not in kinds["Deployment"]["spec"]
    hpa = kinds["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn-api"


def test_training_job_is_valid_and_named_by_identity() -> None:
    identity = "sha256:" + "0123456789abcdef" * 4
    job = training_job_manifest(
        "prod", "churn-predictor", PROVIDER, identity=identity, result_uri="s3://m/r.json"
    )
    validate(job)
    assert job["metadata"]["name"] == "train-churn-predictor-0123456789ab"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert len(job_name("m" * 80, identity)) <= 63


def test_invalid_manifest_is_caught_by_the_validator() -> None:
    """The validator is not a rubber stamp: a misspelt field fails strict validation."""
    endpoint = Endpoint(model="churn-predictor", provider="k8s")
    deployment = endpoint_manifests("prod", "api", endpoint, PROVIDER, version=1, artifact=ARTIFACT)[0]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def test_rendering_is_deterministic() -> None:
    endpoint = Endpoint(model="m", provider="k8s", autoscale=Autoscale())
    one = to_yaml(endpoint_manifests("prod", "api", endpoint, PROVIDER, version=2, artifact=ARTIFACT))
    two = to_yaml(endpoint_manifests("prod", "api", endpoint, PROVIDER, version=2, artifact=ARTIFACT))
    assert one == two
    assert next(iter(yaml.safe_load_all(one)))["kind"] == "Deployment"
    assert one.startswith("apiVersion: apps/v1\nkind: Deployment\nmetadata:")


K8S_PROVIDER_FILE = "type: k8s\nnamespace: ml-dev\nimage: ghcr.io/acme/mlctl:1.0.0\n"


def use_k8s(repo: Path) -> None:
    (repo / "providers" / "k8s.yaml").write_text(K8S_PROVIDER_FILE)
    edit(repo / "environments" / "dev" / "deployments.yaml", "provider: local", "provider: k8s")


def test_render_command_writes_valid_files_for_gitops(applied: Path, tmp_path: Path) -> None:
    use_k8s(applied)
    edit(applied / "environments" / "dev" / "deployments.yaml", "replicas: 1", "replicas: 2")
    out = tmp_path / "manifests"
    result = invoke(applied, "render", "-e", "dev", "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "deployment-churn-api.yaml",
        "kustomization.yaml",
        "poddisruptionbudget-churn-api.yaml",
        "service-churn-api.yaml",
    ]
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [n for n in names if n != "kustomization.yaml"]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert invoke(applied, "render", "-e", "dev", "--out", str(out)).exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    deployment = yaml.safe_load((out / "deployment-churn-api.yaml").read_text())
    assert deployment["metadata"]["labels"][VERSION_LABEL] == "1"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1"
    assert deployment["metadata"]["namespace"] == "ml-dev"
    # Back to one replica: the budget's file goes away with it.
    edit(applied / "environments" / "dev" / "deployments.yaml", "replicas: 2", "replicas: 1")
    assert invoke(applied, "render", "-e", "dev", "--out", str(out)).exit_code == 0
    assert not (out / "poddisruptionbudget-churn-api.yaml").exists()
    assert invoke(applied, "render", "-e", "dev", "--out", str(out)).exit_code == 0
    edit(applied / "environments" / "dev" / "deployments.yaml", "replicas: 1", "replicas: 2")
    assert invoke(applied, "render", "-e", "dev", "--out", str(out)).exit_code == 0
    cli = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubernetes-validate"
    )
    assert cli, "kubernetes-validate CLI not installed"
    files = [str(out / n) for n in names if n != "kustomization.yaml"]
    checked = subprocess.run(
        [cli, "--strict", "-k", K8S_VERSIONS[-1], *files], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_render_without_k8s_endpoints(applied: Path, tmp_path: Path) -> None:
    result = invoke(applied, "render", "-e", "dev", "--out", str(tmp_path / "a"))
    assert result.exit_code == 1 and "no endpoint of 'dev' uses a k8s provider" in result.stderr


def test_render_before_any_version(repo: Path, tmp_path: Path) -> None:
    use_k8s(repo)
    result = invoke(repo, "render", "-e", "dev", "--out", str(tmp_path / "b"))
    assert result.exit_code == 1 and "no endpoint has a version" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_token_secret_that_is_no_kubernetes_name_is_a_config_error(repo: Path) -> None:
    use_k8s(repo)
    with (repo / "providers" / "k8s.yaml").open("a") as f:
        f.write("token_secret: Churn_API_Token\n")
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1, result.output
    assert "k8s.yaml:4" in result.stderr and "token_secret" in result.stderr
    assert "Traceback" not in result.output
