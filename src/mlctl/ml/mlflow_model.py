"""Every version is an MLflow model: the MLflow model directory of a fitted pipeline.

Contract:

* :func:`write_mlflow_model` writes, into an empty or absent directory, what
  ``mlflow.sklearn.save_model(pipeline, path, serialization_format="pickle",
  pyfunc_predict_fn=..., signature=..., input_example=...)`` writes, without importing
  MLflow (mlctl does not depend on it): ``MLmodel`` (flavors ``python_function`` with
  ``loader_module: mlflow.sklearn`` and ``sklearn``), ``model.pkl`` (the pipeline, plain
  pickle at the default protocol; it imports only scikit-learn and numpy), ``conda.yaml``,
  ``python_env.yaml``, ``requirements.txt`` (``mlflow`` and the installed numpy, pandas,
  scikit-learn and scipy, pinned ``==``), ``input_example.json`` (pandas ``split`` orient) and
  ``serving_input_example.json`` (``dataframe_split``). The format follows MLflow's own writer
  (``mlflow/models/model.py`` ``Model.to_dict``, ``mlflow/sklearn/__init__.py``
  ``save_model``, ``mlflow/pyfunc/__init__.py`` ``add_to_model``); a test loads the result
  with the real ``mlflow.pyfunc.load_model`` in a virtualenv without mlctl.
* The signature's inputs are the pipeline's input columns, typed as the pipeline takes them
  (:func:`mlctl.ml.train.model_frame`): int -> ``long``, float -> ``double``, bool -> ``boolean``,
  string/category -> ``string``, datetime -> ``double`` (seconds since the epoch, UTC).
  Classifiers predict with ``predict_proba`` (output: a float64 tensor ``[-1, k]``, class
  ``i`` in column ``i``; the labels are ``metadata.mlctl.classes``), regressors with
  ``predict`` (``[-1]``).
* :func:`manifest` lists every file with its sha256 and size; the environment's artifact
  store keeps the directory next to the model and the state records the manifest's
  artifact (``ModelVersion.mlflow_model``), so a reader verifies every byte:
  :func:`restore_mlflow_model`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import yaml

from mlctl.errors import MlctlError

__all__ = [
    "MANIFEST_FORMAT",
    "MLFLOW_FLOOR",
    "MODEL_DIR",
    "manifest",
    "mlflow_input_type",
    "requirements",
    "restore_mlflow_model",
    "write_mlflow_model",
]

#: Name of the directory next to ``model.joblib`` in the artifact store.
MODEL_DIR = "mlflow-model"
MANIFEST_FORMAT = "mlctl.mlflow-model/1"
#: Oldest MLflow whose sklearn flavor reads ``predict_fn`` of the python_function flavor.
MLFLOW_FLOOR = "2.5"
#: Packages the pickle needs, pinned to what is installed when it is written.
PINNED = ("numpy", "pandas", "scikit-learn", "scipy")
_TYPES = {
    "int": "long",
    "float": "double",
    "numeric": "double",
    "bool": "boolean",
    "datetime": "double",
    "string": "string",
    "category": "string",
    "categorical": "string",
}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def requirements() -> list[str]:
    """``requirements.txt`` lines as MLflow writes them: ``mlflow`` first (pinned when MLflow
    is installed here, else from :data:`MLFLOW_FLOOR`), then the pinned packages, sorted."""
    mlflow = _version("mlflow") or _version("mlflow-skinny")
    lines = [f"mlflow=={mlflow}" if mlflow else f"mlflow>={MLFLOW_FLOOR}"]
    for package in PINNED:
        found = _version(package)
        lines.append(f"{package}=={found}" if found else package)
    return lines


def mlflow_input_type(kind: str) -> str:
    """The MLflow column type of an input of ``kind`` (its declared feature type, or the name
    of its pipeline branch). MLflow refuses to cast int64 to double, so ``int`` is ``long``."""
    return _TYPES.get(kind, "string")


def _example(frame: Any, kinds: Mapping[str, str], n: int = 5) -> dict[str, Any]:
    """Up to ``n`` complete rows of the typed frame, as JSON values of the signature's types."""
    rows = frame.dropna().head(n)
    if rows.empty:
        rows = frame.head(0)
    columns = [str(c) for c in frame.columns]
    data = []
    for row in rows.itertuples(index=False, name=None):
        values: list[Any] = []
        for column, value in zip(columns, row, strict=True):
            value = value.item() if hasattr(value, "item") else value
            if kinds.get(column) == "bool":
                value = bool(value)
            elif kinds.get(column) == "int":
                value = int(value)
            values.append(value)
        data.append(values)
    return {"columns": columns, "data": data}


def _python_version() -> str:
    return platform.python_version()


def write_mlflow_model(
    path: Path,
    pipeline: Any,
    kinds: Mapping[str, str],
    *,
    task: str,
    classes: list[Any],
    example: Any = None,
    metadata_: Mapping[str, Any] | None = None,
) -> Path:
    """Write the MLflow model directory of ``pipeline`` at ``path`` (see the module contract).

    ``kinds`` maps each input column, in the pipeline's order, to its declared feature type
    (``TrainResult.feature_types``); ``example`` is a typed frame
    (:func:`mlctl.ml.train.model_frame`) the input example is taken from; ``classes`` are the
    labels of the probability columns (``[]`` for regressors). Returns ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise MlctlError(f"{path} is not empty; an MLflow model directory needs a fresh one")
    classifier = task == "classification"
    predict_fn = "predict_proba" if classifier else "predict"
    (path / "model.pkl").write_bytes(pickle.dumps(pipeline, protocol=pickle.DEFAULT_PROTOCOL))

    inputs = [
        {"type": mlflow_input_type(kind), "name": name, "required": True} for name, kind in kinds.items()
    ]
    shape = [-1, len(classes)] if classifier else [-1]
    outputs = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": shape}}]
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": predict_fn,
                "python_version": _python_version(),
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "pickle",
                "sklearn_version": _version("scikit-learn"),
            },
        },
        "is_signature_from_type_hint": False,
        "model_uuid": uuid.uuid4().hex,
        "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs), "params": None},
        "type_hint_from_example": False,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {
            "mlctl": {
                "task": task,
                "classes": [c.item() if hasattr(c, "item") else c for c in classes],
                "predict_fn": predict_fn,
                "input_kinds": dict(kinds),
                **dict(metadata_ or {}),
            }
        },
    }
    if example is not None:
        split = _example(example, kinds)
        (path / "input_example.json").write_text(json.dumps(split))
        (path / "serving_input_example.json").write_text(json.dumps({"dataframe_split": split}, indent=2))
        mlmodel["saved_input_example_info"] = {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
            "type": "dataframe",
        }

    reqs = requirements()
    (path / "requirements.txt").write_text("\n".join(reqs))
    pip = _version("pip")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={_python_version()}", f"pip<={pip}" if pip else "pip", {"pip": reqs}],
        "name": "mlflow-env",
    }
    (path / "conda.yaml").write_text(yaml.safe_dump(conda, default_flow_style=False))
    setuptools = _version("setuptools")
    python_env = {
        "python": _python_version(),
        "build_dependencies": [
            f"pip=={pip}" if pip else "pip",
            f"setuptools=={setuptools}" if setuptools else "setuptools",
            "wheel",
        ],
        "dependencies": ["-r requirements.txt"],
    }
    (path / "python_env.yaml").write_text(
        yaml.safe_dump(python_env, default_flow_style=False, sort_keys=False)
    )
    mlmodel["model_size_bytes"] = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel, default_flow_style=False))
    return path


def manifest(path: Path) -> dict[str, Any]:
    """Every file of the directory at ``path`` (relative POSIX path -> sha256 and size)."""
    files: dict[str, Any] = {}
    for item in sorted(path.rglob("*")):
        if item.is_file():
            data = item.read_bytes()
            files[item.relative_to(path).as_posix()] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
    return {"format": MANIFEST_FORMAT, "files": files}


class _Store(Protocol):
    def fetch(self, artifact: Any) -> Path: ...


def restore_mlflow_model(store: _Store, record: Any, target: Path) -> Path:
    """Copy the MLflow model directory whose manifest artifact is ``record`` (the state's
    ``ModelVersion.mlflow_model``) from ``store`` into ``target``, verifying the manifest and
    every file against their sha256; returns ``target``. MlctlError when anything differs."""
    import shutil

    from mlctl.state.document import Artifact

    data = json.loads(store.fetch(record).read_bytes())  # the store verifies the manifest
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise MlctlError(f"{record.uri} is not an MLflow model manifest")
    stored = data.get("stored") or {}
    target.mkdir(parents=True, exist_ok=True)
    for rel, entry in (data.get("files") or {}).items():
        if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/") or rel not in stored:
            raise MlctlError(f"{record.uri}: bad file entry {str(rel)[:80]!r}")
        artifact = Artifact.model_validate(stored[rel])
        if artifact.sha256 != entry.get("sha256"):
            raise MlctlError(f"{record.uri}: {rel} does not match its manifest")
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.fetch(artifact), out)
    return target
