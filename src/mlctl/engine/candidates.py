"""The candidate store: where the trained candidate of a planned model version comes from.

Contract: :func:`obtain` is the one entry point. Apply (holding the environment's lock) hands
it a :class:`CandidateRequest` (the version identity it planned, and the training spec and
data fingerprints that identity names) and gets back an unnumbered :class:`Candidate`, from
the first of:

1. the store (skipped with ``replace``): a candidate kept under the identity, by
   ``plan --evaluate`` (:mod:`mlctl.engine.evaluate`) or by an earlier training Job, whose
   manifest names exactly this training spec and data and whose model artifact and run files
   match their sha256 (:func:`look_up`);
2. a Kubernetes Job, when ``providers.training`` is a k8s provider
   (:mod:`mlctl.engine.remote_training`);
3. local training (:func:`mlctl.engine.training.train_candidate`).

Gates are evaluated again against ``production_metrics`` of the request (production of now),
so a candidate evaluated against an older production cannot slip past ``max_regression``.
Numbering and stage moves stay the executor's job: nothing here touches state.

What the store keeps lives in the environment's artifact store, keyed by the version identity
(the hash of the training spec plus the data fingerprints):

``candidates/<model>/<identity>.json``
    the manifest: metrics, the model artifact (uri, sha256, size), the training spec and
    data it was made from, the tracking run and each of the run's files (uri, sha256, size);
``<model>/<run_id>/model.joblib``
    the model itself, where :func:`~mlctl.engine.training.train_candidate` puts every model;
``candidates/<model>/<identity>/run/<file>``
    a copy of the run's files (run.json, signature.json, reference profile and sample,
    plots), so a machine that did not train (CI applying after the merge) can restore the
    run record that serving and monitoring read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.providers import runs_root
from mlctl.state.document import Artifact, GateResult, GitInfo, utcnow

if TYPE_CHECKING:
    from mlctl.providers.base import ArtifactStore
    from mlctl.spec.envspec import EnvSpec

MANIFEST_VERSION = 1
Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """A :data:`Progress` that says nothing."""
    return None


@dataclass(frozen=True)
class CandidateRequest:
    """One model version to obtain: what apply planned for ``model_version.<model>``.

    ``identity`` is the version identity; ``training`` the normalized training spec and
    ``data`` the fingerprint of each dataset it reads (what the identity hashes);
    ``production_metrics`` those of production now (None when there is none), for the gates.
    ``replace`` (``--replace``) ignores what the store holds and trains again.
    """

    spec: EnvSpec
    model: str
    identity: str
    store: ArtifactStore
    training: dict[str, Any]
    data: dict[str, str]
    production_metrics: dict[str, float] | None
    git: GitInfo
    actor: str
    replace: bool = False
    progress: Progress = quiet


@dataclass
class Candidate:
    """A trained, evaluated version waiting for a number."""

    run_id: str
    metrics: dict[str, float]
    gates: list[GateResult]
    artifact: Artifact
    signature: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True)
class Lookup:
    """What the store holds for a request: a verified candidate, or why the one it holds
    cannot be used (``refused``); both None when it holds none."""

    candidate: Candidate | None = None
    refused: str | None = None


# -- the manifests: plain objects under a key ---------------------------------------------------


def short_identity(identity: str) -> str:
    """The hex part of a version identity (``sha256:ab12…`` -> ``ab12…``)."""
    return identity.split(":", 1)[-1]


def manifest_key(model: str, identity: str) -> str:
    """Where the manifest of ``model``'s candidate ``identity`` lives in the artifact store."""
    return f"candidates/{model}/{short_identity(identity)}.json"


def read_manifest(store: ArtifactStore, model: str, identity: str) -> dict[str, Any] | None:
    """The manifest of ``model``'s candidate ``identity``, or None if absent or unreadable."""
    raw = store.get_bytes(manifest_key(model, identity))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("identity") != identity or data.get("model") != model:
        return None
    return data


def store_candidate(
    request: CandidateRequest, candidate: Candidate, runs: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keep ``candidate`` (trained for ``request``, its run under ``runs``) in the store: a copy
    of each of its run's files, then the manifest (written last, so a manifest always names
    files that exist). ``extra`` adds fields to the manifest. Returns the manifest."""
    store, model, identity = request.store, request.model, request.identity
    run_dir = runs / candidate.run_id
    files: dict[str, Any] = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp"):
            rel = path.relative_to(run_dir).as_posix()
            stored = store.put(path, f"candidates/{model}/{short_identity(identity)}/run/{rel}")
            files[rel] = stored.model_dump(mode="json")
    manifest = {
        "format_version": MANIFEST_VERSION,
        "model": model,
        "environment": request.spec.name,
        "identity": identity,
        "run_id": candidate.run_id,
        "metrics": candidate.metrics,
        "artifact": candidate.artifact.model_dump(mode="json"),
        "signature": candidate.signature,
        "run_files": files,
        "created_at": utcnow(),
        "training": request.training,
        "data": request.data,
        "git_commit": request.git.commit,
        "actor": request.actor,
        **(extra or {}),
    }
    store.put_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode(), manifest_key(model, identity))
    return manifest


def _restore_run(store: ArtifactStore, runs: Path, manifest: dict[str, Any]) -> bool:
    """Make sure the candidate's run directory exists locally (restored from the store,
    sha256-verified, when this machine did not train it). False when it cannot be."""
    import shutil

    run_dir = runs / str(manifest["run_id"])
    if (run_dir / "run.json").is_file():
        return True
    files = manifest.get("run_files") or {}
    if "run.json" not in files:
        return False
    staging = runs / f".restore-{manifest['run_id']}"
    try:
        for rel, record in files.items():
            source = store.fetch(Artifact.model_validate(record))  # raises when tampered
            target = (staging / rel).resolve()
            if not target.is_relative_to(staging.resolve()):
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        staging.replace(run_dir)
    except (MlctlError, OSError):
        return False
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return True


# -- the entry point -----------------------------------------------------------------------------


def look_up(request: CandidateRequest) -> Lookup:
    """The candidate the store holds for ``request``, verified and ready to register.

    Refused unless the manifest names exactly the request's training spec and data, the model
    artifact verifies against its sha256 and the run record is present (or restored and
    verified). Gates are evaluated again against ``request.production_metrics``.
    """
    from mlctl.ml.gates import evaluate_gates

    store, name = request.store, request.model
    manifest = read_manifest(store, name, request.identity)
    if manifest is None:
        return Lookup()
    if manifest.get("training") != request.training or manifest.get("data") != request.data:
        return Lookup(refused="its manifest names another training spec or other data")
    try:
        artifact = Artifact.model_validate(manifest["artifact"])
    except (KeyError, ValueError):
        return Lookup(refused="its manifest names no valid artifact")
    try:
        store.fetch(artifact)  # verifies the sha256 of the stored bytes
    except MlctlError as exc:
        return Lookup(refused=str(exc))
    if not _restore_run(store, runs_root(request.spec), manifest):
        return Lookup(refused="its run record could not be restored")
    model = request.spec.config.models[name]
    metrics = {k: float(v) for k, v in (manifest.get("metrics") or {}).items()}
    gates = evaluate_gates(metrics, model.gates, model.training.task, request.production_metrics)
    return Lookup(
        Candidate(
            run_id=str(manifest["run_id"]),
            metrics=metrics,
            gates=gates,
            artifact=artifact,
            signature=manifest.get("signature") or {},
            notes=["reused the candidate trained by plan --evaluate"],
        )
    )


def obtain(request: CandidateRequest) -> Candidate:
    """The candidate of ``request``: reused from the store, else trained by a Kubernetes Job
    (``providers.training: <k8s>``), else trained here; see the module contract."""
    from mlctl.engine import remote_training, training

    if not request.replace:
        found = look_up(request)
        candidate = found.candidate
        if candidate is not None:
            request.progress(
                f"reusing the candidate evaluated in run {candidate.run_id} (sha256 verified, no training)"
            )
            return candidate
        if found.refused is not None:
            request.progress(f"evaluated candidate not reused ({found.refused}); training instead")
    if remote_training.is_remote(request.spec):
        return remote_training.train_in_job(request)
    return training.train_candidate(request, runs_root(request.spec))


__all__ = [
    "Candidate",
    "CandidateRequest",
    "Lookup",
    "look_up",
    "manifest_key",
    "obtain",
    "read_manifest",
    "short_identity",
    "store_candidate",
]
