"""Where a monitor's data comes from: the reference of the production version, the current
data (a dataset, a file given with ``--current``, or the prediction log), and delayed labels.

Contract: the reference of a version is what was saved with it at training time
(``reference_sample.parquet``, ``reference_profile.json`` and ``signature.json`` in its run's
artifacts); a model artifact is loaded only through the artifact store's ``fetch`` (sha256
verified). Problems a user can fix raise :class:`~mlctl.errors.MlctlError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.providers import artifact_store, runs_root
from mlctl.providers.datasets import dataset_path
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import DriftMonitor, duration_seconds
from mlctl.spec.names import not_defined
from mlctl.state.document import ModelVersion

if TYPE_CHECKING:
    import pandas as pd

    from mlctl.providers.predlog import LogStore


@dataclass
class Reference:
    """The production version's training-time reference."""

    version: ModelVersion
    sample: pd.DataFrame
    profile: dict[str, Any]
    signature: dict[str, Any]

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.signature.get("inputs", []))


def run_artifacts(spec: EnvSpec, run_id: str) -> Path:
    """The artifacts directory of training run ``run_id``."""
    return runs_root(spec) / run_id / "artifacts"


def load_reference(spec: EnvSpec, model: str, version: ModelVersion) -> Reference:
    """The reference saved with ``version`` at training time."""
    import pandas as pd

    if not version.run_id:
        raise MlctlError(f"{model} v{version.version} has no training run, so no reference profile")
    folder = run_artifacts(spec, version.run_id)
    needed = ("reference_sample.parquet", "reference_profile.json", "signature.json")
    if not all((folder / name).is_file() for name in needed):  # trained on another machine
        from mlctl.providers.runfiles import restore_run

        restore_run(artifact_store(spec), runs_root(spec), model, version.run_id)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise MlctlError(
            f"{model} v{version.version}: reference {', '.join(missing)} not found in {folder} "
            "(the training run's artifacts are needed to measure drift)"
        )
    return Reference(
        version=version,
        sample=pd.read_parquet(folder / "reference_sample.parquet"),
        profile=json.loads((folder / "reference_profile.json").read_text()),
        signature=json.loads((folder / "signature.json").read_text()),
    )


def load_model(spec: EnvSpec, version: ModelVersion) -> Any:
    """The version's fitted pipeline, loaded after its sha256 was verified."""
    import joblib

    if version.artifact is None:
        raise MlctlError(f"v{version.version} has no artifact")
    return joblib.load(artifact_store(spec).fetch(version.artifact))


def predict_scores(pipeline: Any, frame: pd.DataFrame, signature: dict[str, Any]) -> Any:
    """Positive-class probability (classifiers) or the prediction (regressors) per row."""
    import numpy as np

    columns = [i["name"] for i in signature.get("inputs", [])]
    X = frame[columns]
    from mlctl.ml.train import model_frame, needs_raw_frame

    if not needs_raw_frame(pipeline):  # the pipeline takes the typed frame (issue 13)
        X = model_frame(X, {i["name"]: i["type"] for i in signature.get("inputs", [])})
    if signature.get("task") == "classification" and hasattr(pipeline, "predict_proba"):
        return np.asarray(pipeline.predict_proba(X))[:, -1]
    return np.asarray(pipeline.predict(X), dtype="float64")


def window_start(window: str | None, now: datetime) -> datetime | None:
    """``now - window`` (None when no window is set)."""
    return now - timedelta(seconds=duration_seconds(window)) if window else None


def prediction_log(spec: EnvSpec, model: str, override: Path | None = None) -> LogStore:
    """The model's prediction log in this environment, wherever serving shipped it (the S3
    artifacts bucket, else the local directory), or the log directory ``override``."""
    from mlctl.providers.predlog import LocalLogStore, prediction_log_store

    if override is not None:
        return LocalLogStore(override, repo_relative(spec, override))
    return prediction_log_store(spec, model)


def read_prediction_log(
    source: LogStore | Path, since: datetime | None, until: datetime | None = None
) -> pd.DataFrame:
    """One row per prediction of the log ``source`` (see :mod:`mlctl.providers.predlog`)."""
    from mlctl.providers.predlog import read_predictions

    return read_predictions(source, since=since, until=until)


def read_request_log(
    source: LogStore | Path, since: datetime | None, until: datetime | None = None
) -> pd.DataFrame:
    """One row per request of the log ``source``: status and latency of each request."""
    from mlctl.providers.predlog import read_requests

    return read_requests(source, since=since, until=until)


def read_current_file(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file given with ``--current``."""
    from mlctl.ml.tables import read_table

    fmt = "parquet" if path.suffix in (".parquet", ".pq") else "csv"
    return read_table(path, fmt)  # type: ignore[arg-type]


def read_dataset(spec: EnvSpec, name: str, window: str | None) -> pd.DataFrame:
    """Dataset ``name``; with a window, only rows within it of the dataset's latest timestamp."""
    from mlctl.ml.tables import read_table

    if name not in spec.config.datasets:
        raise not_defined("dataset", name, spec.name)
    ds = spec.config.datasets[name]
    frame = read_table(dataset_path(spec, ds), ds.file_format, ds.schema_ or None, ds.timestamp)
    if window and ds.timestamp and len(frame):
        import pandas as pd

        stamps = pd.to_datetime(frame[ds.timestamp], utc=True)
        latest = stamps.max()
        frame = frame[stamps > latest - pd.Timedelta(seconds=duration_seconds(window))]
    return frame.reset_index(drop=True)


def utcnow_dt() -> datetime:
    return datetime.now(UTC)


DEFAULT_LOG_WINDOW = "1d"
"""Window over the prediction log when a monitor sets none."""


@dataclass
class Current:
    """The current data a check judges, where it came from, and whether it is the prediction log."""

    frame: Any  # pandas DataFrame
    source: str
    is_log: bool


def log_frame(spec: EnvSpec, model: str, window: str | None, now: datetime, override: Path | None) -> Current:
    """The prediction log of ``model`` (or the directory ``override``) over ``window``."""
    store = prediction_log(spec, model, override)
    window = window or DEFAULT_LOG_WINDOW
    since = window_start(window, now)
    frame = read_prediction_log(store, since=since)
    return Current(frame, f"prediction log {store.where} (last {window}, {len(frame):,} predictions)", True)


def repo_relative(spec: EnvSpec, path: Path) -> str:
    """``path`` relative to the repository (POSIX), or as given when outside it."""
    try:
        return Path(path).resolve().relative_to(spec.repo.resolve()).as_posix()
    except ValueError:
        return str(path)


def current_for_drift(spec: EnvSpec, monitor: DriftMonitor, now: datetime, override: Path | None) -> Current:
    """What a drift monitor compares with the reference: ``--current`` (a file or a log
    directory), else the prediction log or the dataset the monitor names."""
    if override is not None and override.is_dir():
        return log_frame(spec, monitor.model, monitor.window, now, override)
    if override is not None:
        frame = read_current_file(override)
        return Current(frame, f"{repo_relative(spec, override)} ({len(frame):,} rows)", False)
    if monitor.current == "predictions":
        return log_frame(spec, monitor.model, monitor.window, now, None)
    frame = read_dataset(spec, monitor.current, monitor.window)
    window = f", last {monitor.window}" if monitor.window else ""
    return Current(frame, f"dataset {monitor.current} ({len(frame):,} rows{window})", False)
