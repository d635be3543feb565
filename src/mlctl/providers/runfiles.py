"""A training run's files in the environment's artifact store, for the machines that did not
train: the runner that applied is gone when a scheduled monitor (another runner) needs the
version's reference sample, profile and signature.

Layout, next to the model (``<model>/<run_id>/model.joblib``)::

    <model>/<run_id>/run/<relative path>     every file of the run directory
    <model>/<run_id>/run/index.json          {relative path: {uri, sha256, size}}, written last

Contract: :func:`ship_run` uploads every file of a finished run and then the index, so an index
means every file it names is stored. :func:`restore_run` makes the run directory exist on this
machine: when it is not there, it reads the index, fetches every file through the store (which
verifies its sha256 against the index) into a staging directory and renames it into place, so
a run directory is whole or absent. Relative paths and the run id are validated before any path
is built from them. A local artifact store keeps runs on this disk already: both are no-ops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath

from mlctl.errors import MlctlError
from mlctl.ml.tracking import check_run_id
from mlctl.providers.base import ArtifactStore
from mlctl.providers.local import LocalArtifactStore
from mlctl.state.document import Artifact

INDEX = "index.json"


def run_key(model: str, run_id: str) -> str:
    """The store key (prefix) of ``run_id``'s files: ``<model>/<run_id>/run``."""
    return f"{model}/{check_run_id(run_id)}/run"


def ship_run(store: ArtifactStore, run_dir: Path, key: str) -> int:
    """Upload every file under ``run_dir`` to ``key/<rel>``, then ``key/index.json``; the
    number of files shipped (0 for a local store)."""
    if isinstance(store, LocalArtifactStore):
        return 0
    index: dict[str, object] = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir).as_posix()
        index[rel] = store.put(path, f"{key}/{rel}").model_dump(mode="json")
    store.put_bytes(json.dumps(index, indent=2, sort_keys=True).encode(), f"{key}/{INDEX}")
    return len(index)


def _safe(rel: str) -> str:
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or any(part in ("", ".", "..") for part in path.parts) or "\\" in rel:
        raise MlctlError(f"run file {rel[:80]!r} is not a plain relative path")
    return path.as_posix()


def restore_run(store: ArtifactStore, runs: Path, model: str, run_id: str) -> bool:
    """Make ``runs/<run_id>`` exist here, from the store when missing; see the module contract.
    False when the store holds no index for the run (trained before runs were shipped, or
    kept by a local store on another machine); MlctlError when a file fails its sha256."""
    run_dir = runs / check_run_id(run_id)
    if (run_dir / "run.json").is_file() or isinstance(store, LocalArtifactStore):
        return run_dir.is_dir()
    key = run_key(model, run_id)
    raw = store.get_bytes(f"{key}/{INDEX}")
    if raw is None:
        return False
    try:
        index = json.loads(raw)
        files = {_safe(str(rel)): Artifact.model_validate(record) for rel, record in index.items()}
    except (ValueError, AttributeError) as exc:
        raise MlctlError(f"the run index {key}/{INDEX} is not valid: {str(exc).splitlines()[0]}") from None
    staging = runs / f".restore-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for rel, artifact in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(store.fetch(artifact), target)  # fetch verifies the sha256
        try:
            staging.replace(run_dir)
        except OSError:
            if not (run_dir / "run.json").is_file():  # not a concurrent restore that won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True
