"""The Kubernetes provider: endpoints as Deployment + Service (+ HPA), training as a Job.

Manifests are plain dicts built by pure functions (:func:`endpoint_manifests`,
:func:`training_job_manifest`) from the environment, the provider file and the version to
serve: no timestamps, no random names, keys always in the same order, so the same inputs give
byte-identical YAML (:func:`to_yaml`) -- ``mlctl render`` writes them for Argo CD or Flux, and
the plan shows their diff. :class:`K8sServing` applies them with server-side apply
(``PATCH`` with ``application/apply-patch+yaml``, field manager ``mlctl``, ``force``) through
the ``kubernetes`` client, reads the live Deployment's ``mlctl.dev/model-version`` label back
(a hand edit in the cluster shows as drift in the next plan), and a rollback is a new apply of
the previous version, i.e. a patch of the Deployment that rolls out with ``maxUnavailable: 0``.

The serving container runs ``mlctl serve MODEL -e ENV`` from the image (which holds the
repository checkout); the model URI, sha256, version and stage are in its environment
(``MLCTL_MODEL_*``) and labels, so a changed version is a changed pod template and a rolling
update. State and artifacts are read from the environment's S3 backend and artifact store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlctl.errors import MlctlError
from mlctl.providers.k8s_manifests import (
    ENV_LABEL,
    FIELD_MANAGER,
    MODEL_LABEL,
    VERSION_LABEL,
    endpoint_manifests,
    job_name,
    to_yaml,
    training_job_manifest,
)
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import K8sProvider
from mlctl.state.document import Artifact

__all__ = [
    "ENV_LABEL",
    "FIELD_MANAGER",
    "MODEL_LABEL",
    "VERSION_LABEL",
    "K8sServing",
    "K8sTraining",
    "KubeClient",
    "endpoint_manifests",
    "job_name",
    "to_yaml",
    "training_job_manifest",
]


# -- the API client ------------------------------------------------------------------------

_PATHS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "Job": ("/apis/batch/v1", "jobs"),
}


class KubeClient:
    """Server-side apply, read and delete of the few kinds mlctl manages, over the
    ``kubernetes`` client's configured connection (kubeconfig context, or in-cluster)."""

    def __init__(self, context: str | None = None, api_client: Any = None) -> None:
        self.context = context
        self._api = api_client

    @property
    def api(self) -> Any:
        if self._api is None:
            import os

            from kubernetes import config
            from kubernetes.config.config_exception import ConfigException

            # KUBECONFIG is read now, not when the kubernetes package was imported.
            kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
            try:
                self._api = config.new_client_from_config(config_file=kubeconfig, context=self.context)
            except (ConfigException, FileNotFoundError, OSError) as exc:
                try:
                    config.load_incluster_config()
                    from kubernetes import client

                    self._api = client.ApiClient()
                except ConfigException:
                    where = f" context '{self.context}'" if self.context else ""
                    raise MlctlError(f"cannot configure Kubernetes{where}: {exc}") from None
        return self._api

    def _url(self, kind: str, namespace: str, name: str | None = None) -> str:
        if kind not in _PATHS:
            raise MlctlError(f"mlctl does not manage Kubernetes kind {kind}")
        prefix, plural = _PATHS[kind]
        url = f"{self.api.configuration.host}{prefix}/namespaces/{namespace}/{plural}"
        return f"{url}/{name}" if name else url

    def _call(self, method: str, url: str, body: Any = None, content_type: str = "application/json") -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "Content-Type": content_type}
        self.api.update_params_for_auth(headers, [], ["BearerToken"], url, method, body)
        try:
            payload = json.dumps(body) if body is not None else None
            response = self.api.call_api(
                method, url, header_params=headers, body=payload, _request_timeout=(5, 30)
            )
            response.read()
        except ApiException as exc:
            raise exc from None
        except HTTPError as exc:
            raise MlctlError(
                f"cannot reach the Kubernetes API at {self.api.configuration.host}: {exc}"
            ) from None
        status = int(response.status)
        data = response.data
        if status >= 400:
            raise ApiException(status=status, reason=response.reason, http_resp=response)
        if not data:
            return None
        return json.loads(data)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of one object (created when absent); returns the live object."""
        from kubernetes.client.exceptions import ApiException

        meta = manifest["metadata"]
        url = self._url(manifest["kind"], meta["namespace"], meta["name"])
        url += f"?fieldManager={FIELD_MANAGER}&force=true"
        try:
            result: dict[str, Any] = self._call("PATCH", url, manifest, "application/apply-patch+yaml")
        except ApiException as exc:
            raise _api_error(exc, f"apply {manifest['kind']} {meta['namespace']}/{meta['name']}") from None
        return result

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            result: dict[str, Any] | None = self._call("GET", self._url(kind, namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc, f"read {kind} {namespace}/{name}") from None
        return result

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete an object; False when it was already gone."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._call("DELETE", self._url(kind, namespace, name), {"propagationPolicy": "Foreground"})
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise _api_error(exc, f"delete {kind} {namespace}/{name}") from None
        return True


def _api_error(exc: Any, what: str) -> MlctlError:
    status = getattr(exc, "status", 0)
    reason = getattr(exc, "reason", "") or ""
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
    hint = {401: " (check your kubeconfig credentials)", 403: " (the service account lacks RBAC rights)"}
    return MlctlError(f"cannot {what}: {status} {reason} {message}".rstrip() + hint.get(status, ""))


class K8sServing:
    """A serving provider backed by a cluster (``providers/<name>.yaml: {type: k8s, ...}``)."""

    def __init__(self, spec: EnvSpec, config: K8sProvider, client: KubeClient | None = None) -> None:
        self.spec = spec
        self.config = config
        self.client = client or KubeClient(config.context)

    def manifests(self, endpoint: str, version: int, artifact: Artifact) -> list[dict[str, Any]]:
        return endpoint_manifests(
            self.spec.name,
            endpoint,
            self.spec.config.endpoints[endpoint],
            self.config,
            version=version,
            artifact=artifact,
        )

    def deploy(self, endpoint: str, model: str, version: int, artifact: Artifact) -> dict[str, Any]:
        """Apply the endpoint's objects; an HPA left from an earlier ``autoscale`` is removed."""
        import hashlib

        manifests = self.manifests(endpoint, version, artifact)
        if self.config.apply:
            for manifest in manifests:
                self.client.apply(manifest)
            if not any(m["kind"] == "HorizontalPodAutoscaler" for m in manifests):
                self.client.delete("HorizontalPodAutoscaler", self.config.namespace, endpoint)
        rendered = to_yaml(manifests)
        return {
            "model": model,
            "version": version,
            "artifact": artifact.uri,
            "sha256": artifact.sha256,
            "provider": "k8s",
            "applied_by": "mlctl" if self.config.apply else "gitops (mlctl render)",
            "namespace": self.config.namespace,
            "deployment": endpoint,
            "objects": [f"{m['kind']}/{m['metadata']['name']}" for m in manifests],
            "manifest_sha256": hashlib.sha256(rendered.encode()).hexdigest(),
            # What the next plan diffs the newly rendered manifests against.
            "manifests": rendered,
        }

    def undeploy(self, endpoint: str) -> None:
        if not self.config.apply:
            return
        for kind in ("HorizontalPodAutoscaler", "Service", "Deployment"):
            self.client.delete(kind, self.config.namespace, endpoint)

    def live(self, endpoint: str) -> dict[str, Any] | None:
        """What the live Deployment says it serves (its version label), or None if absent
        (or not applied by mlctl: ``apply: false`` leaves the cluster to Argo CD / Flux)."""
        if not self.config.apply:
            return None
        deployment = self.client.get("Deployment", self.config.namespace, endpoint)
        if deployment is None:
            return None
        labels = deployment.get("metadata", {}).get("labels", {}) or {}
        raw = labels.get(VERSION_LABEL)
        try:
            version: int | None = int(raw) if raw is not None else None
        except ValueError:
            version = None
        status = deployment.get("status", {}) or {}
        return {
            "model": labels.get(MODEL_LABEL),
            "version": version,
            "replicas": deployment.get("spec", {}).get("replicas"),
            "ready_replicas": status.get("readyReplicas"),
        }


class K8sTraining:
    """Runs a training Job and waits for it (``providers: {training: <k8s provider>}``)."""

    def __init__(self, spec: EnvSpec, config: K8sProvider, client: KubeClient | None = None) -> None:
        self.spec = spec
        self.config = config
        self.client = client or KubeClient(config.context)

    def submit(self, model: str, *, identity: str, result_uri: str) -> dict[str, Any]:
        manifest = training_job_manifest(
            self.spec.name, model, self.config, identity=identity, result_uri=result_uri
        )
        return self.client.apply(manifest)

    def wait(
        self,
        name: str,
        *,
        timeout: float = 3600,
        poll: float = 2.0,
        sleep: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the Job until it succeeds (returns it) or fails (MlctlError with its reason)."""
        import time

        pause = sleep or time.sleep
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get("Job", self.config.namespace, name)
            if job is None:
                raise MlctlError(f"training job {self.config.namespace}/{name} disappeared")
            for condition in (job.get("status", {}) or {}).get("conditions", []) or []:
                if condition.get("status") != "True":
                    continue
                if condition.get("type") == "Complete":
                    return job
                if condition.get("type") == "Failed":
                    reason = condition.get("message") or condition.get("reason") or "failed"
                    raise MlctlError(f"training job {self.config.namespace}/{name} failed: {reason}")
            if time.monotonic() > deadline:
                raise MlctlError(
                    f"training job {self.config.namespace}/{name} did not finish in {timeout:.0f}s"
                )
            pause(poll)
