"""Training as a Kubernetes Job (``providers: {training: <a k8s provider>}``).

Contract. :func:`is_remote` says whether an environment trains on Kubernetes. The candidate
store (:func:`~mlctl.engine.candidates.obtain`, called by apply holding the environment's
lock) calls :func:`train_in_job` where it would call
:func:`~mlctl.engine.training.train_candidate`; it returns the same unnumbered
:class:`~mlctl.engine.candidates.Candidate`, and numbering stays the executor's job.

Trust: apply generates a one-time random key for each Job it submits and puts it only in that
Job's spec (env ``MLCTL_RESULT_KEY``; the Kubernetes API, which the plan job cannot reach, is
the only place it is kept). The Job seals its result with an HMAC of that key
(:func:`~mlctl.engine.candidates.seal`); apply accepts a result only with that seal
(:func:`~mlctl.engine.candidates.verify_result`), so nothing written to the bucket by anyone
else (a pull request's plan job, a stale Job) is registered, and the gates run on the metrics
the Job measured.

The Job (:func:`~mlctl.providers.k8s_manifests.training_job_manifest`, named
``train-<model>-<12 hex of the version identity>``) runs the hidden ``mlctl train-job`` in the
provider's image: it trains in a scratch directory, stores the model and a copy of its run's
files in the environment's S3 artifact store, and writes the sealed candidate record (run id,
metrics, gates, artifact uri/sha256/size, signature, the training inputs and data
fingerprints it used) to the result URI
``s3://<bucket>/<prefix>/<env>/candidates/<model>/<identity>.json``. Apply waits for the Job's
``Complete``/``Failed`` condition (``MLCTL_TRAINING_TIMEOUT`` seconds, default 3600), then
accepts the result only if it is sealed with the Job's key, names exactly the training inputs
and data apply planned, the artifact's bytes match their sha256 (downloaded through the store)
and the run's files restore with matching sha256; gates are evaluated again against
production of now. Anything else is an :class:`~mlctl.errors.MlctlError` naming the Job, and
nothing is registered.

Reruns converge: a finished Job whose result verifies with the key in its spec is picked up
without a new Job (an apply that crashed while waiting); a Job still running is waited for
again; a failed Job, one without a key, or ``--replace``, deletes the old Job and submits a
new one with a new key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.engine.candidates import (
    Candidate,
    CandidateRequest,
    check_identity,
    manifest_key,
    read_manifest,
    store_candidate,
    verify_result,
)
from mlctl.errors import MlctlError
from mlctl.spec.models import K8sProvider
from mlctl.spec.names import not_defined

if TYPE_CHECKING:
    from mlctl.providers.base import ArtifactStore
    from mlctl.providers.k8s import K8sTraining, KubeClient
    from mlctl.providers.s3 import S3ArtifactStore
    from mlctl.spec.envspec import EnvSpec

DEFAULT_TIMEOUT = 3600.0
POLL_SECONDS = 2.0
#: The Job's environment variable holding the one-time key apply seals its result with.
RESULT_KEY_ENV = "MLCTL_RESULT_KEY"


def training_provider(spec: EnvSpec) -> K8sProvider | None:
    """The k8s provider ``providers.training`` names, or None when training is local."""
    config = spec.providers.get(spec.config.providers.training)
    return config if isinstance(config, K8sProvider) else None


def is_remote(spec: EnvSpec) -> bool:
    return training_provider(spec) is not None


def timeout_seconds() -> float:
    raw = os.environ.get("MLCTL_TRAINING_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise MlctlError(f"MLCTL_TRAINING_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise MlctlError("MLCTL_TRAINING_TIMEOUT must be positive")
    return value


def s3_store(spec: EnvSpec, store: ArtifactStore) -> S3ArtifactStore:
    """The environment's artifact store, which must be S3: the Job's output must be readable
    from wherever apply runs."""
    from mlctl.providers.s3 import S3ArtifactStore

    if not isinstance(store, S3ArtifactStore):
        raise MlctlError(
            f"training provider '{spec.config.providers.training}' runs a Kubernetes Job, whose "
            "model must reach apply through object storage: set providers.artifacts to an s3 "
            "provider (providers/<name>.yaml: {type: s3, bucket, ...})"
        )
    return store


def result_uri(store: S3ArtifactStore, model: str, identity: str) -> str:
    """Where the Job writes the candidate record of ``model``'s version ``identity``."""
    return f"s3://{store.bucket}/{store.object_key(manifest_key(model, identity))}"


def _job_state(job: dict[str, Any] | None) -> str:
    """absent | running | complete | failed"""
    if job is None:
        return "absent"
    for condition in (job.get("status", {}) or {}).get("conditions", []) or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "complete" if condition["type"] == "Complete" else "failed"
    return "running"


def job_result_key(job: dict[str, Any] | None) -> str | None:
    """The result key apply put in ``job``'s spec (read back through the Kubernetes API), or None."""
    if not job:
        return None
    template = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in template.get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == RESULT_KEY_ENV and variable.get("value"):
                return str(variable["value"])
    return None


def _pick_up(request: CandidateRequest, store: S3ArtifactStore, where: str, key: str) -> Candidate:
    """The candidate the Job recorded, sealed with ``key`` and verified; MlctlError (naming
    ``where``) otherwise."""
    name, identity = request.model, request.identity
    manifest = read_manifest(store, name, identity)
    uri = result_uri(store, name, identity)
    if manifest is None:
        raise MlctlError(f"{where} finished but left no readable result at {uri}")
    try:
        found = verify_result(request, manifest, key)
    except MlctlError as exc:
        raise MlctlError(f"{where}: result {uri} refused: {exc}; nothing was registered") from None
    sha = found.artifact.sha256[:12]
    candidate = dataclasses.replace(
        found,
        notes=[f"trained by {where}"],
        provenance=f"trained by {where}, result sealed with this apply's key",
    )
    request.progress(f"{where}: result verified (sealed with this apply's key, artifact sha256 {sha}…)")
    return candidate


def train_in_job(request: CandidateRequest, client: KubeClient | None = None) -> Candidate:
    """Train ``request``'s version as a Kubernetes Job; see the module contract. ``client``
    (a :class:`~mlctl.providers.k8s.KubeClient`) is for tests."""
    from mlctl.providers.k8s import K8sTraining, job_name

    spec, name, identity, progress = request.spec, request.model, request.identity, request.progress
    provider = training_provider(spec)
    if provider is None:
        raise MlctlError(f"providers.training '{spec.config.providers.training}' is not a k8s provider")
    store = s3_store(spec, request.store)
    runner = K8sTraining(spec, provider, client)
    job = job_name(name, identity)
    where = f"training job {provider.namespace}/{job}"

    existing = runner.client.get("Job", provider.namespace, job)
    state = _job_state(existing)
    key = job_result_key(existing)
    if state in ("complete", "running") and key is None:
        progress(f"{where} carries no result key (submitted by an older mlctl?); running it again")
        state = "stale"
    if state == "complete" and not request.replace and read_manifest(store, name, identity) is not None:
        assert key is not None
        progress(f"{where} already finished; picking up its result")
        try:
            return _pick_up(request, store, where, key)
        except MlctlError as exc:
            progress(f"{exc}; running the job again")
            state = "stale"
    if state != "running" or request.replace or key is None:
        if state != "absent":
            progress(f"deleting the earlier {where} ({state})")
            runner.client.delete("Job", provider.namespace, job)
            _wait_gone(runner, provider.namespace, job, where)
        store.delete(manifest_key(name, identity))
        key = secrets.token_hex(32)
        runner.submit(name, identity=identity, result_uri=result_uri(store, name, identity), result_key=key)
        progress(f"submitted {where} (image {provider.image}, with a one-time result key)")
    else:
        progress(f"{where} is already running; waiting for it")
    timeout = timeout_seconds()
    try:
        runner.wait(job, timeout=timeout, poll=POLL_SECONDS)
    except MlctlError as exc:
        hint = f" (see: kubectl logs -n {provider.namespace} job/{job})"
        raise MlctlError(f"{exc}{hint}; nothing was registered") from None
    return _pick_up(request, store, where, key)


def _wait_gone(runner: K8sTraining, namespace: str, job: str, where: str, timeout: float = 120.0) -> None:
    """A deleted Job lingers while its pods terminate (foreground deletion): wait it out."""
    deadline = time.monotonic() + timeout
    while runner.client.get("Job", namespace, job) is not None:
        if time.monotonic() > deadline:
            raise MlctlError(f"{where} was deleted but is still there after {timeout:.0f}s")
        time.sleep(min(POLL_SECONDS, 1.0))


# -- the Job's side ------------------------------------------------------------------------


def run_job(
    spec: EnvSpec,
    name: str,
    identity: str,
    result: str,
    *,
    store: ArtifactStore,
    result_key: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """What ``mlctl train-job`` does inside the Job's pod: train ``name``'s current spec in a
    scratch directory, store the model and its run's files in the S3 store, and write the
    candidate record, sealed with ``result_key`` (default: ``$MLCTL_RESULT_KEY``, which apply
    put in the Job), to ``result`` (which must be this version's result URI in that store).
    ``progress`` receives training's progress lines (the Job's log). Returns the record."""
    import shutil
    import tempfile

    from mlctl.engine.training import train_candidate
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.ml.tracking import RunStore
    from mlctl.plan.resources import desired_resources
    from mlctl.providers.datasets import dataset_fingerprint

    key = result_key if result_key is not None else os.environ.get(RESULT_KEY_ENV, "")
    if not key:
        raise MlctlError(
            f"train-job runs inside a training Job that apply submitted: ${RESULT_KEY_ENV} is not set"
        )
    check_identity(identity)
    s3 = s3_store(spec, store)
    if name not in spec.config.models:
        raise not_defined("model", name, spec.name)
    expected = result_uri(s3, name, identity)
    if result != expected:
        raise MlctlError(f"--result must be {expected} (this version's result in the artifact store)")
    desired = desired_resources(spec.config, spec.placeholders)[f"model_version.{name}"]
    data: dict[str, str] = {}
    for address in desired.depends_on:
        if not address.startswith("dataset."):
            continue
        dataset = address.split(".", 1)[1]
        found = dataset_fingerprint(spec, spec.config.datasets[dataset])
        if found is None:
            shown = spec.display(f"datasets.{dataset}.path", spec.config.datasets[dataset].path)
            raise MlctlError(f"dataset.{dataset}: {shown} not found")
        data[dataset] = found
    scratch = Path(tempfile.mkdtemp(prefix="mlctl-train-job-"))
    try:
        runs = scratch / "runs"
        request = CandidateRequest(
            spec=spec,
            model=name,
            identity=identity,
            store=s3,
            training=desired.spec,
            data=data,
            production_metrics=None,  # apply evaluates the gates again against production of now
            git=git_info(spec.repo),
            actor=current_actor(spec.repo),
            progress=progress or (lambda message: None),
            purpose="training-job",
        )
        candidate = train_candidate(request, runs)
        RunStore(runs).add_tags(
            candidate.run_id,
            {"identity": identity, "job": os.environ.get("HOSTNAME", "")},
        )
        manifest = store_candidate(
            request,
            candidate,
            runs,
            {"gates": [g.model_dump(mode="json") for g in candidate.gates], "trained_by": "training-job"},
            key=key,
        )
        return json.loads(json.dumps(manifest))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
