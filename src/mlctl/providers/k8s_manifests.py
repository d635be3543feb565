"""Pure rendering of the Kubernetes manifests mlctl manages (no client, no I/O).

:func:`endpoint_manifests` (Deployment, Service, HPA) and :func:`training_job_manifest` (a
training Job) build plain dicts from the environment, the provider file and the version to
serve: no timestamps, no random names, keys always in the same order, so the same inputs give
byte-identical YAML (:func:`to_yaml`). The planner imports this module to diff what was last
applied against what would be applied now; :mod:`mlctl.providers.k8s` applies them. Nothing
here imports the ``kubernetes`` client.
"""

from __future__ import annotations

from typing import Any

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
    version: int | str,
    artifact: Artifact,
) -> list[dict[str, Any]]:
    """Deployment, Service and (with ``autoscale``) HPA serving ``endpoint.model`` ``version``
    (a string only for the plan's preview of a version not numbered yet)."""
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
    is reported, not repeated). It runs the hidden ``mlctl train-job`` in the image, which
    stores the artifact (and the run's files) in the environment's S3 artifact store and
    writes its candidate record to ``result_uri``, where apply picks it up."""
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
                            "args": [
                                "train-job",
                                model,
                                "-e",
                                env,
                                "--identity",
                                identity,
                                "--result",
                                result_uri,
                            ],
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
