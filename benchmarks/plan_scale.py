"""How validate and plan scale with the number of models (whole processes, wall time).

Builds environments with N models (N datasets, N feature views, N monitors, N endpoints) and a
state as if each had been applied, then times ``mlctl --help``, ``mlctl validate``, ``mlctl plan``
with no change, and ``mlctl plan`` after changing one gate. Prints a table. Not a test.

    .venv/bin/python benchmarks/plan_scale.py [--sizes 10,100,1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlctl.plan.planner import version_identity
from mlctl.plan.resources import desired_resources
from mlctl.state.document import Artifact, ModelVersion, ResourceState, State
from mlctl.state.local import LocalBackend
from mlctl.workspace import open_workspace

MLCTL = str(Path(sys.executable).with_name("mlctl"))
CSV = "customer_id,event_timestamp,orders,value\nC1,2026-01-01T00:00:00Z,3,10.5\n"
LABELS = "customer_id,event_timestamp,churned\nC1,2026-01-02T00:00:00Z,Yes\n"


def build(root: Path, n: int) -> None:
    env = root / "environments" / "bench"
    (root / "data").mkdir(parents=True)
    (root / "providers").mkdir()
    env.mkdir(parents=True)
    (root / "providers" / "local.yaml").write_text("type: local\nroot: .mlctl\n")
    (env / "environment.yaml").write_text("backend: {type: local, path: state/bench.json}\n")
    (root / "data" / "labels.csv").write_text(LABELS)
    data = ["datasets:", "  labels:", "    path: data/labels.csv", "    timestamp: event_timestamp"]
    feats = ["entities:", "  customer: {join_key: customer_id}", "feature_views:"]
    models = ["models:"]
    deploy = ["endpoints:"]
    mons = ["monitors:"]
    for i in range(n):
        (root / "data" / f"activity_{i}.csv").write_text(CSV)
        data += [
            f"  activity_{i}:",
            f"    path: data/activity_{i}.csv",
            "    timestamp: event_timestamp",
            "    checks: {min_rows: 1}",
        ]
        feats += [
            f"  view_{i}:",
            "    entities: [customer]",
            f"    source: activity_{i}",
            "    ttl: 30d",
            "    features: {orders: int, value: float}",
        ]
        models += [
            f"  model-{i}:",
            "    training:",
            "      labels: labels",
            "      target: churned",
            f"      features: [view_{i}:orders, view_{i}:value]",
            "      estimator: sklearn.ensemble.RandomForestClassifier",
            "      params: {n_estimators: 10, max_depth: 3}",
            "    gates: {min_auc: 0.5, max_regression: 0.05}",
            "    stages: {staging: latest, production: staging}",
            "    retrain: {schedule: '0 6 * * 1', on: [drift]}",
        ]
        deploy += [f"  api-{i}: {{model: model-{i}, stage: production}}"]
        mons += [f"  drift-{i}: {{model: model-{i}, kind: drift, threshold: 0.15, actions: [alert]}}"]
    for name, lines in (
        ("data", data),
        ("features", feats),
        ("models", models),
        ("deployments", deploy),
        ("monitors", mons),
    ):
        (env / f"{name}.yaml").write_text("\n".join(lines) + "\n")


def fake_state(root: Path) -> None:
    """A state as if every resource had been applied (one passed version per model)."""
    ws = open_workspace(root, "bench")
    from mlctl.ml.fingerprint import fingerprint_file

    state = State(environment="bench")
    fps = {name: fingerprint_file(root / ds.path) for name, ds in ws.spec.config.datasets.items()}
    artifacts = root / ".mlctl" / "artifacts" / "bench"
    artifacts.mkdir(parents=True)
    for address, d in desired_resources(ws.spec.config).items():
        status: dict[str, object] = {}
        if d.type == "dataset":
            status = {"fingerprint": fps[d.name], "passed": True, "rows": 1}
        elif d.type == "model_version":
            data = {
                a.split(".", 1)[1]: fps[a.split(".", 1)[1]] for a in d.depends_on if a.startswith("dataset.")
            }
            identity = version_identity(d.spec, data)
            assert identity
            blob = artifacts / f"{d.name}.joblib"
            blob.write_bytes(d.name.encode() * 100)
            artifact = Artifact(
                uri=blob.relative_to(root).as_posix(),
                sha256=hashlib.sha256(blob.read_bytes()).hexdigest(),
                size=blob.stat().st_size,
                mtime_ns=blob.stat().st_mtime_ns,
            )
            registry = state.registry(d.name)
            registry.versions.append(
                ModelVersion(
                    version=1,
                    identity=identity,
                    status="passed",
                    stage="production",
                    metrics={"auc": 0.8, "accuracy": 0.8, "latency_p95_ms": 1.0},
                    artifact=artifact,
                    training=d.spec,
                    data=data,
                )
            )
            registry.next_version = 2
            registry.stages = {"staging": 1, "production": 1}
            status = {"identity": identity, "version": 1}
        elif d.type in ("stage", "endpoint"):
            status = {"version": 1}
        state.resources[address] = ResourceState(
            type=d.type, name=d.name, spec=d.spec, status=status, depends_on=d.depends_on
        )
    backend = LocalBackend(root / "state" / "bench.json")
    backend.read()
    state.serial = 1
    backend.write(state)


def timed(args: list[str], cwd: Path, repeat: int, expect: set[int]) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run([MLCTL, *args], cwd=cwd, capture_output=True, text=True)
        samples.append(time.perf_counter() - start)
        if proc.returncode not in expect:
            raise SystemExit(f"mlctl {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="mlctl-bench-"))
    try:
        help_s = timed(["--help"], tmp, args.repeat, {0})
        print(f"mlctl --help: {help_s * 1000:.0f} ms (median of {args.repeat})\n")
        header = ("models", "resources", "validate", "plan no-op", "plan 1 change", "per model")
        print("{:>7} {:>9} {:>10} {:>11} {:>14} {:>10}".format(*header))
        for n in sizes:
            root = tmp / f"n{n}"
            build(root, n)
            fake_state(root)
            resources = len(desired_resources(open_workspace(root, "bench").spec.config))
            v = timed(["validate", "-e", "bench"], root, args.repeat, {0})
            p0 = timed(["plan", "-e", "bench", "--detailed-exitcode"], root, args.repeat, {0})
            models = root / "environments" / "bench" / "models.yaml"
            text = models.read_text()
            models.write_text(text.replace("min_auc: 0.5", "min_auc: 0.55", 1))
            p1 = timed(["plan", "-e", "bench", "--detailed-exitcode"], root, args.repeat, {2})
            models.write_text(text)
            print(f"{n:>7} {resources:>9} {v:>9.2f}s {p0:>10.2f}s {p1:>13.2f}s {p1 / n * 1000:>8.2f}ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
