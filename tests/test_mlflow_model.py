"""Every version is an MLflow model (issue 13, item 1).

A fresh virtualenv holding MLflow and scikit-learn (the versions of this environment) and no
mlctl loads each registered version's MLflow model directory with
``mlflow.pyfunc.load_model(path)`` and predicts exactly what ``mlctl serve`` answers for the
same rows. The virtualenv is made once per session: its packages are the transitive closure
of ``mlflow-skinny``, ``scikit-learn`` and ``pandas`` as installed here, pinned ``==`` and
installed with ``--no-deps`` (no resolution; pip's cache makes a re-run cheap).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import edit, invoke
from mlctl.ml.mlflow_model import restore_mlflow_model
from mlctl.state.document import State

pytestmark = pytest.mark.slow

ROOTS = ("mlflow-skinny", "scikit-learn", "pandas")


def _closure(roots: tuple[str, ...]) -> dict[str, str]:
    """The installed distributions ``roots`` need (no extras), with their versions."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.fixture(scope="session")
def mlflow_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv with MLflow and scikit-learn, without mlctl."""
    try:
        metadata.version("mlflow-skinny")
    except metadata.PackageNotFoundError:
        pytest.fail("mlflow-skinny is not installed: `pip install -e .[dev]` brings it")
    venv = tmp_path_factory.mktemp("mlflow-venv") / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pins = [f"{name}=={version}" for name, version in sorted(_closure(ROOTS).items())]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            *pins,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\nmlflow virtualenv: {len(pins)} packages in {time.monotonic() - started:.1f} s")
    probe = subprocess.run([str(python), "-c", "import mlctl"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'mlctl'" in probe.stderr
    return python


LOAD = """
import json, sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = json.load(open(sys.argv[2]))
out = model.predict(pd.DataFrame(rows))
json.dump({"predictions": out.tolist()}, sys.stdout)
"""


def _rows(n: int = 40) -> list[dict[str, Any]]:
    return [
        {
            "total_orders_30d": i % 13,
            "avg_order_value": 12.5 + 3.25 * i,
            "days_since_last_order": (7 * i) % 90,
            "support_tickets_90d": i % 4,
            "login_frequency_7d": round(0.1 * (i % 17), 2),
        }
        for i in range(n)
    ]


def _variant(template: Path, tmp_path: Path, estimator: str, params: str) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    models = repo / "environments" / "dev" / "models.yaml"
    edit(models, "sklearn.ensemble.RandomForestClassifier", estimator)
    if params:
        text = models.read_text()
        start = text.index("      params:\n")
        end = text.index("      test_size:")
        models.write_text(text[:start] + params + text[end:])
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    return repo


@pytest.mark.parametrize(
    ("estimator", "params", "predictor"),
    [
        ("sklearn.ensemble.RandomForestClassifier", "", "compiled-forest"),
        (
            "sklearn.linear_model.LogisticRegression",
            "      params:\n        max_iter: 500\n",
            None,  # compiled or the pipeline: the load-time check decides (ulps of BLAS order)
        ),
        (
            "sklearn.tree.DecisionTreeClassifier",
            "      params:\n        max_depth: 6\n        random_state: 0\n",
            "compiled-tree",
        ),
    ],
)
def test_mlflow_loads_the_version_and_predicts_what_serve_answers(
    mlflow_python: Path,
    example_template: Path,
    tmp_path: Path,
    estimator: str,
    params: str,
    predictor: str | None,
) -> None:
    from fastapi.testclient import TestClient

    from mlctl.providers import artifact_store
    from mlctl.serving.app import create_app
    from mlctl.spec.loader import load_environment

    repo = _variant(example_template, tmp_path, estimator, params)
    state = State.from_json((repo / "state" / "dev.json").read_text())
    record = state.models["churn-predictor"].get(1)
    assert record is not None and record.mlflow_model is not None
    assert record.mlflow_model.uri.endswith(f"/{record.run_id}/mlflow-model.json")

    # the directory comes back from the artifact store, every file checked against the state
    model_dir = restore_mlflow_model(
        artifact_store(load_environment(repo, "dev")), record.mlflow_model, tmp_path / "mlflow-model"
    )
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert set(mlmodel["flavors"]) == {"python_function", "sklearn"}
    assert mlmodel["flavors"]["python_function"]["predict_fn"] == "predict_proba"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [i["name"] for i in inputs] == list(_rows(1)[0]) and [i["type"] for i in inputs] == [
        "long",
        "double",
        "long",
        "long",
        "double",
    ]
    assert "scikit-learn==" + metadata.version("scikit-learn") in (model_dir / "requirements.txt").read_text()

    rows = _rows()
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    ran = subprocess.run(
        [str(mlflow_python), "-c", LOAD, str(model_dir), str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    proba = json.loads(ran.stdout)["predictions"]
    classes = mlmodel["metadata"]["mlctl"]["classes"]
    assert len(proba) == len(rows) and all(len(p) == len(classes) == 2 for p in proba)

    app = create_app(repo, "dev", "churn-predictor", token=None, log_predictions=False)
    with TestClient(app) as client:
        if predictor is not None:
            assert client.get("/model").json()["predictor"] == predictor
        served = client.post("/predict/batch", json=[dict(r, customer_id="C1") for r in rows])
        assert served.status_code == 200, served.text
    answers = served.json()["predictions"]
    assert [a["probability"] for a in answers] == [p[-1] for p in proba]  # bitwise: JSON floats round-trip
    assert [a["prediction"] for a in answers] == [classes[max(range(2), key=p.__getitem__)] for p in proba]

    # a stored file changed behind the state's back is refused, not copied
    from mlctl.errors import MlctlError

    listing = json.loads((repo / record.mlflow_model.uri).read_text())
    pickled = repo / listing["stored"]["model.pkl"]["uri"]
    pickled.write_bytes(pickled.read_bytes() + b"\0")
    with pytest.raises(MlctlError):
        restore_mlflow_model(
            artifact_store(load_environment(repo, "dev")), record.mlflow_model, tmp_path / "again"
        )
