"""The Kubernetes flow of test_k8s_client.py against a real cluster.

Runs only when ``KUBECONFIG`` is set (e.g. a kind or k3d cluster in CI); namespace from
``MLCTL_TEST_NAMESPACE`` (default ``default``). The image is not pulled successfully, which
does not matter: what is checked is what the API server accepts, stores and returns.
"""

from __future__ import annotations

import os
import uuid

import pytest

from mlctl.providers.k8s import K8sServing, KubeClient
from mlctl.spec.models import Autoscale, Endpoint, K8sProvider
from mlctl.state.document import Artifact

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a real cluster: set KUBECONFIG"),
]


class _Spec:
    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.name = "dev"
        self.config = type("Config", (), {"endpoints": endpoints})()


def test_server_side_apply_live_rollback_and_undeploy_on_a_real_cluster() -> None:
    namespace = os.environ.get("MLCTL_TEST_NAMESPACE", "default")
    # The image is never pulled: do not wait for rollouts (test_k8s_rollout.py covers waiting).
    provider = K8sProvider(
        type="k8s", namespace=namespace, image="ghcr.io/acme/mlctl:test", rollout_timeout=0
    )
    name = f"mlctl-test-{uuid.uuid4().hex[:8]}"
    endpoint = Endpoint(model="churn", provider="k8s", autoscale=Autoscale(min_replicas=1, max_replicas=2))
    serving = K8sServing(_Spec({name: endpoint}), provider)  # type: ignore[arg-type]
    artifact = Artifact(uri="s3://b/artifacts/dev/churn/r/model.joblib", sha256="ef" * 32, size=1)
    try:
        serving.deploy(name, "churn", 1, artifact)
        live = serving.live(name)
        assert live is not None and live["version"] == 1
        serving.deploy(name, "churn", 2, artifact)
        assert (serving.live(name) or {})["version"] == 2
        serving.deploy(name, "churn", 1, artifact)  # the rollback path
        deployment = KubeClient().get("Deployment", namespace, name)
        assert deployment is not None
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        managers = {m["manager"] for m in deployment["metadata"].get("managedFields", [])}
        assert "mlctl" in managers
        assert KubeClient().get("HorizontalPodAutoscaler", namespace, name) is not None
    finally:
        serving.undeploy(name)
    assert serving.live(name) is None
