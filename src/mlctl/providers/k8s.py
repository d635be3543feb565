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
from mlctl.spec.loader import EnvSpec
from mlctl.spec.models import Endpoint, K8sProvider
from mlctl.state.document import Artifact

FIELD_MANAGER = "mlctl"
VERSION_LABEL = "mlctl.dev/model-version"
MODEL_LABEL = "mlctl.dev/model"
ENV_LABEL = "mlctl.dev/environment"
STAGE_LABEL = "mlctl.dev/stage"
PORT = 8080
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def _labels(env: str, endpoint: str) -> dict[str, str]:
    """The selector labels of an endpoint (stable across versions)."""
    return {
        "app.kubernetes.io/name": endpoint,
        "app.kubernetes.io/instance": f"{env}-{endpoint}",
    }


def _resources(provider: K8sProvider) -> dict[str, dict[str, str]]:
    resources = provider.resources or DEFAULT_RESOURCES
    return {kind: dict(sorted(values.items())) for kind, values in sorted(resources.items())}


def endpoint_manifests(
    env: str,
    name: str,
    endpoint: Endpoint,
    provider: K8sProvider,
    *,
    version: int,
    artifact: Artifact,
) -> list[dict[str, Any]]:
    """Deployment, Service and (with ``autoscale``) HPA serving ``endpoint.model`` ``version``."""
    selector = _labels(env, name)
    common = {
        **selector,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "mlctl",
        ENV_LABEL: env,
        MODEL_LABEL: endpoint.model,
        STAGE_LABEL: endpoint.stage,
    }
    versioned = {**common, VERSION_LABEL: str(version)}
    annotations = {"mlctl.dev/artifact-sha256": artifact.sha256, "mlctl.dev/artifact-uri": artifact.uri}
    port = endpoint.port or PORT
    container = {
        "name": "model-server",
        "image": provider.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "serve",
            endpoint.model,
            "-e",
            env,
            "--stage",
            endpoint.stage,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        "env": [
            {"name": "MLCTL_ENVIRONMENT", "value": env},
            {"name": "MLCTL_ENDPOINT", "value": name},
            {"name": "MLCTL_MODEL", "value": endpoint.model},
            {"name": "MLCTL_MODEL_STAGE", "value": endpoint.stage},
            {"name": "MLCTL_MODEL_VERSION", "value": str(version)},
            {"name": "MLCTL_MODEL_URI", "value": artifact.uri},
            {"name": "MLCTL_MODEL_SHA256", "value": artifact.sha256},
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http"},
            "initialDelaySeconds": 2,
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": _resources(provider),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": False,
        },
    }
    deployment_spec: dict[str, Any] = {}
    if endpoint.autoscale is None:
        deployment_spec["replicas"] = endpoint.replicas
    deployment_spec.update(
        {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": versioned, "annotations": annotations},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 30},
            },
        }
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": provider.namespace,
            "labels": versioned,
            "annotations": annotations,
        },
        "spec": deployment_spec,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": provider.namespace, "labels": common},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    out = [deployment, service]
    if endpoint.autoscale is not None:
        scale = endpoint.autoscale
        out.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": provider.namespace, "labels": common},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": scale.min_replicas,
                    "maxReplicas": max(scale.max_replicas, scale.min_replicas),
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": scale.target_cpu_percent,
                                },
                            },
                        }
                    ],
                },
            }
        )
    return out


def job_name(model: str, identity: str) -> str:
    """``train-<model>-<12 hex of the version identity>``: one Job per version, at most 63 chars."""
    digest = identity.split(":", 1)[-1][:12]
    return f"train-{model}"[: 63 - 13].rstrip("-") + f"-{digest}"


def training_job_manifest(
    env: str,
    model: str,
    provider: K8sProvider,
    *,
    identity: str,
    result_uri: str,
) -> dict[str, Any]:
    """A Job that trains ``model``'s current spec in ``env`` once (no retries: a failed run
    is reported, not repeated). It runs ``mlctl train`` in the image, which stores the
    artifact in the environment's (S3) artifact store and writes its candidate record to
    ``result_uri``, where apply picks it up."""
    name = job_name(model, identity)
    labels = {
        "app.kubernetes.io/name": "mlctl-training",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "mlctl",
        ENV_LABEL: env,
        MODEL_LABEL: model,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": provider.namespace,
            "labels": labels,
            "annotations": {"mlctl.dev/identity": identity, "mlctl.dev/result-uri": result_uri},
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "train",
                            "image": provider.image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["train", model, "-e", env, "--result", result_uri],
                            "env": [
                                {"name": "MLCTL_ENVIRONMENT", "value": env},
                                {"name": "MLCTL_MODEL", "value": model},
                                {"name": "MLCTL_VERSION_IDENTITY", "value": identity},
                            ],
                            "resources": _resources(provider),
                        }
                    ],
                },
            },
        },
    }


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in construction order (deterministic), no timestamps."""
    import yaml

    return "---\n".join(yaml.safe_dump(m, sort_keys=False, default_flow_style=False) for m in manifests)


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
