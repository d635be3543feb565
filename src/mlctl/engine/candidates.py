"""The candidate store: where the trained candidate of a planned model version comes from.

Trust boundary (docs/security.md): **apply registers only model bytes that it trained itself,
or that a training Job it launched sealed with a one-time key apply generated; nothing a pull
request's plan job writes is ever an input to apply.**

Contract: :func:`obtain` is the one entry point. Apply (holding the environment's lock) hands
it a :class:`CandidateRequest` (the version identity it planned, and the training spec and
data fingerprints that identity names) and gets back an unnumbered :class:`Candidate`, from:

1. a Kubernetes Job, when ``providers.training`` is a k8s provider
   (:mod:`mlctl.engine.remote_training`): apply generates a random key, puts it only in the
   Job it submits, and accepts the Job's result only if it carries an HMAC of that key
   (:func:`verify_result`);
2. otherwise local training (:func:`mlctl.engine.training.train_candidate`).

The gates are evaluated on metrics apply measured itself or took from a result sealed with
its key, against ``production_metrics`` of the request (production of now). Each candidate
says where it came from (:attr:`Candidate.provenance`), which apply prints. Numbering and
stage moves stay the executor's job: nothing here touches state.

Two prefixes of the environment's artifact store hold manifests, keyed by version identity:

``evaluations/<model>/<identity>.json`` (:data:`EVIDENCE_PREFIX`)
    what ``plan --evaluate`` trained for a pull request (model under
    ``evaluations/<model>/<run_id>/``): evidence for reviewers and a cache for the next push
    of the same pull request. **Apply never reads this prefix.**
``candidates/<model>/<identity>.json`` (:data:`RESULT_PREFIX`)
    the sealed result of a training Job (model under ``<model>/<run_id>/model.joblib``, a copy
    of the run's files under ``candidates/<model>/<identity>/run/<file>``), which apply reads
    only for a Job it submitted, with that Job's key.

Every name read from a manifest is validated before a path is built from it: the run id
(:func:`mlctl.ml.tracking.check_run_id`), each run file's relative path, the identity.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.providers import runs_root
from mlctl.state.document import Artifact, GateResult, GitInfo, utcnow

if TYPE_CHECKING:
    from mlctl.providers.base import ArtifactStore
    from mlctl.spec.envspec import EnvSpec

MANIFEST_VERSION = 1
#: the compiled model's file name, next to ``model.joblib`` (:mod:`mlctl.ml.compiled`)
COMPILED_FILE = "model.compiled.npz"
#: Where ``plan --evaluate`` keeps its candidates: evidence only, never read by apply.
EVIDENCE_PREFIX = "evaluations"
#: Where a training Job writes its sealed result for the apply that submitted it.
RESULT_PREFIX = "candidates"
SEAL_FIELD = "seal"
_IDENTITY = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """A :data:`Progress` that says nothing."""
    return None


@dataclass(frozen=True)
class CandidateRequest:
    """One model version to obtain: what apply planned for ``model_version.<model>``.

    ``identity`` is the version identity; ``training`` the normalized training inputs and
    ``data`` the fingerprint of each dataset it reads (what the identity hashes);
    ``production_metrics`` those of production now (None when there is none), for the gates.
    ``replace`` (``--replace``) submits a new training Job even when one finished.
    ``artifact_prefix`` is put before the model's store key (``evaluations/`` for
    ``plan --evaluate``); ``purpose`` tags the tracking run.
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
    artifact_prefix: str = ""
    purpose: str = "apply"


@dataclass
class Candidate:
    """A trained, evaluated version waiting for a number; ``provenance`` says who trained it
    and how apply knows (shown in apply's output)."""

    run_id: str
    metrics: dict[str, float]
    gates: list[GateResult]
    artifact: Artifact
    signature: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    provenance: str = ""
    #: the manifest of its MLflow model directory (mlctl.ml.mlflow_model); None when trained
    #: by an mlctl from before issue 13
    mlflow_model: Artifact | None = None
    #: its compiled numpy-only form (:mod:`mlctl.ml.compiled`), verified against the pipeline;
    #: None for estimators that are not compiled and candidates from before it existed
    compiled: Artifact | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


# -- names and keys ------------------------------------------------------------------------------


def check_identity(identity: object) -> str:
    """``identity`` when it is a version identity (``sha256:`` and 64 hex); MlctlError otherwise."""
    if not isinstance(identity, str) or _IDENTITY.fullmatch(identity) is None:
        raise MlctlError(f"{str(identity)[:80]!r} is not a version identity (sha256:<64 hex>)")
    return identity


def short_identity(identity: str) -> str:
    """The hex part of a version identity (``sha256:ab12…`` -> ``ab12…``)."""
    return identity.split(":", 1)[-1]


def manifest_key(model: str, identity: str, prefix: str = RESULT_PREFIX) -> str:
    """Where the manifest of ``model``'s candidate ``identity`` lives in the artifact store,
    under ``prefix`` (:data:`RESULT_PREFIX` or :data:`EVIDENCE_PREFIX`)."""
    return f"{prefix}/{model}/{short_identity(check_identity(identity))}.json"


def _safe_relative(rel: object) -> str:
    """A run file's relative path from a manifest, when it stays inside the run folder."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise MlctlError(f"run file {str(rel)[:80]!r} is not a relative path")
    parts = PurePosixPath(rel).parts
    if (
        rel.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or PurePosixPath(rel).as_posix() != rel
    ):
        raise MlctlError(f"run file {rel[:80]!r} must be a plain relative path inside the run")
    return rel


def read_manifest(
    store: ArtifactStore, model: str, identity: str, prefix: str = RESULT_PREFIX
) -> dict[str, Any] | None:
    """The manifest of ``model``'s candidate ``identity`` under ``prefix``, or None if absent,
    unreadable or naming another model or identity. Its content is not trusted by this."""
    raw = store.get_bytes(manifest_key(model, identity, prefix))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("identity") != identity or data.get("model") != model:
        return None
    return data


# -- the seal: an HMAC with a key only apply and the Job it launched know -------------------------


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != SEAL_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(manifest: dict[str, Any], key: str) -> str:
    """The seal of ``manifest`` (every field but the seal) under ``key``: ``hmac-sha256:<hex>``."""
    if not key:
        raise MlctlError("a result key is needed to seal a candidate")
    digest = hmac.new(key.encode(), _canonical(manifest), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


def is_sealed(manifest: dict[str, Any], key: str) -> bool:
    """Whether ``manifest`` carries the seal ``key`` makes of it (constant-time compare)."""
    found = manifest.get(SEAL_FIELD)
    return bool(key) and isinstance(found, str) and hmac.compare_digest(found, seal(manifest, key))


# -- writing -------------------------------------------------------------------------------------


def store_candidate(
    request: CandidateRequest,
    candidate: Candidate,
    runs: Path,
    extra: dict[str, Any] | None = None,
    *,
    prefix: str = RESULT_PREFIX,
    key: str | None = None,
) -> dict[str, Any]:
    """Keep ``candidate`` (trained for ``request``, its run under ``runs``) under ``prefix``: a
    copy of each of its run's files, then the manifest (written last, so a manifest always
    names files that exist), sealed with ``key`` when given. ``extra`` adds fields to the
    manifest. Returns the manifest."""
    store, model, identity = request.store, request.model, request.identity
    run_dir = runs / candidate.run_id
    base = f"{prefix}/{model}/{short_identity(check_identity(identity))}/run"
    files: dict[str, Any] = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp"):
            rel = path.relative_to(run_dir).as_posix()
            stored = store.put(path, f"{base}/{rel}")
            files[rel] = stored.model_dump(mode="json")
    manifest = {
        "format_version": MANIFEST_VERSION,
        "model": model,
        "environment": request.spec.name,
        "identity": identity,
        "run_id": candidate.run_id,
        "metrics": candidate.metrics,
        "artifact": candidate.artifact.model_dump(mode="json"),
        "mlflow_model": candidate.mlflow_model.model_dump(mode="json") if candidate.mlflow_model else None,
        "compiled": candidate.compiled.model_dump(mode="json") if candidate.compiled else None,
        "signature": candidate.signature,
        "run_files": files,
        "created_at": utcnow(),
        "training": request.training,
        "data": request.data,
        "git_commit": request.git.commit,
        "actor": request.actor,
        **(extra or {}),
    }
    if key is not None:
        manifest[SEAL_FIELD] = seal(manifest, key)
    store.put_bytes(
        json.dumps(manifest, indent=2, sort_keys=True).encode(), manifest_key(model, identity, prefix)
    )
    return manifest


# -- reading a sealed result ---------------------------------------------------------------------


def _stored_beside(request: CandidateRequest, record: object, suffix: str, what: str) -> Artifact | None:
    """An optional file the Job stored next to the model (None when the manifest names none):
    refused unless it is where the Job stores it (its URI ends with ``suffix``) and its stored
    bytes match the sha256 the manifest records."""
    if record is None:
        return None
    artifact = _artifact_of(record, f"its {what}")
    if not artifact.uri.endswith(suffix):
        raise MlctlError(f"its {what} {artifact.uri} is not where the Job stores it")
    request.store.fetch(artifact)  # verifies the sha256 of the stored bytes
    return artifact


def _artifact_of(record: object, what: str) -> Artifact:
    try:
        artifact = Artifact.model_validate(record)
    except ValueError:
        raise MlctlError(f"{what} is not a valid artifact record") from None
    if _SHA256.fullmatch(artifact.sha256) is None:
        raise MlctlError(f"{what} has no valid sha256")
    return artifact


def _restore_run(store: ArtifactStore, runs: Path, run_id: str, files: object) -> None:
    """Make sure run ``run_id`` exists under ``runs`` (restored from ``files``, each verified
    against its sha256, when this machine did not train it); MlctlError when it cannot be."""
    import shutil

    from mlctl.ml.tracking import RunRecord

    run_dir = runs / run_id
    if (run_dir / "run.json").is_file():
        return
    if not isinstance(files, dict) or "run.json" not in files:
        raise MlctlError("its run record is missing")
    records = {_safe_relative(rel): _artifact_of(rec, f"run file {rel}") for rel, rec in files.items()}
    staging = runs / f".restore-{run_id}"
    try:
        for rel, artifact in records.items():
            source = store.fetch(artifact)  # raises when tampered
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        # the record must name this run (its id decides where serving reads it)
        record = RunRecord.model_validate_json((staging / "run.json").read_bytes())
        if record.run_id != run_id:
            raise MlctlError(f"its run record names run {record.run_id}, not {run_id}")
        staging.replace(run_dir)
    except OSError as exc:
        raise MlctlError(f"its run record could not be restored ({exc.strerror or exc})") from None
    except ValueError:
        raise MlctlError("its run record is not a valid run.json") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def verify_result(request: CandidateRequest, manifest: dict[str, Any], key: str) -> Candidate:
    """The candidate a sealed training-Job result describes, ready to register; MlctlError
    saying why otherwise.

    Accepted only when the manifest carries the seal of ``key`` (the one apply generated for
    the Job), names exactly the request's model, identity, training inputs and data, its run
    id and file names are well formed, the model's bytes match their sha256 and the run record
    restores intact. Gates are evaluated on its sealed metrics against
    ``request.production_metrics``.
    """
    from mlctl.ml.gates import evaluate_gates
    from mlctl.ml.tracking import check_run_id

    if not is_sealed(manifest, key):
        raise MlctlError("it is not sealed with the key apply gave the Job")
    if manifest.get("model") != request.model or manifest.get("identity") != request.identity:
        raise MlctlError("it names another model version")
    if manifest.get("training") != request.training:
        raise MlctlError(
            "it was trained from other training inputs than this apply planned (is the Job's image "
            "built from the same commit, with the same mlctl and scikit-learn?)"
        )
    if manifest.get("data") != request.data:
        raise MlctlError(
            "it was trained on other data than this apply planned (did a dataset change meanwhile?)"
        )
    run_id = check_run_id(manifest.get("run_id"))
    artifact = _artifact_of(manifest.get("artifact"), "its model")
    if not artifact.uri.endswith(f"/{request.model}/{run_id}/model.joblib"):
        raise MlctlError(f"its model {artifact.uri} is not where the Job stores models")
    raw_metrics = manifest.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise MlctlError("it records no metrics")
    try:
        metrics = {str(k): float(v) for k, v in raw_metrics.items()}
    except (TypeError, ValueError):
        raise MlctlError("its metrics are not numbers") from None
    request.store.fetch(artifact)  # verifies the sha256 of the stored bytes
    where = f"/{request.model}/{run_id}/"
    mlflow_model = _stored_beside(
        request, manifest.get("mlflow_model"), where + "mlflow-model.json", "MLflow model"
    )
    compiled = _stored_beside(request, manifest.get("compiled"), where + COMPILED_FILE, "compiled model")
    _restore_run(request.store, runs_root(request.spec), run_id, manifest.get("run_files"))
    model = request.spec.config.models[request.model]
    gates = evaluate_gates(metrics, model.gates, model.training.task, request.production_metrics)
    signature = manifest.get("signature")
    return Candidate(
        run_id=run_id,
        metrics=metrics,
        gates=gates,
        artifact=artifact,
        signature=signature if isinstance(signature, dict) else {},
        mlflow_model=mlflow_model,
        compiled=compiled,
    )


# -- the entry point -----------------------------------------------------------------------------


def obtain(request: CandidateRequest) -> Candidate:
    """The candidate of ``request``: trained by a Kubernetes Job apply submits
    (``providers.training: <k8s>``), else trained here; see the module contract. Never
    reads what ``plan --evaluate`` kept."""
    from mlctl.engine import remote_training, training

    if remote_training.is_remote(request.spec):
        return remote_training.train_in_job(request)
    request.progress(
        "training here (apply never reuses what plan --evaluate kept: that is evidence for review)"
    )
    candidate = training.train_candidate(request, runs_root(request.spec))
    return replace(candidate, provenance="trained by this apply")


__all__ = [
    "COMPILED_FILE",
    "EVIDENCE_PREFIX",
    "RESULT_PREFIX",
    "Candidate",
    "CandidateRequest",
    "check_identity",
    "is_sealed",
    "manifest_key",
    "obtain",
    "read_manifest",
    "seal",
    "short_identity",
    "store_candidate",
    "verify_result",
]
