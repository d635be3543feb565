"""The Kubernetes client code over real HTTP, against kmock's in-memory Kubernetes emulator.

The emulator is not a cluster: it stores objects as JSON and merges patches, without
validation or defaulting (manifests are validated against the real schemas in
``test_k8s_manifests.py``). It does not create objects on a server-side-apply PATCH, so the
emulator here adds exactly that (create on apply, as the API server does); nothing else.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest

from conftest import edit, invoke
from mlctl.errors import MlctlError
from mlctl.providers.k8s import K8sServing, K8sTraining
from mlctl.spec.models import Autoscale, Endpoint, K8sProvider
from mlctl.state.document import Artifact


class ApplyingEmulator(kmock.KubernetesEmulator):  # type: ignore[misc,name-defined]
    """kmock's emulator plus the one API-server behaviour mlctl relies on that it lacks:
    a server-side apply (PATCH, application/apply-patch+yaml) of a missing object creates it."""

    seen: list[Any]

    async def _handle(self, request: Any) -> Any:
        if not hasattr(self, "seen"):
            self.seen = []
        self.seen.append(request)
        content_type = (request.headers or {}).get("Content-Type", "")
        if (
            request.resource is not None
            and request.method == kmock.method.PATCH
            and "apply-patch" in content_type
            and request.name is not None
        ):
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    body = dict(request.data)
                    if key in self._objects:
                        self._objects[key].create(body)
                    else:
                        self._objects[key] = body
        return await super()._handle(request)


class EmulatorThread:
    """Runs the emulator's aiohttp server on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop_event: asyncio.Event | None = None
        self.url = ""
        self.handler: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.stop_event = asyncio.Event()
        async with ApplyingEmulator() as handler, kmock.Server(handler) as server:
            self.handler = handler
            self.url = str(server.url).rstrip("/")
            self.ready.set()
            await self.stop_event.wait()

    def start(self) -> EmulatorThread:
        self.thread.start()
        assert self.ready.wait(10), "emulator did not start"
        return self

    def stop(self) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)

    def objects(self, plural: str) -> dict[tuple[str | None, str], dict[str, Any]]:
        out = {}
        for (resource, namespace, name), obj in list(self.handler.objects.items()):
            if resource.plural == plural and not obj.deleted:
                out[(namespace, name)] = obj.raw
        return out


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    server = EmulatorThread().start()
    try:
        yield server
    finally:
        server.stop()


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: emulator
  cluster: {{server: "{url}"}}
users:
- name: tester
  user: {{token: test-token}}
contexts:
- name: emulator
  context: {{cluster: emulator, user: tester, namespace: ml}}
current-context: emulator
"""
    )
    return path


def patch_object(url: str, path: str, body: dict[str, Any]) -> None:
    """A hand edit, as `kubectl patch --type merge` would make it."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def requests_of(emulator: EmulatorThread, method: str) -> list[Any]:
    return [r for r in list(emulator.handler.seen) if str(r.method).upper().endswith(method)]


@pytest.fixture
def kube(emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmulatorThread:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", emulator.url)))
    return emulator


PROVIDER = K8sProvider(type="k8s", namespace="ml", image="ghcr.io/acme/mlctl:1.0.0")
ARTIFACT = Artifact(uri="s3://b/artifacts/dev/churn/r1/model.joblib", sha256="cd" * 32, size=10)


class FakeSpec:
    """Just what K8sServing reads of an EnvSpec: the environment name and its endpoints."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.name = "dev"
        self.config = type("Config", (), {"endpoints": endpoints})()


def serving_for(endpoint: Endpoint) -> K8sServing:
    return K8sServing(FakeSpec({"churn-api": endpoint}), PROVIDER)  # type: ignore[arg-type]


def test_deploy_is_server_side_apply_and_live_reads_the_version_label(kube: EmulatorThread) -> None:
    serving = serving_for(Endpoint(model="churn", provider="k8s", replicas=2))
    assert serving.live("churn-api") is None
    status = serving.deploy("churn-api", "churn", 3, ARTIFACT)
    assert status["version"] == 3 and status["objects"] == ["Deployment/churn-api", "Service/churn-api"]
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
        "ready_replicas": None,
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
    assert [d["address"] for d in plan["drift"]] == ["endpoint.churn-api"]
    assert plan["drift"][0]["after"]["version"] == 5
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
