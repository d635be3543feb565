"""The MLflow mirror: make an MLflow tracking server and registry show what mlctl's state says.

mlctl's state is the source of truth; the mirror follows it. :func:`sync` is a reconciliation,
not a log of events, so it is idempotent and converges after a crash or an outage: every
registered version that has no MLflow counterpart gets a run (params, metrics, tags, data
fingerprints, the artifact and, when present, its MLflow model directory) and a version of the
registered model of the same name, tagged ``mlctl.version``; the ``staging`` and ``production``
aliases are moved to the counterparts of the state's stage holders (or removed); each version's
``mlctl.stage`` tag follows its stage (``archived`` when archived).

Contract: the caller holds the environment's lock and has persisted ``state``; sync never
writes state. It raises :class:`~mlctl.errors.MlctlError` when the server fails; callers turn
that into a diagnostic (apply) or a warning (rollback) -- the state change stands either way
and the next apply converges the mirror.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.providers.base import ArtifactStore
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import MlflowProvider
from mlctl.state.document import ModelRegistry, ModelVersion, State

VERSION_TAG = "mlctl.version"
STAGE_TAG = "mlctl.stage"
ALIASES = ("staging", "production")


def mirror_config(spec: EnvSpec) -> MlflowProvider | None:
    """The mlflow provider ``providers.tracking`` names, or None when there is no mirror."""
    name = spec.config.providers.tracking
    if name is None:
        return None
    config = spec.providers.get(name)
    if not isinstance(config, MlflowProvider):
        raise MlctlError(f"providers.tracking: provider '{name}' is not an mlflow provider")
    return config


def client_for(spec: EnvSpec) -> Any | None:
    """An :class:`~mlctl.providers.mlflow.MlflowClient` for the environment's mirror, or None."""
    config = mirror_config(spec)
    if config is None:
        return None
    from mlctl.providers.mlflow import MlflowClient

    return MlflowClient(config.tracking_uri)


def experiment_name(spec: EnvSpec) -> str:
    config = mirror_config(spec)
    return (config.experiment if config and config.experiment else None) or f"mlctl-{spec.name}"


@dataclass
class SyncResult:
    """What :func:`sync` changed in MLflow, one line each (empty: it already agreed)."""

    lines: list[str]

    def summary(self) -> str:
        return "; ".join(self.lines) if self.lines else "in sync"


def counterparts(client: Any, model: str) -> dict[int, int]:
    """mlctl version -> MLflow version of ``model`` (versions tagged ``mlctl.version``)."""
    found: dict[int, int] = {}
    for v in client.versions(model):
        tag = v.tags.get(VERSION_TAG)
        if tag is not None and tag.isdigit():
            found.setdefault(int(tag), v.version)
    return found


def mlctl_aliases(client: Any, model: str) -> dict[str, int | str | None] | None:
    """alias -> the mlctl version it points at (``"mlflow vN"`` for a version mlctl did not
    make) for ``staging`` and ``production``; None when the registered model does not exist."""
    aliases = client.aliases(model)
    if aliases is None:
        return None
    reverse = {mlflow_v: mlctl_v for mlctl_v, mlflow_v in counterparts(client, model).items()}
    shown: dict[str, int | str | None] = {}
    for alias in ALIASES:
        number = aliases.get(alias)
        shown[alias] = None if number is None else reverse.get(number, f"mlflow v{number}")
    return shown


def sync(spec: EnvSpec, state: State, store: ArtifactStore, *, client: Any | None = None) -> SyncResult:
    """Reconcile the mirror with ``state``; see the module contract."""
    client = client or client_for(spec)
    if client is None:
        return SyncResult([])
    lines: list[str] = []
    experiment: str | None = None
    for model, registry in state.models.items():
        if not registry.versions:
            continue
        client.ensure_registered_model(model)
        known = counterparts(client, model)
        for version in registry.versions:
            if version.version in known or version.artifact is None:
                continue
            if experiment is None:
                experiment = client.experiment_id(experiment_name(spec))
            known[version.version] = _register(spec, client, store, experiment, model, version)
            lines.append(f"{model} v{version.version} logged as MLflow version {known[version.version]}")
        lines += _tags(client, model, registry, known)
        lines += _aliases(client, model, registry, known)
    return SyncResult(lines)


def _params(version: ModelVersion) -> dict[str, str]:
    training = version.training.get("training", version.training)  # normalized: inputs nest it
    params = {f"{k}": str(v) for k, v in (training.get("params") or {}).items()}
    for key in ("estimator", "target", "labels", "test_size"):
        if key in training:
            params[f"mlctl.{key}"] = str(training[key])
    features = training.get("features")
    if features:
        params["mlctl.features"] = ",".join(str(f) for f in features)
    for dataset, fingerprint in version.data.items():
        params[f"data.{dataset}.fingerprint"] = fingerprint
    return params


def _register(
    spec: EnvSpec, client: Any, store: ArtifactStore, experiment: str, model: str, version: ModelVersion
) -> int:
    """Log ``version`` as a finished run and register it; the new MLflow version number."""
    assert version.artifact is not None
    tags = {
        "mlctl.model": model,
        VERSION_TAG: str(version.version),
        "mlctl.env": spec.name,
        "mlctl.identity": version.identity,
        "mlctl.status": version.status,
        "mlctl.sha256": version.artifact.sha256,
        "mlctl.artifact": version.artifact.uri,
    }
    if version.run_id:
        tags["mlctl.run_id"] = version.run_id
    if version.git_commit:
        tags["mlflow.source.git.commit"] = version.git_commit
    if version.created_by:
        tags["mlflow.user"] = version.created_by
    for dataset, fingerprint in version.data.items():
        tags[f"mlctl.data.{dataset}"] = fingerprint
    run_id, artifact_uri = client.create_run(experiment, f"{model}-v{version.version}", tags)
    metrics = {k: v for k, v in version.metrics.items() if isinstance(v, int | float)}
    client.log_batch(run_id, params=_params(version), metrics=metrics)
    local = store.fetch(version.artifact)  # verified against its sha256
    client.upload(artifact_uri, local, f"mlctl/{local.name}")
    source = f"{artifact_uri}/mlctl/{local.name}"
    bridge = None
    manifest = getattr(version, "mlflow_model", None)  # issue 13 item 1: stored with the version
    if manifest is not None:
        from mlctl.ml.mlflow_model import restore_mlflow_model

        bridge = model_dir = restore_mlflow_model(store, manifest, scratch() / "model")
    else:
        found = mlflow_model_dir(spec, local, version)
        if found is None:
            bridge = found = _bridge_model_dir(local, run_id)
        model_dir = found
    try:
        client.upload(artifact_uri, model_dir, "model")
    finally:
        if bridge is not None:
            import shutil

            shutil.rmtree(bridge.parent, ignore_errors=True)
    source = f"{artifact_uri}/model"
    runs = _run_artifacts(spec, version.run_id)
    if runs is not None:
        client.upload(artifact_uri, runs, "run")
    client.finish_run(run_id)
    version_tags = {
        VERSION_TAG: str(version.version),
        STAGE_TAG: version.stage,
        "mlctl.sha256": version.artifact.sha256,
    }
    return int(client.create_version(model, source, run_id, version_tags))


def mlflow_model_dir(spec: EnvSpec, artifact: Path, version: ModelVersion) -> Path | None:
    """The MLflow model directory (holding ``MLmodel``) stored with ``version``, if any.

    Looks next to the fetched artifact (``<artifact>.mlflow/``, ``mlflow_model/``, ``mlflow/``)
    and asks :mod:`mlctl.ml.mlflow_model` when it offers ``model_dir_for``.
    """
    for candidate in (
        artifact.with_name(artifact.name + ".mlflow"),
        artifact.parent / "mlflow_model",
        artifact.parent / "mlflow",
        artifact.parent / "model",
    ):
        if (candidate / "MLmodel").is_file():
            return candidate
    import importlib

    try:  # the writer of MLflow model directories (issue 13 item 1), when present
        mlflow_model = importlib.import_module("mlctl.ml.mlflow_model")
    except ImportError:
        return None
    finder = getattr(mlflow_model, "model_dir_for", None)
    if finder is None:
        return None
    found = finder(artifact)
    return Path(found) if found is not None and (Path(found) / "MLmodel").is_file() else None


def _bridge_model_dir(artifact: Path, run_id: str) -> Path:
    """A minimal MLflow model directory made from the sha256-verified joblib ``artifact``:
    the pipeline re-pickled as ``model.pkl`` with the ``sklearn`` and ``python_function``
    flavors, so ``mlflow.pyfunc.load_model("models:/NAME@production")`` loads it where mlctl
    is installed. Used only for versions without their own MLflow model directory (written
    before issue 13 item 1); the caller removes ``result.parent``."""
    import pickle
    import platform

    import joblib
    import sklearn
    import yaml

    folder = scratch() / "model"
    folder.mkdir()
    pipeline = joblib.load(artifact)
    with (folder / "model.pkl").open("wb") as out:
        pickle.dump(pipeline, out, protocol=pickle.DEFAULT_PROTOCOL)
    mlmodel = {
        "artifact_path": "model",
        "run_id": run_id,
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": platform.python_version(),
            },
            "sklearn": {
                "pickled_model": "model.pkl",
                "serialization_format": "pickle",
                "sklearn_version": sklearn.__version__,
                "code": None,
            },
        },
        "metadata": {"mlctl_bridge": "re-pickled from the mlctl joblib artifact; needs mlctl importable"},
    }
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    (folder / "requirements.txt").write_text(f"scikit-learn=={sklearn.__version__}\nmlctl\n")
    return folder


def _run_artifacts(spec: EnvSpec, run_id: str | None) -> Path | None:
    """The local run store's artifact folder of ``run_id`` when this machine has it."""
    if not run_id:
        return None
    from mlctl.ml.tracking import is_run_id
    from mlctl.providers import runs_root

    if not is_run_id(run_id):
        return None
    folder = runs_root(spec) / run_id / "artifacts"
    return folder if folder.is_dir() and any(folder.iterdir()) else None


def _tags(client: Any, model: str, registry: ModelRegistry, known: dict[int, int]) -> list[str]:
    lines = []
    current = {v.version: v.tags for v in client.versions(model)}
    for version in registry.versions:
        number = known.get(version.version)
        if number is None:
            continue
        if current.get(number, {}).get(STAGE_TAG) != version.stage:
            client.set_version_tag(model, number, STAGE_TAG, version.stage)
            if version.stage == "archived":
                lines.append(f"{model} v{version.version} tagged archived")
    return lines


def _aliases(client: Any, model: str, registry: ModelRegistry, known: dict[int, int]) -> list[str]:
    lines = []
    aliases = client.aliases(model) or {}
    for alias in ALIASES:
        holder = registry.stages.get(alias)
        want = known.get(holder) if holder is not None else None
        if aliases.get(alias) == want:
            continue
        if want is None:
            client.delete_alias(model, alias)
            lines.append(f"{model}@{alias} removed")
        else:
            client.set_alias(model, alias, want)
            lines.append(f"{model}@{alias} -> v{holder}")
    return lines


def download_version(client: Any, model: str, version: int, target: Path) -> Path:
    """Download MLflow version ``version`` of ``model`` into ``target`` (a fresh folder)."""
    uri = client.download_uri(model, version)
    return Path(client.download(uri, target))


def scratch() -> Path:
    """A fresh temporary folder (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix="mlctl-mlflow-"))
