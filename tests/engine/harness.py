"""A small environment with real data files, run through the real executor against fakes:
an in-memory artifact store, a serving provider that records what it serves, a state backend
that keeps every checkpoint, and a training entry that stores a tiny real artifact instead of
fitting a model (training itself is tested in tests/test_ml_train.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlctl.engine.apply import Executor
from mlctl.errors import MlctlError
from mlctl.plan.model import Plan
from mlctl.plan.planner import make_plan
from mlctl.providers.base import ArtifactHealth
from mlctl.providers.datasets import dataset_fingerprint, dataset_rows
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import Dataset, Endpoint
from mlctl.state.backend import LockInfo
from mlctl.state.document import Artifact, GitInfo, State
from mlctl.workspace import Workspace
from plan.world import load, write_repo

ACTIVITY = "cid,ts,orders,value\n" + "".join(
    f"c{i},2026-01-0{1 + i % 5}T00:00:00Z,{i},{10.5 + i}\n" for i in range(8)
)
LABELS = "cid,ts,churned\n" + "".join(f"c{i},2026-01-09T00:00:00Z,{i % 2}\n" for i in range(8))
OFFLINE_VIEW = """\
entities:
  customer: {join_key: cid, value_type: string}
feature_views:
  cf:
    entities: [customer]
    source: activity
    ttl: 30d
    online: false
    features: {orders: int, value: float}
"""
GOOD = {"auc": 0.9, "accuracy": 0.85, "latency_p95_ms": 2.0}
GIT = GitInfo(commit="c0ffee", branch="main")


class FakeStore:
    """Artifacts in memory, addressed ``fake://KEY``; fetched copies land under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []

    def _artifact(self, key: str, data: bytes) -> Artifact:
        self.objects[key] = data
        self.puts.append(key)
        return Artifact(uri=f"fake://{key}", sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def put(self, source: Path, key: str) -> Artifact:
        return self._artifact(key, source.read_bytes())

    def put_bytes(self, data: bytes, key: str) -> Artifact:
        return self._artifact(key, data)

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def health(self, artifact: Artifact, *, deep: bool = False) -> ArtifactHealth:
        data = self.objects.get(artifact.uri.removeprefix("fake://"))
        if data is None:
            return "missing"
        return "ok" if hashlib.sha256(data).hexdigest() == artifact.sha256 else "tampered"

    def fetch(self, artifact: Artifact) -> Path:
        health = self.health(artifact)
        if health != "ok":
            raise MlctlError(f"artifact {artifact.uri} is {health}")
        path = self.root / artifact.uri.removeprefix("fake://")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.objects[artifact.uri.removeprefix("fake://")])
        return path

    def tamper(self, artifact: Artifact) -> None:
        self.objects[artifact.uri.removeprefix("fake://")] = b"not the model"


class FakeServing:
    """Records every deploy/undeploy; ``fail`` makes the next deploys raise it; a deploy of
    ``(endpoint, version)`` named in ``broken`` fails like a rollout whose pods crash-loop,
    the endpoint left serving what it served (as the k8s provider restores it). ``during``
    is called in the middle of each deploy (what a follower would see while pods roll)."""

    def __init__(self) -> None:
        self.serving: dict[str, tuple[str, int]] = {}
        self.calls: list[tuple[str, str, int | None]] = []
        self.fail: BaseException | None = None
        self.broken: dict[tuple[str, int], str] = {}
        self.during: Callable[[str, int], None] | None = None

    def deploy(self, endpoint: str, model: str, version: int, artifact: Artifact) -> dict[str, Any]:
        self.calls.append(("deploy", endpoint, version))
        if self.during is not None:
            self.during(endpoint, version)
        if self.fail is not None:
            raise self.fail
        reason = self.broken.get((endpoint, version))
        if reason is not None:
            raise MlctlError(f"rollout of v{version} to {endpoint} failed: {reason}")
        self.serving[endpoint] = (model, version)
        return {"provider": "fake", "model": model, "version": version, "artifact": artifact.uri}

    def undeploy(self, endpoint: str) -> None:
        self.calls.append(("undeploy", endpoint, None))
        self.serving.pop(endpoint, None)

    def live(self, endpoint: str) -> dict[str, Any] | None:
        found = self.serving.get(endpoint)
        return None if found is None else {"model": found[0], "version": found[1]}


class MemoryBackend:
    """A state backend keeping every checkpoint (as JSON text) in order."""

    def __init__(self) -> None:
        self.snapshots: list[str] = []
        self.fail_at: int | None = None  # the write number (1-based) that raises, like a full disk

    def read(self) -> State | None:
        return State.from_json(self.snapshots[-1]) if self.snapshots else None

    def write(self, state: State) -> None:
        if self.fail_at == len(self.snapshots) + 1:
            self.fail_at = None
            raise OSError(28, "No space left on device")
        self.snapshots.append(state.to_json())

    def lock(self, info: LockInfo) -> None:
        return None

    def unlock(self, lock_id: str) -> None:
        return None

    def lock_holder(self) -> LockInfo | None:
        return None

    def force_unlock(self, lock_id: str) -> None:
        return None

    def describe(self) -> str:
        return "memory"


@dataclass
class Trainer:
    """Stands in for the training entry: stores a small real artifact and reports ``metrics``."""

    metrics: dict[str, float] = field(default_factory=lambda: dict(GOOD))
    fail: BaseException | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        from mlctl.engine.candidates import Candidate
        from mlctl.ml.gates import evaluate_gates

        self.calls.append(request.model)
        if self.fail is not None:
            raise self.fail
        run_id = f"run-{len(self.calls)}"
        model = request.spec.config.models[request.model]
        artifact = request.store.put_bytes(
            f"{request.model} {request.identity}".encode(), f"{request.model}/{run_id}/model.joblib"
        )
        gates = evaluate_gates(self.metrics, model.gates, model.training.task, request.production_metrics)
        return Candidate(
            run_id=run_id, metrics=dict(self.metrics), gates=gates, artifact=artifact, signature={}
        )


class World:
    """One environment: its files, fakes, the state backend, and plan/apply as a user runs
    them (each apply reads the state afresh, like a new process)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = write_repo(root, **{"features.yaml": OFFLINE_VIEW})
        (root / "data").mkdir()
        (root / "data" / "activity.csv").write_text(ACTIVITY)
        (root / "data" / "labels.csv").write_text(LABELS)
        self.store = FakeStore(root / ".fetched")
        self.serving = FakeServing()
        self.backend = MemoryBackend()
        self.trainer = Trainer()
        monkeypatch.setattr("mlctl.engine.apply.artifact_store", lambda spec: self.store)
        monkeypatch.setattr("mlctl.engine.apply.serving", lambda spec, name: self.serving)
        monkeypatch.setattr("mlctl.engine.training.train_candidate", self.trainer)

    @property
    def spec(self) -> EnvSpec:
        return load(self.root)

    @property
    def state(self) -> State | None:
        return self.backend.read()

    def plan(self, **kw: Any) -> Plan:
        return make_plan(self.spec, self.backend.read(), Reality(self), **kw)

    def workspace(self) -> Workspace:
        return Workspace(self.root, self.spec, self.backend)

    def apply(self, plan: Plan | None = None) -> Any:
        """Run the executor on ``plan`` (a fresh plan by default) and the stored state."""
        plan = plan or self.plan()
        ws = self.workspace()
        state = self.backend.read() or State(environment=ws.spec.name)
        return Executor(ws, state, git=GIT, actor="tester@host").apply(plan)


class Reality:
    """The planner's view of a :class:`World` (real data files, fake store and serving)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def dataset_fingerprint(self, name: str, dataset: Dataset) -> str | None:
        return dataset_fingerprint(self.world.spec, dataset)

    def dataset_rows(self, name: str, dataset: Dataset) -> int | None:
        return dataset_rows(self.world.spec, dataset)

    def artifact_health(self, artifact: Artifact) -> ArtifactHealth:
        return self.world.store.health(artifact)

    def endpoint_live(self, name: str, endpoint: Endpoint) -> dict[str, Any] | None:
        return self.world.serving.live(name)

    def endpoint_manifests(
        self, name: str, endpoint: Endpoint, version: int | str, artifact: Artifact
    ) -> str | None:
        return None


def errors(result: Any) -> list[str]:
    """The failures an apply reported, one line each (address first)."""
    return [str(e) for e in result.errors]


def actions(plan: Plan) -> dict[str, list[str]]:
    return {c.address: c.actions for c in plan.resource_changes}
