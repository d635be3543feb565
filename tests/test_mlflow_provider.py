"""The MLflow provider against a real ``mlflow server`` (SQLite store, served artifacts).

mlctl's state is the source of truth and MLflow mirrors it: apply logs the run and registers
the version, promotion and rollback move the aliases, an alias moved by hand is drift that
apply puts back, and ``mlctl import`` adopts a version MLflow made without training.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import edit, invoke, state_of
from mlctl.example.generator import FEATURES as EXAMPLE_FEATURES
from mlflow_server import MlflowServer, running

mlflow = pytest.importorskip("mlflow")

MODELS = Path("environments/dev/models.yaml")
ENVIRONMENT = Path("environments/dev/environment.yaml")
MODEL = "churn-predictor"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    with running(tmp_path / "mlflow") as found:
        yield found


def use_mirror(repo: Path, url: str) -> None:
    (repo / "providers" / "mlflow.yaml").write_text(f"type: mlflow\ntracking_uri: {url}\n")
    edit(repo / ENVIRONMENT, "  training: local\n", "  training: local\n  tracking: mlflow\n")


def client(server: MlflowServer) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def aliases(server: MlflowServer) -> dict[str, int]:
    registered = client(server).get_registered_model(MODEL)
    return {alias: int(version) for alias, version in registered.aliases.items()}


def mlctl_version(server: MlflowServer, mlflow_version: int) -> int:
    found = client(server).get_model_version(MODEL, str(mlflow_version))
    return int(found.tags["mlctl.version"])


def test_apply_promote_rollback_and_drift_mirror_to_mlflow(
    repo: Path, server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mirror(repo, server.url)
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output

    # the run: params, metrics, tags, data fingerprints, the artifacts
    c = client(server)
    [version] = c.search_model_versions(f"name='{MODEL}'")
    state = state_of(repo)
    v1 = state["models"][MODEL]["versions"][0]
    assert version.tags["mlctl.version"] == "1"
    assert version.tags["mlctl.sha256"] == v1["artifact"]["sha256"]
    run = c.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["max_depth"] == "8"
    assert run.data.metrics["auc"] == pytest.approx(v1["metrics"]["auc"])
    for dataset, fingerprint in v1["data"].items():
        assert run.data.tags[f"mlctl.data.{dataset}"] == fingerprint
        assert run.data.params[f"data.{dataset}.fingerprint"] == fingerprint
    listed = {a.path for a in c.list_artifacts(version.run_id)}
    assert {"mlctl", "model"} <= listed
    assert aliases(server) == {"staging": int(version.version), "production": int(version.version)}

    # a second version is promoted; the first is tagged archived
    edit(repo / MODELS, "max_depth: 8", "max_depth: 7")
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert state_of(repo)["models"][MODEL]["stages"]["production"] == 2
    assert mlctl_version(server, aliases(server)["production"]) == 2
    first = c.get_model_version(MODEL, version.version)
    assert first.tags["mlctl.stage"] == "archived"

    # the seed's server line loads what mlctl promoted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    features = _feature_rows(repo)
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@production")
    assert _same(loaded.predict(features), _predict_with_mlctl(repo, 2, features))

    # rollback moves the alias back; the same line then loads v1
    result = invoke(repo, "rollback", MODEL, "-e", "dev", "--reason", "latency")
    assert result.exit_code == 0, result.output
    assert "mlflow:" in result.stdout
    assert mlctl_version(server, aliases(server)["production"]) == 1
    reloaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@production")
    assert _same(reloaded.predict(features), _predict_with_mlctl(repo, 1, features))
    assert not _same(reloaded.predict(features), _predict_with_mlctl(repo, 2, features))
    assert invoke(repo, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0

    # an alias moved by hand in MLflow is drift; apply puts it back
    by_version = {
        mlctl_version(server, int(v.version)): int(v.version)
        for v in c.search_model_versions(f"name='{MODEL}'")
    }
    c.set_registered_model_alias(MODEL, "production", str(by_version[2]))
    planned = invoke(repo, "plan", "-e", "dev", "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    assert "MLflow alias churn-predictor@production points at v2" in planned.stdout
    document = json.loads(invoke(repo, "plan", "-e", "dev", "--format", "json").stdout)
    assert any(d["address"] == f"stage.{MODEL}.production" for d in document["resource_drift"])
    serial = state_of(repo)["serial"]
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert aliases(server)["production"] == by_version[1]
    assert state_of(repo)["models"][MODEL]["stages"]["production"] == 1
    assert state_of(repo)["serial"] > serial
    assert invoke(repo, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


FEATURES = list(EXAMPLE_FEATURES)  # the example model's inputs, in signature order


def _feature_rows(repo: Path) -> Any:
    """Twenty rows of the model's input columns from the example data."""
    import pandas as pd

    data = pd.read_csv(repo / "data" / "customer_activity.csv", nrows=200)
    return data[FEATURES].head(20)


def _artifact_path(repo: Path, version: dict[str, Any]) -> Path:
    path = Path(str(version["artifact"]["uri"]).removeprefix("file://"))
    return path if path.is_absolute() else repo / path


def _predict_with_mlctl(repo: Path, number: int, features: Any) -> Any:
    """What mlctl's own artifact of v``number`` scores for ``features`` (probabilities)."""
    import joblib

    version = state_of(repo)["models"][MODEL]["versions"][number - 1]
    pipeline = joblib.load(_artifact_path(repo, version))
    return pipeline.predict_proba(features)


def _same(pyfunc_output: Any, probabilities: Any) -> bool:
    """pyfunc predicts probabilities (issue 13 item 1's model directory) or labels (older
    bridge); compare with mlctl's probabilities either way."""
    import numpy as np

    out = np.asarray(pyfunc_output)
    probabilities = np.asarray(probabilities)
    if out.ndim == 2:
        return bool(np.allclose(out, probabilities))
    return bool(np.array_equal(out.astype(str), probabilities.argmax(axis=1).astype(str)))


def test_import_adopts_an_mlflow_version_without_training(
    applied: Path, server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version MLflow made (not mlctl) is adopted: artifact verified and stored, sha256 in
    state, gates evaluated on the run's metrics, MLflow tagged; nothing trained; pinning it
    promotes it with the next apply."""
    import sklearn.linear_model

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    runs_before = sorted((applied / ".mlctl" / "runs" / "dev").iterdir())
    with mlflow.start_run() as run:
        model = sklearn.linear_model.LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        mlflow.log_metrics({"auc": 0.97, "accuracy": 0.93, "latency_p95_ms": 1.0})
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="pickle")
    registered = mlflow.register_model(info.model_uri, MODEL)
    assert run.info.run_id
    use_mirror(applied, server.url)
    bad = invoke(applied, "import", "-e", "dev", "dataset.churn_labels", "1")
    assert bad.exit_code == 1 and "model_version.NAME" in bad.stderr
    wrong = invoke(applied, "import", "-e", "dev", f"model_version.{MODEL}", "models:/other/1")
    assert wrong.exit_code == 1 and "names registered model 'other'" in wrong.stderr
    serial = state_of(applied)["serial"]

    result = invoke(
        applied, "import", "-e", "dev", f"model_version.{MODEL}", f"models:/{MODEL}/{registered.version}"
    )
    assert result.exit_code == 0, result.output
    registry = state_of(applied)["models"][MODEL]
    adopted = registry["versions"][-1]
    assert adopted["version"] == 2 and adopted["status"] == "passed"
    assert adopted["training"]["imported_from"] == f"models:/{MODEL}/{registered.version}"
    assert adopted["metrics"]["auc"] == pytest.approx(0.97)
    import hashlib

    stored = _artifact_path(applied, adopted)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == adopted["artifact"]["sha256"]
    assert sorted((applied / ".mlctl" / "runs" / "dev").iterdir()) == runs_before, "nothing trained"
    assert state_of(applied)["serial"] == serial + 1
    assert mlctl_version(server, int(registered.version)) == 2

    again = invoke(applied, "import", "-e", "dev", f"model_version.{MODEL}", str(registered.version))
    assert again.exit_code == 1 and "already" in again.stderr
    assert state_of(applied)["serial"] == serial + 1

    # the first apply with the mirror logs v1 and points the aliases; pinning v2 promotes it
    edit(applied / MODELS, "      production: staging ", "      production: 2       ")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert state_of(applied)["models"][MODEL]["stages"]["production"] == 2
    assert aliases(applied_server := server)["production"] == int(registered.version)
    assert mlctl_version(applied_server, aliases(server)["staging"]) == 1


def test_mlflow_provider_validation(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown keys (credentials belong in the environment, not YAML), ${VAR} rules, URL shape
    and the role's provider type are checked like every other provider's."""
    (repo / "providers" / "mlflow.yaml").write_text("type: mlflow\ntracking_uri: http://x:5000\ntoken: abc\n")
    edit(repo / ENVIRONMENT, "  training: local\n", "  training: local\n  tracking: mlflow\n")
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1 and "token" in result.output
    # the server receives MLFLOW_TRACKING_TOKEN: a pull request may not choose it from a variable
    (repo / "providers" / "mlflow.yaml").write_text("type: mlflow\ntracking_uri: ${MLFLOW_URL}\n")
    monkeypatch.setenv("MLFLOW_URL", "http://attacker.example")
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1 and "${VAR} is not allowed in tracking_uri" in result.output
    assert "attacker" not in result.output
    (repo / "providers" / "mlflow.yaml").write_text("type: mlflow\ntracking_uri: not a url\n")
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1 and "tracking_uri must be a URL" in result.output
    (repo / "providers" / "mlflow.yaml").write_text("type: mlflow\ntracking_uri: http://127.0.0.1:5000\n")
    assert invoke(repo, "validate", "-e", "dev").exit_code == 0
    edit(repo / ENVIRONMENT, "tracking: mlflow", "tracking: local")
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1 and "cannot do tracking" in result.output


def test_unreachable_mirror_is_one_line(repo: Path) -> None:
    from mlflow_server import free_port

    use_mirror(repo, f"http://127.0.0.1:{free_port()}")
    result = invoke(repo, "plan", "-e", "dev")
    assert result.exit_code == 1
    assert "is not reachable" in result.stderr and "Traceback" not in result.output


def test_plan_never_imports_mlflow(repo: Path, server: MlflowServer) -> None:
    import subprocess

    use_mirror(repo, server.url)
    code = (
        "import sys; from mlctl.cli.main import main\n"
        "sys.argv = ['mlctl', '-C', sys.argv[1], 'plan', '-e', 'dev']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print('MLFLOW' if 'mlflow' in sys.modules else 'CLEAN')"
    )
    found = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True, text=True)
    assert found.stdout.strip().endswith("CLEAN"), found.stdout + found.stderr
