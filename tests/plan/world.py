"""A small environment written to disk, a hand-made State and a fake Reality.

Everything here is fixed (lineage, times, fingerprints, hashes) so plans and their rendered
text are byte-for-byte reproducible. Nothing trains, nothing reads data, no CLI runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlctl.plan.model import Plan
from mlctl.plan.planner import make_plan, version_identity
from mlctl.plan.refresh import ArtifactHealth
from mlctl.plan.resources import desired_resources
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.loader import load_environment
from mlctl.spec.models import Dataset, Endpoint
from mlctl.spec.views import schema_hash, view_schema
from mlctl.state.document import Artifact, ModelRegistry, ModelVersion, ResourceState, StageEvent, State

ENV = "dev"
LINEAGE = "00000000-0000-4000-8000-000000000001"
T0 = "2026-01-01T00:00:00Z"
FINGERPRINTS: dict[str, str | None] = {"activity": "sha256:" + "1" * 64, "labels": "sha256:" + "2" * 64}
METRICS = {"auc": 0.91, "accuracy": 0.88, "latency_p95_ms": 3.0}
ARTIFACT = Artifact(uri=".mlctl/artifacts/dev/churn/run-1/model.joblib", sha256="a" * 64, size=1234)

FILES = {
    "providers/local.yaml": "type: local\nroot: .mlctl\n",
    "environments/dev/environment.yaml": (
        "backend: {type: local}\nproviders: {artifacts: local, serving: local, training: local}\n"
    ),
    "environments/dev/data.yaml": """\
datasets:
  activity:
    path: data/activity.csv
    timestamp: ts
    schema: {cid: string, ts: datetime, orders: int, value: float}
    checks: {min_rows: 1}
  labels:
    path: data/labels.csv
    timestamp: ts
    schema: {cid: string, ts: datetime, churned: int}
""",
    "environments/dev/features.yaml": """\
entities:
  customer: {join_key: cid, value_type: string}
feature_views:
  cf:
    entities: [customer]
    source: activity
    ttl: 1d
    online: true
    features: {orders: int, value: float}
""",
    "environments/dev/models.yaml": """\
models:
  churn:
    training:
      labels: labels
      target: churned
      features: [cf:orders, cf:value]
      estimator: sklearn.linear_model.LogisticRegression
      params: {C: 1.0}
    gates: {min_auc: 0.8, max_latency_ms: 50}
    stages: {staging: latest, production: staging}
    tags: {team: growth}
""",
    "environments/dev/deployments.yaml": "endpoints:\n  api: {model: churn, stage: production}\n",
    "environments/dev/monitors.yaml": (
        "monitors:\n  churn-drift: {model: churn, kind: drift, threshold: 0.2}\n"
    ),
}


def write_repo(root: Path, **overrides: str | None) -> Path:
    """Write the environment under ``root``; ``overrides`` maps a file name of
    ``environments/dev`` (``models.yaml``) to new text, or None to leave the file out."""
    files = dict(FILES)
    for name, text in overrides.items():
        path = name if "/" in name else f"environments/dev/{name}"
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    """Replace ``old`` (which must occur) by ``new`` in ``environments/dev/<name>``."""
    path = root / "environments" / ENV / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


#: The toolchain every planner test plans with (installed as dist-info by ``install_toolchain``),
#: so golden identities do not move with the installed mlctl or scikit-learn.
TOOLCHAIN = {"mlctl": "0.0.0+test", "scikit-learn": "1.0.0"}


def install_toolchain(site: Path, versions: dict[str, str]) -> Path:
    """Write a ``<name>-<version>.dist-info`` per entry under ``site`` (a new directory) and
    return it; put first on ``sys.path``, importlib.metadata reports these versions."""
    site.mkdir(parents=True)
    for name, number in versions.items():
        info = site / f"{name.replace('-', '_')}-{number}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {number}\n")
    return site


def load(root: Path) -> EnvSpec:
    return load_environment(root, ENV, environ={})


@dataclass
class FakeReality:
    """The world as the planner asks about it; records each question."""

    fingerprints: dict[str, str | None] = field(default_factory=lambda: dict(FINGERPRINTS))
    rows: dict[str, int | None] = field(default_factory=dict)  # dataset -> rows now (None: unknown)
    artifacts: dict[str, ArtifactHealth] = field(default_factory=dict)  # uri -> health (default ok)
    live: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # endpoint -> what it serves
    manifests: dict[str, str] = field(default_factory=dict)  # endpoint -> rendered manifests
    asked: list[str] = field(default_factory=list)

    def dataset_fingerprint(self, name: str, dataset: Dataset) -> str | None:
        self.asked.append(f"dataset.{name}")
        return self.fingerprints.get(name)

    def dataset_rows(self, name: str, dataset: Dataset) -> int | None:
        self.asked.append(f"rows of dataset.{name}")
        return self.rows.get(name)

    def artifact_health(self, artifact: Artifact) -> ArtifactHealth:
        self.asked.append(f"artifact {artifact.uri}")
        return self.artifacts.get(artifact.uri, "ok")

    def endpoint_live(self, name: str, endpoint: Endpoint) -> dict[str, Any] | None:
        self.asked.append(f"endpoint.{name}")
        return self.live.get(name)

    def endpoint_manifests(
        self, name: str, endpoint: Endpoint, version: int | str, artifact: Artifact
    ) -> str | None:
        text = self.manifests.get(name)
        return None if text is None else text.replace("VERSION", str(version))


def version(
    number: int,
    identity: str,
    *,
    training: dict[str, Any],
    data: dict[str, Any],
    stage: str = "none",
    metrics: dict[str, float] | None = None,
    status: str = "passed",
) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "version": number,
            "identity": identity,
            "status": status,
            "stage": stage,
            "metrics": dict(METRICS if metrics is None else metrics),
            "artifact": ARTIFACT.model_copy(update={"uri": ARTIFACT.uri.replace("run-1", f"run-{number}")}),
            "run_id": f"run-{number}",
            "training": training,
            "data": data,
            "created_at": T0,
            "created_by": "tester@host",
        }
    )


def applied_state(spec: EnvSpec, fingerprints: dict[str, str | None] | None = None) -> State:
    """The state one successful apply of ``spec`` leaves: every resource recorded, datasets
    checked, the online view materialized, v1 of each model in staging and production, each
    endpoint serving v1."""
    data = dict(FINGERPRINTS if fingerprints is None else fingerprints)
    env = spec.config
    state = State(environment=ENV, lineage=LINEAGE, serial=7, updated_at=T0)
    for address, d in desired_resources(env, spec.placeholders).items():
        status: dict[str, Any] = {}
        if d.type == "dataset":
            status = {"fingerprint": data[d.name], "rows": 10, "passed": True, "failed": []}
        elif d.type == "feature_view" and env.feature_views[d.name].online:
            view = env.feature_views[d.name]
            status = {
                "online": True,
                "schema": schema_hash(view_schema(env, d.name)),
                "fingerprint": data[view.source],
                "watermark": T0,
                "entities": 3,
            }
        elif d.type == "model_version":
            used = {
                a.split(".", 1)[1]: data[a.split(".", 1)[1]] for a in d.depends_on if a.startswith("dataset.")
            }
            identity = version_identity(d.spec, used)
            assert identity is not None
            registry = state.registry(d.name)
            registry.versions.append(version(1, identity, training=d.spec, data=used, stage="production"))
            registry.next_version = 2
            registry.stages = {"staging": 1, "production": 1}
            registry.history = [
                StageEvent(time=T0, stage=s, action="promote", to_version=1, actor="tester@host")
                for s in ("staging", "production")
            ]
            status = {"identity": identity, "version": 1}
        elif d.type == "stage":
            status = {"version": 1}
        elif d.type == "endpoint":
            status = {"version": 1, "provider": "local", "stage": d.spec["stage"]}
        state.resources[address] = ResourceState(
            type=d.type, name=d.name, spec=d.spec, status=status, depends_on=d.depends_on, updated_at=T0
        )
    return state


def add_version(state: State, model: str, number: int, **kw: Any) -> ModelVersion:
    """Register another version of ``model`` (stage none) with the given identity/training/data."""
    registry: ModelRegistry = state.models[model]
    kw.setdefault("training", {})
    kw.setdefault("data", {})
    kw.setdefault("identity", f"sha256:{number:064d}")
    made = version(number, **kw)
    registry.versions.append(made)
    registry.next_version = max(registry.next_version, number + 1)
    return made


def plan(spec: EnvSpec, state: State | None, reality: FakeReality | None, **kw: Any) -> Plan:
    """make_plan with the time and version stamps fixed (for golden files)."""
    made = make_plan(spec, state, reality, **kw)
    return made.model_copy(update={"created_at": T0, "mlctl_version": "0.0.0+test"})


def by_address(made: Plan) -> dict[str, list[str]]:
    """address -> actions of every planned change."""
    return {c.address: c.actions for c in made.resource_changes}
