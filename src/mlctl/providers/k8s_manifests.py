"""Pure rendering of the Kubernetes manifests mlctl manages (no client, no I/O).

:func:`endpoint_manifests` (Deployment, Service, PodDisruptionBudget, HPA) and
:func:`training_job_manifest` (a training Job) build plain dicts from the environment, the
provider file and the version to serve: no timestamps, no random names, keys always in the
same order, so the same inputs give byte-identical YAML (:func:`to_yaml`). The planner imports
this module to diff what was last applied against what would be applied now;
:mod:`mlctl.providers.k8s` applies them. Nothing here imports the ``kubernetes`` client.

Contract with the image (``Dockerfile``): its ENTRYPOINT is ``mlctl`` and its WORKDIR the
repository (``/repo``); containers set no ``command``, only ``args`` (an mlctl command line,
e.g. ``serve MODEL -e ENV ...``), which the kubelet appends to the ENTRYPOINT in place of CMD.
``tests/test_image_commands.py`` runs every rendered command line through the real CLI.

Every pod passes Pod Security "restricted" (``tests/test_pod_security.py``): non-root
(the image's uid 10001), no privilege escalation, all capabilities dropped, seccomp
RuntimeDefault, a read-only root filesystem, no service-account token. What mlctl writes
goes to two emptyDirs: ``/tmp`` (temporary files, crash logs, the Prometheus multiprocess
directory of ``serve --workers N``) and ``/repo/.mlctl`` (the artifact and data caches, run
files, a local prediction log).
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
APP_VERSION_LABEL = "app.kubernetes.io/version"
PORT = 8080
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
#: The image's WORKDIR: the repository the commands run in (``mlctl -C`` defaults to it).
REPO_DIR = "/repo"
#: The image's non-root user and group (``useradd --uid 10001`` in the Dockerfile).
RUN_AS = 10001
#: Writable directories on a read-only root filesystem: (volume name, mount path).
WRITABLE_DIRS = (("tmp", "/tmp"), ("mlctl-data", f"{REPO_DIR}/.mlctl"))
#: The Secret key holding the serving token when the provider names ``token_secret``.
TOKEN_KEY = "token"


def _labels(env: str, endpoint: str) -> dict[str, str]:
    """The selector labels of an endpoint (stable across versions)."""
    return {
        "app.kubernetes.io/name": endpoint,
        "app.kubernetes.io/instance": f"{env}-{endpoint}",
    }


def _resources(provider: K8sProvider) -> dict[str, dict[str, str]]:
    resources = provider.resources or DEFAULT_RESOURCES
    return {kind: dict(sorted(values.items())) for kind, values in sorted(resources.items())}


def _container_security() -> dict[str, Any]:
    """The container half of Pod Security "restricted" plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_spec(container: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A restricted pod around ``container``: writable emptyDirs mounted, no API token."""
    container["securityContext"] = _container_security()
    container["volumeMounts"] = [{"name": name, "mountPath": path} for name, path in WRITABLE_DIRS]
    return {
        **extra,
        "automountServiceAccountToken": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": [{"name": name, "emptyDir": {}} for name, _ in WRITABLE_DIRS],
    }


def serve_args(env: str, endpoint: Endpoint, provider: K8sProvider, port: int) -> list[str]:
    """The serving container's mlctl command line (after the image's ``mlctl`` ENTRYPOINT).

    A pod binds 0.0.0.0, which ``mlctl serve`` refuses without a token: with
    ``token_secret`` the token comes from that Secret (env ``MLCTL_SERVE_TOKEN``), without it
    the command says ``--insecure`` so the choice is visible in the manifest."""
    args = ["serve", endpoint.model, "-e", env, "--stage", endpoint.stage, "--host", "0.0.0.0"]
    args += ["--port", str(port)]
    if provider.token_secret is None:
        args.append("--insecure")
    return args


def endpoint_manifests(
    env: str,
    name: str,
    endpoint: Endpoint,
    provider: K8sProvider,
    *,
    version: int | str,
    artifact: Artifact,
) -> list[dict[str, Any]]:
    """Deployment, Service, a PodDisruptionBudget (more than one replica) and, with
    ``autoscale``, an HPA serving ``endpoint.model`` ``version`` (a string only for the plan's
    preview of a version not numbered yet)."""
    selector = _labels(env, name)
    common = {
        **selector,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "mlctl",
        ENV_LABEL: env,
        MODEL_LABEL: endpoint.model,
        STAGE_LABEL: endpoint.stage,
    }
    versioned = {**common, APP_VERSION_LABEL: str(version), VERSION_LABEL: str(version)}
    annotations = {"mlctl.dev/artifact-sha256": artifact.sha256, "mlctl.dev/artifact-uri": artifact.uri}
    port = endpoint.port or PORT
    # Prometheus scrape annotations rather than a ServiceMonitor: they need no CRD (applying
    # a ServiceMonitor fails where the Prometheus Operator is not installed).
    pod_annotations = {
        **annotations,
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": str(port),
        "prometheus.io/scrape": "true",
    }
    env_vars: list[dict[str, Any]] = [
        {"name": "MLCTL_ENVIRONMENT", "value": env},
        {"name": "MLCTL_ENDPOINT", "value": name},
        {"name": "MLCTL_MODEL", "value": endpoint.model},
        {"name": "MLCTL_MODEL_STAGE", "value": endpoint.stage},
        {"name": "MLCTL_MODEL_VERSION", "value": str(version)},
        {"name": "MLCTL_MODEL_URI", "value": artifact.uri},
        {"name": "MLCTL_MODEL_SHA256", "value": artifact.sha256},
    ]
    if provider.token_secret is not None:
        env_vars.append(
            {
                "name": "MLCTL_SERVE_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": provider.token_secret, "key": TOKEN_KEY}},
            }
        )
    container = {
        "name": "model-server",
        "image": provider.image,
        "imagePullPolicy": "IfNotPresent",
        "args": serve_args(env, endpoint, provider, port),
        "env": env_vars,
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
                "metadata": {"labels": versioned, "annotations": pod_annotations},
                "spec": _pod_spec(container, terminationGracePeriodSeconds=30),
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
    least = endpoint.autoscale.min_replicas if endpoint.autoscale is not None else endpoint.replicas
    if least > 1:
        # A node drain may take one replica at a time, never the whole endpoint.
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": provider.namespace, "labels": common},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
            }
        )
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
    result_key: str | None = None,
) -> dict[str, Any]:
    """A Job that trains ``model``'s current spec in ``env`` once (no retries: a failed run
    is reported, not repeated). It runs the hidden ``mlctl train-job`` in the image, which
    stores the artifact (and the run's files) in the environment's S3 artifact store and
    writes its candidate record to ``result_uri``, where apply picks it up. ``result_key``
    (apply's one-time key, env ``MLCTL_RESULT_KEY``) is what the Job seals its record with."""
    name = job_name(model, identity)
    labels = {
        "app.kubernetes.io/name": "mlctl-training",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "mlctl",
        ENV_LABEL: env,
        MODEL_LABEL: model,
    }
    container = {
        "name": "train",
        "image": provider.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["train-job", model, "-e", env, "--identity", identity, "--result", result_uri],
        "env": [
            {"name": "MLCTL_ENVIRONMENT", "value": env},
            {"name": "MLCTL_MODEL", "value": model},
            {"name": "MLCTL_VERSION_IDENTITY", "value": identity},
            *([{"name": "MLCTL_RESULT_KEY", "value": result_key}] if result_key else []),
        ],
        "resources": _resources(provider),
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
                "spec": _pod_spec(container, restartPolicy="Never"),
            },
        },
    }


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in construction order (deterministic), no timestamps."""
    import yaml

    return "---\n".join(yaml.safe_dump(m, sort_keys=False, default_flow_style=False) for m in manifests)
