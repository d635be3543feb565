"""``import``: adopt an existing MLflow model version into mlctl's state (Terraform's ``import``).

``mlctl import -e ENV model_version.NAME SOURCE`` where SOURCE is ``models:/NAME/3``,
``models:/NAME@production`` or a bare version number of the registered model ``NAME`` in the
environment's MLflow mirror (``providers.tracking``). A team moves over without retraining:

1. the MLflow version is resolved and its model directory downloaded; its ``MLmodel`` must have
   the ``sklearn`` flavor with a pickled model (the file mlctl serves, as it serves its own
   joblib artifacts);
2. those bytes are stored in the environment's artifact store; the sha256 computed here is the
   one state records, so from now on the version is loaded only if it matches;
3. one state write registers it as the next mlctl version of ``NAME``: metrics from the MLflow
   run, gates evaluated on them (``passed`` or ``rejected``), ``training.imported_from`` naming
   the source, no stage. Pin it (``stages.production: N``) to serve it; the plan then shows
   the promotion;
4. the MLflow version is tagged ``mlctl.version=N`` so the mirror treats it as mlctl's own.

Contract: takes the environment's lock; nothing is trained; anything a user can get wrong (an
address of another type or an undefined model, an unknown version, no mirror, a model without
the sklearn flavor, a source already imported) raises :class:`~mlctl.errors.MlctlError` before
the state changes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace

_SOURCE = re.compile(r"^(?:models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))|(?P<bare>\d+))$")


@dataclass(frozen=True)
class ImportResult:
    """``model`` v``version`` (state ``serial``) now holds MLflow ``source`` (version
    ``mlflow_version``): artifact ``uri`` with ``sha256``, gate verdict ``status``."""

    environment: str
    model: str
    version: int
    mlflow_version: int
    source: str
    uri: str
    sha256: str
    status: str
    failed_gates: list[str]
    serial: int


def parse_source(model: str, source: str) -> tuple[int | None, str | None]:
    """(version, alias) named by ``source`` for registered model ``model``."""
    match = _SOURCE.match(source.strip())
    if match is None:
        raise MlctlError(
            f"import source {source!r}: use models:/{model}/VERSION, models:/{model}@ALIAS or VERSION"
        )
    if match["bare"]:
        return int(match["bare"]), None
    if match["name"] != model:
        raise MlctlError(
            f"import source {source!r} names registered model '{match['name']}', not '{model}' "
            "(mlctl mirrors each model as the registered model of the same name)"
        )
    return (int(match["version"]), None) if match["version"] else (None, match["alias"])


def sklearn_model_file(folder: Path) -> Path:
    """The pickled scikit-learn model of the MLflow model directory ``folder``."""
    import yaml

    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise MlctlError("the MLflow model version has no MLmodel file (not an MLflow model)")
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}
    sklearn = flavors.get("sklearn")
    if not isinstance(sklearn, dict) or "pickled_model" not in sklearn:
        have = ", ".join(sorted(flavors)) or "none"
        raise MlctlError(
            f"the MLflow model has no sklearn flavor (flavors: {have}); mlctl serves scikit-learn models"
        )
    fmt = sklearn.get("serialization_format", "pickle")
    if fmt not in ("pickle", "cloudpickle"):
        raise MlctlError(f"the MLflow model is serialized as {fmt}; mlctl imports pickle or cloudpickle")
    name = str(sklearn["pickled_model"])
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        raise MlctlError(f"the MLflow model's pickled_model {name!r} is missing")
    return path


def import_version(
    ws: Workspace,
    address: str,
    source: str,
    *,
    actor: str | None = None,
    git: GitInfo | None = None,
    lock_timeout: float = 0.0,
) -> ImportResult:
    """Adopt MLflow ``source`` as a version of the model ``address`` names; see the module
    contract."""
    from mlctl.engine.mirror import (
        STAGE_TAG,
        VERSION_TAG,
        client_for,
        counterparts,
        download_version,
        scratch,
    )
    from mlctl.engine.rollback import require_model
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.plan.stage_targets import gate_results
    from mlctl.providers import artifact_store
    from mlctl.state.backend import locked, persist
    from mlctl.state.document import ModelVersion, State

    kind, _, model = address.partition(".")
    if kind != "model_version" or not model:
        raise MlctlError(f"import adopts a model_version.NAME address, not {address!r}")
    require_model(ws, model)
    client = client_for(ws.spec)
    if client is None:
        raise MlctlError(
            f"import reads MLflow: name an mlflow provider as providers.tracking in environments/{ws.env}"
        )
    number, alias = parse_source(model, source)
    found = client.get_version(model, number) if number is not None else client.version_by_alias(model, alias)
    if VERSION_TAG in found.tags:
        raise MlctlError(
            f"MLflow version {found.version} of {model} is already mlctl's v{found.tags[VERSION_TAG]}"
        )
    actor = actor or current_actor(ws.repo)
    git = git or git_info(ws.repo)
    folder = scratch()
    try:
        download_version(client, model, found.version, folder / "model")
        pickled = sklearn_model_file(folder / "model")
        sha256 = hashlib.sha256(pickled.read_bytes()).hexdigest()
        metrics: dict[str, float] = {}
        if found.run_id:
            run = client.request("GET", "/api/2.0/mlflow/runs/get", {"run_id": found.run_id})["run"]
            for metric in run.get("data", {}).get("metrics", []):
                metrics[str(metric["key"])] = float(metric["value"])
        with locked(ws.backend, "import", ws.env, timeout=lock_timeout):
            state = ws.backend.read() or State(environment=ws.env)
            registry = state.registry(model)
            identity = f"mlflow:{model}/{found.version}:{sha256[:16]}"
            if registry.by_identity(identity) is not None or any(
                v.training.get("imported_from") == f"models:/{model}/{found.version}"
                for v in registry.versions
            ):
                raise MlctlError(f"MLflow version {found.version} of {model} is already imported")
            if found.version in counterparts(client, model).values():
                raise MlctlError(f"MLflow version {found.version} of {model} is already mirrored by mlctl")
            version = registry.next_version
            artifact = artifact_store(ws.spec).put(pickled, f"{model}/mlflow-v{found.version}/{pickled.name}")
            if artifact.sha256 != sha256:
                raise MlctlError(f"the stored artifact {artifact.uri} does not match the downloaded bytes")
            record = ModelVersion(
                version=version,
                identity=identity,
                status="passed",
                metrics=metrics,
                artifact=artifact,
                run_id=None,
                training={"imported_from": f"models:/{model}/{found.version}", "source": found.source},
                git_commit=git.commit,
                created_by=actor,
            )
            record.gates = gate_results(ws.spec.config.models[model], record, registry)
            record.status = "passed" if all(g.passed for g in record.gates) else "rejected"
            registry.versions.append(record)
            registry.next_version += 1
            persist(ws.backend, state, git=git)
        client.set_version_tag(model, found.version, VERSION_TAG, str(version))
        client.set_version_tag(model, found.version, STAGE_TAG, record.stage)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ImportResult(
        environment=ws.env,
        model=model,
        version=version,
        mlflow_version=found.version,
        source=f"models:/{model}/{found.version}",
        uri=artifact.uri,
        sha256=sha256,
        status=record.status,
        failed_gates=record.failed_gates,
        serial=state.serial,
    )
