"""The Kubernetes provider: endpoints as Deployment + Service (+ PDB, HPA), training as a Job.

Manifests are plain dicts built by pure functions (:func:`endpoint_manifests`,
:func:`training_job_manifest`) from the environment, the provider file and the version to
serve: no timestamps, no random names, keys always in the same order, so the same inputs give
byte-identical YAML (:func:`to_yaml`) -- ``mlctl render`` writes them for Argo CD or Flux, and
the plan shows their diff. :class:`K8sServing` applies them with server-side apply
(``PATCH`` with ``application/apply-patch+yaml``, field manager ``mlctl``, ``force``) through
the ``kubernetes`` client, reads the live Deployment's ``mlctl.dev/model-version`` label back
(a hand edit in the cluster shows as drift in the next plan), and a rollback is a new apply of
the previous version, i.e. a patch of the Deployment that rolls out with ``maxUnavailable: 0``.

Deploy means serving: after applying, :meth:`K8sServing.deploy` waits (up to the provider's
``rollout_timeout``) until the Deployment controller has seen the new spec
(``observedGeneration``) and every replica is updated and available. A rollout that fails
(a pod in CrashLoopBackOff or ImagePullBackOff, a ReplicaFailure, readiness failing at the
deadline) restores the Deployment's previous spec and raises :class:`RolloutFailed` naming the
pod and its reason: the executor records a failed action, the endpoint's state keeps the
previous version, and the next plan proposes the deploy again. (The serving processes follow
the stage in state; the stage itself is the executor's and rollback's business, not this one's.)

The serving container runs ``mlctl serve MODEL -e ENV`` from the image (ENTRYPOINT ``mlctl``,
the repository at its WORKDIR); the model URI, sha256, version and stage are in its environment
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
    "RolloutFailed",
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
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "Pod": ("/api/v1", "pods"),
}

#: Seconds between two reads of a rollout's progress.
ROLLOUT_POLL_SECONDS = 2.0
#: Container waiting reasons that mean the new pods will not become ready by waiting longer.
FATAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


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

            from mlctl.extras import require

            require("kubernetes", "k8s")  # the mlctl[k8s] extra; one line naming it when absent
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

    def list_objects(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` carrying all of ``labels`` (the selector is
        also applied here, so a server that ignores ``labelSelector`` gives the same answer)."""
        from urllib.parse import quote

        from kubernetes.client.exceptions import ApiException

        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        url = f"{self._url(kind, namespace)}?labelSelector={quote(selector)}"
        try:
            result = self._call("GET", url) or {}
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise _api_error(exc, f"list {kind} in {namespace}") from None
        items: list[dict[str, Any]] = result.get("items") or []
        return [
            item
            for item in items
            if all(((item.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

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


class RolloutFailed(MlctlError):
    """A Deployment's rollout failed or did not finish in time; the message says why."""


def rollout_progress(deployment: dict[str, Any]) -> tuple[bool, str]:
    """(done, what is awaited or what failed) of a Deployment's rollout, read as
    ``kubectl rollout status`` reads it. Raises :class:`RolloutFailed` for a rollout the
    controller itself gave up on (ProgressDeadlineExceeded, ReplicaFailure)."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    for condition in status.get("conditions") or []:
        kind, reason = condition.get("type"), condition.get("reason")
        failing = (kind == "Progressing" and reason == "ProgressDeadlineExceeded") or (
            kind == "ReplicaFailure" and condition.get("status") == "True"
        )
        if failing:
            raise RolloutFailed(f"{reason or kind}: {condition.get('message') or 'no message'}")
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False, "the new spec is not yet observed by the Deployment controller"
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return False, f"{updated} of {wanted} replicas updated"
    if total > updated:
        return False, f"{total - updated} old replica(s) pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas available"
    return True, f"{available} of {wanted} replicas updated and available"


def _observed(deployment: dict[str, Any]) -> bool:
    """Whether the Deployment controller has acted on the Deployment's current spec."""
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = (deployment.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def pod_problem(pods: list[dict[str, Any]], *, final: bool) -> str | None:
    """Why the new version's pods are not serving, or None: a container waiting for a reason
    in :data:`FATAL_WAITING` (always); with ``final`` (the deadline passed) also any other
    waiting reason, an unschedulable pod, or a running pod whose readiness probe fails."""
    found: list[str] = []
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason and (reason in FATAL_WAITING or final):
                last = (container.get("lastState") or {}).get("terminated") or {}
                detail = waiting.get("message") or ""
                if last:
                    detail = f"last exit code {last.get('exitCode')} ({last.get('reason', 'terminated')})"
                found.append(f"pod {name}: {reason}" + (f" ({detail})" if detail else ""))
            elif final and (container.get("state") or {}).get("running") and not container.get("ready"):
                found.append(f"pod {name}: running but not ready (readiness probe failing)")
        if final and not found:
            for condition in status.get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                    message = condition.get("message") or ""
                    found.append(f"pod {name}: {condition.get('reason', 'not scheduled')} {message}".rstrip())
        if found:
            return found[0]
    return None


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
        """Apply the endpoint's objects (an HPA or PDB no longer rendered is removed) and wait
        for the rollout (see the module doc). Raises :class:`RolloutFailed` after restoring the
        Deployment's previous spec when the new version does not come up."""
        import hashlib

        manifests = self.manifests(endpoint, version, artifact)
        rollout = "not applied by mlctl"
        if self.config.apply:
            namespace = self.config.namespace
            previous = self.client.get("Deployment", namespace, endpoint)
            for manifest in manifests:
                self.client.apply(manifest)
            for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
                if not any(m["kind"] == kind for m in manifests):
                    self.client.delete(kind, namespace, endpoint)
            rollout = "not awaited (rollout_timeout: 0)"
            if self.config.rollout_timeout > 0:
                try:
                    rollout = self.wait_rollout(endpoint, manifests[0], version)
                except RolloutFailed as exc:
                    raise self._restore(endpoint, previous, version, exc) from None
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
            "rollout": rollout,
            "manifest_sha256": hashlib.sha256(rendered.encode()).hexdigest(),
            # What the next plan diffs the newly rendered manifests against.
            "manifests": rendered,
        }

    def wait_rollout(
        self,
        endpoint: str,
        deployment: dict[str, Any],
        version: int,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> str:
        """Poll the Deployment until its rollout is complete (returns a one-line summary) or
        fails, or ``rollout_timeout`` passes (:class:`RolloutFailed` with the pods' reason)."""
        import time

        pause = sleep or time.sleep
        namespace = self.config.namespace
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        pod_labels = {
            key: template_labels[key]
            for key in ("app.kubernetes.io/instance", VERSION_LABEL)
            if key in template_labels
        }
        timeout = self.config.rollout_timeout
        deadline = time.monotonic() + timeout
        where = f"Deployment {namespace}/{endpoint}"
        while True:
            live = self.client.get("Deployment", namespace, endpoint)
            if live is None:
                raise RolloutFailed(f"{where} disappeared during its rollout")
            try:
                done, progress = rollout_progress(live)
            except RolloutFailed as exc:
                pods = self.client.list_objects("Pod", namespace, pod_labels)
                why = pod_problem(pods, final=True)
                raise RolloutFailed(f"{exc}" + (f"; {why}" if why else "")) from None
            if done:
                return f"complete: {progress}"
            late = time.monotonic() > deadline
            if not late and not _observed(live):
                # Pods seen before the controller acted on this spec may be left over from an
                # earlier rollout of the same version (e.g. one that failed and was restored).
                pause(ROLLOUT_POLL_SECONDS)
                continue
            why = pod_problem(self.client.list_objects("Pod", namespace, pod_labels), final=late)
            if why:
                raise RolloutFailed(why)
            if late:
                raise RolloutFailed(f"not finished in {timeout}s ({progress})")
            pause(ROLLOUT_POLL_SECONDS)

    def _restore(
        self, endpoint: str, previous: dict[str, Any] | None, version: int, exc: RolloutFailed
    ) -> RolloutFailed:
        """Put the Deployment's spec from before the failed apply back (its old pods kept
        serving under ``maxUnavailable: 0``); the error to raise, saying what now serves."""
        where = f"rollout of v{version} to {self.config.namespace}/{endpoint} failed: {exc}"
        if previous is None:
            return RolloutFailed(f"{where}; nothing served before, the Deployment is left as applied")
        meta = previous.get("metadata") or {}
        restored = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": meta.get("name", endpoint),
                "namespace": meta.get("namespace", self.config.namespace),
                "labels": meta.get("labels") or {},
                "annotations": {
                    k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("mlctl.dev/")
                },
            },
            "spec": previous.get("spec") or {},
        }
        self.client.apply(restored)
        before = (meta.get("labels") or {}).get(VERSION_LABEL)
        kept = f"v{before}" if before else "the previous version"
        return RolloutFailed(f"{where}; the Deployment is back at {kept} (its old pods kept running)")

    def undeploy(self, endpoint: str) -> None:
        if not self.config.apply:
            return
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Deployment"):
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

    def submit(
        self, model: str, *, identity: str, result_uri: str, result_key: str | None = None
    ) -> dict[str, Any]:
        manifest = training_job_manifest(
            self.spec.name,
            model,
            self.config,
            identity=identity,
            result_uri=result_uri,
            result_key=result_key,
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
