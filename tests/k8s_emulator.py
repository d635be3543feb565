"""kmock's in-memory Kubernetes emulator, made into the cluster the k8s tests run against.

The emulator is not a cluster: it stores objects as JSON and merges patches, without
validation or defaulting (manifests are validated against the real schemas in
``test_k8s_manifests.py``). It does not create objects on a server-side-apply PATCH nor count
a Deployment's ``metadata.generation``, so :class:`ApplyingEmulator` adds exactly those two
API-server behaviours; nothing else. It runs no controllers: :class:`DeploymentController`
plays the Deployment controller and the kubelet for rollouts (status, and pods that fail on
purpose).

Fixtures (a test module takes them by name: ``emulator = k8s_emulator.emulator`` and
``kube = k8s_emulator.kube``): ``emulator`` runs the emulator on 127.0.0.1 for one test;
``kube`` points ``KUBECONFIG`` at it and runs the controller. Also here: a hand edit
(:func:`patch_object`), the requests the code under test sent (:func:`requests_of`), and the
provider, artifact and spec stand-ins the client tests build a ``K8sServing`` from.
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

from mlctl.spec.models import Endpoint, K8sProvider
from mlctl.state.document import Artifact


class ApplyingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the one API-server behaviour mlctl relies on that it lacks:
    a server-side apply (PATCH, application/apply-patch+yaml) of a missing object creates it."""

    seen: list[Any]

    async def _handle(self, request: Any) -> Any:
        if not hasattr(self, "seen"):
            self.seen = []
        self.seen.append(request)
        content_type = (request.headers or {}).get("Content-Type", "")
        before = None
        if request.resource is not None and request.resource.plural == "deployments" and request.name:
            key = (request.resource, request.namespace, request.name)
            if key in self._objects and not self._objects[key].deleted:
                before = self._objects[key].raw
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
        response = await super()._handle(request)
        if request.resource is not None and request.resource.plural == "deployments" and request.name:
            # The API server counts changes of a Deployment's spec in metadata.generation.
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key in self._objects and not self._objects[key].deleted:
                    now = self._objects[key].raw
                    generation = (before or {}).get("metadata", {}).get("generation") or 0
                    if before is None or json.dumps(now.get("spec"), sort_keys=True) != json.dumps(
                        before.get("spec"), sort_keys=True
                    ):
                        self._objects[key].patch({"metadata": {"generation": generation + 1}})
        return response


class EmulatorThread:
    """Runs the emulator's aiohttp server on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop_event: asyncio.Event | None = None
        self.url = ""
        self.handler: Any = None
        self.controller: Any = None
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


CONTROLLER_AGENT = "kube-controller-manager (test)"


def patch_object(url: str, path: str, body: dict[str, Any], *, agent: str = "kubectl (test)") -> None:
    """A hand edit, as `kubectl patch --type merge` would make it (or a controller's update)."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json", "User-Agent": agent},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def requests_of(emulator: EmulatorThread, method: str) -> list[Any]:
    """The requests of ``method`` that did not come from the test's controller."""
    return [
        r
        for r in list(emulator.handler.seen)
        if str(r.method).upper().endswith(method) and (r.headers or {}).get("User-Agent") != CONTROLLER_AGENT
    ]


def post_object(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": CONTROLLER_AGENT},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


class DeploymentController:
    """Plays the Deployment controller and the kubelet for the emulator: each Deployment whose
    ``generation`` is not yet observed rolls out. Versions (``mlctl.dev/model-version``) named
    in ``broken`` get one new pod stuck in that way (a container waiting reason such as
    CrashLoopBackOff, or "unready": running with its readiness probe failing) while the old
    replicas stay available, as under ``maxUnavailable: 0``; other versions become available.
    ``rollouts`` counts each rollout as it completes, in order; while ``paused`` is set,
    nothing rolls out."""

    def __init__(self, kube: EmulatorThread) -> None:
        self.kube = kube
        self.broken: dict[str, str] = {}
        self.rollouts: list[tuple[str, str]] = []
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(0.02):
            if self.paused.is_set():
                continue
            for (namespace, name), deployment in self.kube.objects("deployments").items():
                generation = deployment.get("metadata", {}).get("generation")
                if generation is None or deployment.get("status", {}).get("observedGeneration") == generation:
                    continue
                self.roll(namespace or "", name, deployment, generation)

    def roll(self, namespace: str, name: str, deployment: dict[str, Any], generation: int) -> None:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        replicas = deployment["spec"].get("replicas", 1)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        version = labels.get("mlctl.dev/model-version", "")
        failure = self.broken.get(version)
        if failure is None:
            status = {
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
            patch_object(
                self.kube.url,
                path,
                {"status": {"observedGeneration": generation, **status}},
                agent=CONTROLLER_AGENT,
            )
            self.rollouts.append((name, version))
            return
        container: dict[str, Any] = {"name": "model-server", "ready": False, "restartCount": 4}
        if failure == "unready":
            container["state"] = {"running": {"startedAt": "2026-11-29T00:00:00Z"}}
        else:
            container["state"] = {"waiting": {"reason": failure, "message": "back-off restarting"}}
            container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-g{generation}-x1", "namespace": namespace, "labels": labels},
            "status": {"phase": "Running", "containerStatuses": [container]},
        }
        post_object(self.kube.url, f"/api/v1/namespaces/{namespace}/pods", pod)
        status = {
            "observedGeneration": generation,
            "replicas": replicas + 1,
            "updatedReplicas": 1,
            "availableReplicas": replicas,
        }
        patch_object(self.kube.url, path, {"status": status}, agent=CONTROLLER_AGENT)


@pytest.fixture
def kube(
    emulator: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorThread]:
    """The emulator as a cluster: KUBECONFIG points at it, rollouts complete (see
    :class:`DeploymentController`, reachable as ``kube.controller``) and are polled quickly."""
    from mlctl.providers import k8s

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", emulator.url)))
    monkeypatch.setattr(k8s, "ROLLOUT_POLL_SECONDS", 0.02)
    controller = DeploymentController(emulator)
    emulator.controller = controller
    controller.thread.start()
    try:
        yield emulator
    finally:
        controller.stop.set()
        controller.thread.join(10)


PROVIDER = K8sProvider(type="k8s", namespace="ml", image="ghcr.io/acme/mlctl:1.0.0")
ARTIFACT = Artifact(uri="s3://b/artifacts/dev/churn/r1/model.joblib", sha256="cd" * 32, size=10)


class FakeSpec:
    """Just what K8sServing reads of an EnvSpec: the environment name and its endpoints."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.name = "dev"
        self.config = type("Config", (), {"endpoints": endpoints})()
