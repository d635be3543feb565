"""Tracking and registry benchmark: mlctl's native store vs MLflow's own client, same run.

Side by side, each on local disk (MLflow: SQLite backend store + local artifact root, through
``mlflow.MlflowClient``; mlctl: :class:`mlctl.ml.tracking.RunStore` and the state registry
written by :func:`mlctl.state.backend.persist` to a local state file):

1. 100 runs x 15 params + 15 metrics (each side's batch call);
2. 10,000 single metric logs into one run;
3. 20 x register a version + point the ``production`` alias at it;
4. loading the production model in a fresh process (interpreter start included).

Then, unless ``--no-apply``, the cost the MLflow provider adds to an apply: the example
repository is applied once without the mirror, an ``mlflow server`` is started, and the
mirror's reconciliation (run logged, artifacts uploaded, version registered, aliases set) and
the plan's alias refresh are timed.

    .venv/bin/python benchmarks/tracking.py [--no-apply]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the mlflow server helper of the test suite

PARAMS = {f"param_{i}": i for i in range(15)}
METRICS = {f"metric_{i}": i / 15 for i in range(15)}


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def fitted_model() -> object:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(x, y)


# -- MLflow --------------------------------------------------------------------------------
def mlflow_side(work: Path, model: object) -> dict[str, float]:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("bench", artifact_location=(work / "artifacts").as_uri())
    client.search_experiments()  # schema migrations happen before the clock starts
    out: dict[str, float] = {}

    def runs() -> None:
        for i in range(100):
            run = client.create_run(experiment, run_name=f"run-{i}")
            mlflow_params = [mlflow.entities.Param(k, str(v)) for k, v in PARAMS.items()]
            now = int(time.time() * 1000)
            metrics = [mlflow.entities.Metric(k, v, now, 0) for k, v in METRICS.items()]
            client.log_batch(run.info.run_id, metrics=metrics, params=mlflow_params)
            client.set_terminated(run.info.run_id)

    out["runs"] = timed(runs)
    run = client.create_run(experiment, run_name="metrics")
    out["metrics"] = timed(
        lambda: [client.log_metric(run.info.run_id, "loss", i / 1e4, step=i) for i in range(10_000)]
    )

    with mlflow.start_run(experiment_id=experiment) as logged:
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="pickle")
    client.create_registered_model("bench")

    def register() -> None:
        for _ in range(20):
            version = client.create_model_version("bench", info.model_uri, logged.info.run_id)
            client.set_registered_model_alias("bench", "production", version.version)

    out["register"] = timed(register)
    code = (
        "import mlflow.pyfunc; m = mlflow.pyfunc.load_model('models:/bench@production'); m.predict([[0.0]*5])"
    )
    out["load"] = fresh_process(code)
    return out


# -- mlctl ---------------------------------------------------------------------------------
def mlctl_side(work: Path, model: object) -> dict[str, float]:
    import hashlib

    import joblib

    from mlctl.engine.registry import move_stage
    from mlctl.ml.tracking import RunStore
    from mlctl.state.backend import persist
    from mlctl.state.document import Artifact, ModelVersion, State
    from mlctl.state.local import LocalBackend

    store = RunStore(work / "runs")
    out: dict[str, float] = {}

    def runs() -> None:
        for _ in range(100):
            with store.start_run("bench", "dev") as run:
                run.log_params(PARAMS)
                run.log_metrics(METRICS)

    out["runs"] = timed(runs)
    run = store.start_run("bench", "dev")

    def metrics() -> None:
        for i in range(10_000):
            run.log_metrics({"loss": i / 1e4})

    out["metrics"] = timed(metrics)
    run.finish()

    path = work / "model.joblib"
    joblib.dump(model, path)
    data = path.read_bytes()
    artifact = Artifact(uri=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    backend = LocalBackend(work / "state" / "dev.json")
    state = State(environment="dev")

    def register() -> None:
        registry = state.registry("bench")
        for _ in range(20):
            number = registry.next_version
            registry.versions.append(
                ModelVersion(version=number, identity=f"id-{number}", status="passed", artifact=artifact)
            )
            registry.next_version += 1
            move_stage(
                registry, "production", number, action="promote", actor="bench", reason=None, commit=None
            )
            persist(backend, state)  # one durable state write per registration, as apply does

    out["register"] = timed(register)
    code = (
        "import hashlib, io, json, sys; import joblib\n"
        "from mlctl.state.local import LocalBackend\n"
        f"state = LocalBackend(__import__('pathlib').Path({str(work / 'state' / 'dev.json')!r})).read()\n"
        "r = state.models['bench']; v = r.get(r.stages['production'])\n"
        "data = open(v.artifact.uri, 'rb').read()\n"
        "assert hashlib.sha256(data).hexdigest() == v.artifact.sha256\n"
        "m = joblib.load(io.BytesIO(data)); m.predict([[0.0]*5])\n"
    )
    out["load"] = fresh_process(code)
    return out


def fresh_process(code: str) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: interpreter start and imports, then the load
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
        )
        best = min(best, time.perf_counter() - started)
    return best


# -- the MLflow provider's cost in an apply --------------------------------------------------
def apply_cost(work: Path) -> list[tuple[str, float]]:
    from mlctl.cli.main import cli
    from mlctl.engine.mirror import sync
    from mlctl.engine.reality import ProviderReality
    from mlctl.example.init import init_repo
    from mlctl.providers import artifact_store
    from mlctl.workspace import open_workspace
    from mlflow_server import running

    repo = work / "repo"
    init_repo(repo)
    models = repo / "environments" / "dev" / "models.yaml"
    models.write_text(models.read_text().replace("n_estimators: 100 ", "n_estimators: 25  "))
    from click.testing import CliRunner

    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["-C", str(repo), "apply", "-e", "dev", "--auto-approve"])
    assert result.exit_code == 0, result.output
    apply_seconds = time.perf_counter() - started
    with running(work / "mlflow-server") as server:
        (repo / "providers" / "mlflow.yaml").write_text(f"type: mlflow\ntracking_uri: {server.url}\n")
        env_file = repo / "environments" / "dev" / "environment.yaml"
        env_file.write_text(
            env_file.read_text().replace("  training: local\n", "  training: local\n  tracking: mlflow\n")
        )
        ws = open_workspace(repo, "dev")
        state = ws.backend.read()
        assert state is not None
        store = artifact_store(ws.spec)
        first = timed(lambda: sync(ws.spec, state, store))
        again = timed(lambda: sync(ws.spec, state, store))
        reality = ProviderReality(ws.spec)
        refresh = timed(lambda: reality.registry_aliases("churn-predictor"))
    return [
        ("apply of the example (train, gates, register, promote, deploy)", apply_seconds),
        ("mirror: log run + upload artifacts + register + 2 aliases", first),
        ("mirror: reconcile when already in sync", again),
        ("plan: alias refresh of one model", refresh),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-apply", action="store_true", help="skip the apply-cost measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlctl-bench-tracking-"))
    try:
        model = fitted_model()
        (work / "mlflow").mkdir()
        (work / "mlctl").mkdir()
        theirs = mlflow_side(work / "mlflow", model)
        ours = mlctl_side(work / "mlctl", model)
        rows = [
            ("100 runs x 15 params + 15 metrics", "runs"),
            ("10,000 single metric logs", "metrics"),
            ("20 x register + production alias", "register"),
            ("load production model, fresh process", "load"),
        ]
        print(f"\n{'workload':<40} {'MLflow (SQLite)':>16} {'mlctl native':>14} {'speed-up':>9}")
        for label, key in rows:
            ratio = theirs[key] / ours[key]
            print(f"{label:<40} {theirs[key]:>15.3f}s {ours[key]:>13.3f}s {ratio:>8.1f}x")
        if not args.no_apply:
            print()
            for label, seconds in apply_cost(work):
                print(f"{label:<64} {seconds:>8.3f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
