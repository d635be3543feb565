"""Loading a model version for serving, and following the state as stages move.

Contract:

* :func:`load_version` loads a version only after its bytes match the sha256 recorded in
  state: it fetches through the environment's artifact store (which verifies), reads the
  bytes once, hashes *those* bytes again and loads them from memory, so a file swapped
  between check and load is never executed. A version with a compiled form
  (``ModelVersion.compiled``, :mod:`mlctl.ml.compiled`, verified bitwise against the
  pipeline when it was trained) is served from it: nothing is unpickled and scikit-learn is
  never imported (its pickle is not read, but is refused when its stored bytes no longer
  match, as cheaply as the store can tell: size and mtime, or the S3 object's metadata).
  Otherwise the pickle is loaded and the compiled fast path is built from it and checked
  against it on sample rows.
* A loaded version carries its signature (``signature.json`` of its training run, or one
  derived from the pipeline and the spec when the run files are gone), a
  :class:`~mlctl.ml.compiled.Predictor` (the compiled fast path when it reproduces the
  pipeline exactly on sample rows, otherwise the pipeline itself) and its registry record.
* :class:`StateFollower` owns "what is served now". A daemon thread polls the state
  (``stat`` of a local state file every ``poll_interval``; other backends are read every
  ``remote_interval``), and when the served stage's version changes, loads and verifies the
  new version on that thread and then replaces :attr:`StateFollower.current` with one
  assignment. A request reads ``current`` once and uses that object to the end, so requests
  in flight finish on the version they started with. A version that fails to load (missing,
  tampered, unreadable) is not served: the previous one stays and ``last_error`` says why.
  Recently served versions stay in memory (by sha256), so a rollback swaps without loading.
* When :attr:`StateFollower.endpoint` has a running rollout in state (``state.rollouts``),
  the follower also loads its candidate version and publishes :attr:`StateFollower.arms`
  (strategy, candidate weight in percent, candidate model) with one assignment; a changed
  weight is a new :class:`Arms` object, so no request sees half a change and none restarts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.ml.compiled import (
    CompileError,
    FastPredictor,
    PipelinePredictor,
    Predictor,
    compile_pipeline,
    differs,
    with_holes,
)
from mlctl.ml.compiled_artifact import load_compiled
from mlctl.providers import runs_root
from mlctl.providers.base import read_verified, refuse_unless_intact
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import ModelVersion, State

log = logging.getLogger("mlctl.serving")

__all__ = ["LoadedModel", "StateFollower", "load_version", "signature_for"]


@dataclass
class LoadedModel:
    """One verified, loaded model version, ready to predict."""

    name: str
    version: int
    stage: str
    record: ModelVersion
    signature: dict[str, Any]
    predictor: Predictor
    pipeline: Any
    risk_levels: dict[str, float]
    loaded_at: str
    load_seconds: float
    fast_path_note: str | None = None
    sha256: str = ""
    #: "compiled" (loaded from ``record.compiled``; ``pipeline`` is None) or "pickle"
    loaded_from: str = "pickle"

    # Read on every request: computed once per loaded version (the signature never changes).
    @cached_property
    def features(self) -> list[str]:
        return [i["name"] for i in self.signature["inputs"]]

    @cached_property
    def input_types(self) -> dict[str, str]:
        return {i["name"]: i["type"] for i in self.signature["inputs"]}

    @cached_property
    def entity_keys(self) -> list[str]:
        return list(self.signature.get("entity_keys") or [])

    @cached_property
    def classes(self) -> list[Any]:
        return list(self.signature.get("classes") or [])

    @cached_property
    def task(self) -> str:
        return str(self.signature.get("task") or "classification")

    @cached_property
    def _levels(self) -> list[tuple[str, float]]:
        return sorted(self.risk_levels.items(), key=lambda kv: -kv[1])

    def risk_level(self, probability: float | None) -> str | None:
        """The highest-threshold level whose threshold ``probability`` reaches; else "low"."""
        if probability is None or not self.risk_levels:
            return None
        for level, threshold in self._levels:
            if probability >= threshold:
                return level
        return "low"


def signature_for(spec: EnvSpec, model: str, record: ModelVersion, pipeline: Any) -> dict[str, Any]:
    """The version's stored signature (its run's files restored from the artifact store when
    it was trained on another machine), or one rebuilt from the pipeline and the spec."""
    if record.run_id:
        path = runs_root(spec) / record.run_id / "artifacts" / "signature.json"
        if not path.is_file():  # a pod, a fresh runner: the run's files live in the store
            from mlctl.providers import artifact_store
            from mlctl.providers.runfiles import restore_run

            with contextlib.suppress(MlctlError, OSError):
                restore_run(artifact_store(spec), runs_root(spec), model, record.run_id)
        try:
            signature = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(signature, dict) and isinstance(signature.get("inputs"), list):
                return signature
        except (OSError, ValueError):
            pass
    # Rebuild: the pipeline (or the compiled model) knows its columns; the spec (or the
    # training record) their types.
    if isinstance(pipeline, FastPredictor):
        names = list(pipeline.features)
    else:
        names = [str(c) for c in getattr(pipeline, "feature_names_in_", [])]
    env = spec.config
    training = record.training or {}
    refs = list(training.get("features") or [])
    types: dict[str, tuple[str, str]] = {}
    keys: list[str] = []
    for ref in refs:
        view_name, _, feature = str(ref).partition(":")
        view = env.feature_views.get(view_name)
        if view is None or feature not in view.features:
            continue
        types[feature] = (view.features[feature], str(ref))
        for entity in view.entities:
            key = env.entities[entity].join_key if entity in env.entities else None
            if key and key not in keys:
                keys.append(key)
    inputs = []
    for i, name in enumerate(names):
        ref_type, ref = types.get(name, ("float", refs[i] if i < len(refs) else name))
        inputs.append({"name": name, "type": ref_type, "feature": ref})
    if isinstance(pipeline, FastPredictor):
        n_classes = pipeline.n_classes if pipeline.classifier else 0
    else:
        estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
        n_classes = len(getattr(estimator, "classes_", []))
    return {
        "inputs": inputs,
        "entity_keys": keys,
        "target": training.get("target"),
        "task": "classification" if n_classes else "regression",
        "classes": list(range(n_classes)),
        "estimator": training.get("estimator"),
    }


def _sample_rows(
    spec: EnvSpec, record: ModelVersion, features: list[str], limit: int = 400
) -> list[list[Any]]:
    """Rows to check the fast path against: the run's reference sample, with some holes."""
    rows: list[list[Any]] = []
    if record.run_id:
        path = runs_root(spec) / record.run_id / "artifacts" / "reference_sample.parquet"
        if path.is_file():
            try:
                import pandas as pd

                frame = pd.read_parquet(path)
                if all(f in frame.columns for f in features):
                    frame = frame[features].head(limit)
                    rows = [
                        [None if _missing(v) else (v.item() if hasattr(v, "item") else v) for v in row]
                        for row in frame.astype(object).itertuples(index=False, name=None)
                    ]
            except Exception as error:
                log.debug("no reference sample: %s", error)
    if not rows:
        rows = [[0] * len(features), [1] * len(features)]
    return with_holes(rows)


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # NaN / NaT
    except (TypeError, ValueError):
        return False


def choose_predictor(
    pipeline: Any, features: list[str], rows: list[list[Any]]
) -> tuple[Predictor, str | None]:
    """The compiled predictor if it reproduces ``pipeline`` exactly on ``rows`` (as one batch,
    and the first and last rows one at a time, the ``/predict`` path), else the pipeline."""
    slow = PipelinePredictor(pipeline, features)
    try:
        fast = compile_pipeline(pipeline, features)
    except CompileError as error:
        return slow, f"fast path unavailable: {error}"
    difference = differs(fast, slow, rows)
    if difference is not None:
        return slow, f"fast path disabled: {difference} on sample rows"
    return fast, None


def load_version(
    spec: EnvSpec, model: str, record: ModelVersion, stage: str, *, verify_fast_path: bool = True
) -> LoadedModel:
    """Fetch, sha256-verify and prepare one version: its compiled form when it has one, else
    its pickle (see the module contract)."""
    from mlctl.providers import artifact_store

    started = time.perf_counter()
    artifact = record.artifact
    if artifact is None:
        raise MlctlError(f"{model} v{record.version} has no artifact")
    if record.compiled is not None:
        return _load_compiled(spec, model, record, stage, started)
    import joblib

    data = read_verified(artifact_store(spec), artifact)
    try:
        pipeline = joblib.load(io.BytesIO(data))
    except Exception as error:
        raise MlctlError(f"cannot load {artifact.uri}: {type(error).__name__}: {error}") from None
    _single_threaded(pipeline)
    signature = signature_for(spec, model, record, pipeline)
    features = [i["name"] for i in signature["inputs"]]
    note: str | None = None
    if verify_fast_path:
        predictor, note = choose_predictor(pipeline, features, _sample_rows(spec, record, features))
    else:
        predictor = PipelinePredictor(pipeline, features)
    if note:
        log.warning("%s v%s: %s", model, record.version, note)
    return _loaded(spec, model, record, stage, started, signature, predictor, pipeline=pipeline, note=note)


def _load_compiled(
    spec: EnvSpec, model: str, record: ModelVersion, stage: str, started: float
) -> LoadedModel:
    """The version served from its compiled form (numpy only), after its sha256 matched."""
    from mlctl.providers import artifact_store

    assert record.compiled is not None and record.artifact is not None
    store = artifact_store(spec)
    # The pickle is not read, but a version whose stored bytes were tampered with is not served.
    refuse_unless_intact(record.artifact, store.health(record.artifact))
    data = read_verified(store, record.compiled)
    try:
        predictor = load_compiled(data)
    except ValueError as error:
        raise MlctlError(f"cannot load {record.compiled.uri}: {error}") from None
    signature = signature_for(spec, model, record, predictor)
    if [i["name"] for i in signature["inputs"]] != predictor.features:
        raise MlctlError(f"{record.compiled.uri}: its features differ from the version's signature")
    return _loaded(spec, model, record, stage, started, signature, predictor, pipeline=None, note=None)


def _loaded(
    spec: EnvSpec,
    model: str,
    record: ModelVersion,
    stage: str,
    started: float,
    signature: dict[str, Any],
    predictor: Predictor,
    *,
    pipeline: Any,
    note: str | None,
) -> LoadedModel:
    """The :class:`LoadedModel` of a verified version (``pipeline`` None: loaded compiled)."""
    assert record.artifact is not None
    model_spec = spec.config.models.get(model)
    risk = dict(model_spec.serving.risk_levels) if model_spec is not None else {}
    return LoadedModel(
        name=model,
        version=record.version,
        stage=stage,
        record=record,
        signature=signature,
        predictor=predictor,
        pipeline=pipeline,
        risk_levels={k: float(v) for k, v in risk.items()},
        loaded_at=datetime.now(UTC).isoformat(),
        load_seconds=time.perf_counter() - started,
        fast_path_note=note,
        sha256=record.artifact.sha256,
        loaded_from="pickle" if pipeline is not None else "compiled",
    )


def _single_threaded(pipeline: Any) -> None:
    """Per-request prediction on one thread: joblib's dispatch costs more than it saves."""
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    if "n_jobs" in getattr(estimator, "get_params", dict)():
        with contextlib.suppress(ValueError, TypeError):
            estimator.set_params(n_jobs=1)


# -- following the state ----------------------------------------------------------------------


@dataclass(frozen=True)
class Arms:
    """A running rollout as serving sees it: the candidate and its share of traffic."""

    strategy: str
    weight: float  # percent of requests routed to the candidate (canary, ab)
    candidate: LoadedModel


@dataclass
class _Seen:
    key: tuple[Any, ...] | None = None
    serial: int | None = None


@dataclass
class Status:
    """What the follower last saw and did (for /ready, /model and the heartbeat)."""

    state_serial: int | None = None
    wanted_version: int | None = None
    last_check: float = 0.0
    last_error: str | None = None
    swaps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class StateFollower:
    """Serves the version ``stage`` of ``model`` holds in ``env``'s state, and follows it."""

    def __init__(
        self,
        repo: Path,
        env: str,
        model: str,
        stage: str = "production",
        *,
        poll_interval: float = 0.2,
        remote_interval: float = 2.0,  # a rollback reaches every replica within 5 s (issue 12)
        cache_size: int = 3,
        on_swap: Callable[[LoadedModel | None, LoadedModel | None], None] | None = None,
    ) -> None:
        from mlctl.workspace import open_workspace

        self.repo = Path(repo).resolve()
        self.env = env
        self.model = model
        self.stage = stage
        self.poll_interval = poll_interval
        self.remote_interval = remote_interval
        self.cache_size = cache_size
        self.on_swap = on_swap
        self.workspace = open_workspace(self.repo, env)
        if model not in self.workspace.spec.config.models:
            from mlctl.spec.names import not_defined

            raise not_defined("model", model, env, self.workspace.spec.config.models)
        if stage not in ("staging", "production"):
            raise MlctlError(f"stage must be staging or production, not '{stage}'")
        self.current: LoadedModel | None = None
        #: the endpoint whose rollout (``state.rollouts[endpoint]``) is followed; None: none
        self.endpoint: str | None = None
        self.arms: Arms | None = None
        self.status = Status()
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._seen = _Seen()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    @property
    def spec(self) -> EnvSpec:
        return self.workspace.spec

    def _state_key(self) -> tuple[Any, ...] | None:
        path = getattr(self.workspace.backend, "path", None)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return ("absent",)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self, force: bool = False) -> bool:
        """Look at the state once; load and swap if the stage moved. True when swapped."""
        with self._refresh_lock:
            self.status.last_check = time.time()
            key = self._state_key()
            if not force and key is not None and key == self._seen.key:
                return False
            try:
                state = self.workspace.backend.read()
            except MlctlError as error:
                self.status.last_error = str(error)
                return False
            self._seen.key = key
            swapped = self._follow(state)
            self._follow_rollout(state)
            return swapped

    def _follow_rollout(self, state: State | None) -> None:
        """Publish the running rollout of :attr:`endpoint` (see the module contract)."""
        rollouts = getattr(state, "rollouts", None) or {}
        record = rollouts.get(self.endpoint) if self.endpoint else None
        registry = state.models.get(self.model) if state is not None else None
        version = (
            registry.get(record.candidate_version)
            if record is not None
            and record.status == "running"
            and registry is not None
            and record.candidate_version is not None
            else None
        )
        if record is None or version is None or version.artifact is None:
            self.arms = None
            return
        arms = self.arms
        if arms is not None and arms.candidate.sha256 == version.artifact.sha256:
            if arms.weight != record.weight or arms.strategy != record.strategy:
                self.arms = Arms(record.strategy, float(record.weight), arms.candidate)
            return
        try:
            loaded = self._load(version)
        except MlctlError as error:
            self.status.last_error = f"cannot serve rollout candidate v{version.version}: {error}"
            log.error("%s", self.status.last_error)
            self.arms = None
            return
        self.arms = Arms(record.strategy, float(record.weight), loaded)
        log.info("%s rollout: candidate v%s at %s%%", self.model, version.version, record.weight)

    def _follow(self, state: State | None) -> bool:
        serial = state.serial if state is not None else None
        self.status.state_serial = serial
        registry = state.models.get(self.model) if state is not None else None
        number = registry.stages.get(self.stage) if registry is not None else None
        self.status.wanted_version = number
        current = self.current
        record = registry.get(number) if registry is not None and number is not None else None
        if number is None or record is None:
            if current is not None:
                self._swap(None, "stage is empty")
                return True
            self.status.last_error = None
            return False
        if (
            current is not None
            and current.version == number
            and record.artifact is not None
            and current.sha256 == record.artifact.sha256
        ):
            self.status.last_error = None
            return False
        self._reload_spec()
        try:
            loaded = self._load(record)
        except MlctlError as error:
            self.status.last_error = f"cannot serve v{number}: {error}"
            log.error("%s", self.status.last_error)
            return False
        self._swap(loaded, f"{self.stage} moved to v{number}")
        self.status.last_error = None
        return True

    def _reload_spec(self) -> None:
        from mlctl.spec.loader import load_environment

        try:
            self.workspace.spec = load_environment(self.repo, self.env)
        except MlctlError as error:  # a half-edited YAML: keep serving with the last good one
            log.warning("keeping the previous desired state: %s", str(error).splitlines()[0])

    def _load(self, record: ModelVersion) -> LoadedModel:
        sha = record.artifact.sha256 if record.artifact else ""
        cached = self._cache.get(sha)
        if cached is not None and cached.version == record.version:
            # Cached bytes were verified when loaded; the stored file must still be intact.
            from mlctl.providers import artifact_store

            assert record.artifact is not None
            served = record.compiled if cached.loaded_from == "compiled" else record.artifact
            assert served is not None
            refuse_unless_intact(served, artifact_store(self.spec).health(served))
            self._cache.move_to_end(sha)
            cached.record = record
            return cached
        loaded = load_version(self.spec, self.model, record, self.stage)
        self._cache[sha] = loaded
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return loaded

    def _swap(self, new: LoadedModel | None, reason: str) -> None:
        old = self.current
        self.current = new  # one reference assignment: requests see old or new, never a mix
        self.status.swaps += 1
        self.status.history.append(
            {
                "at": datetime.now(UTC).isoformat(),
                "from": old.version if old else None,
                "to": new.version if new else None,
                "reason": reason,
            }
        )
        del self.status.history[:-20]
        log.info(
            "%s %s: v%s -> v%s (%s)",
            self.model,
            self.stage,
            old.version if old else None,
            new.version if new else None,
            reason,
        )
        if self.on_swap is not None:
            try:
                self.on_swap(old, new)
            except Exception:
                log.exception("swap observer failed")

    # -- the polling thread ----------------------------------------------------------------

    def start(self) -> StateFollower:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlctl-follow-state", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        remote = getattr(self.workspace.backend, "path", None) is None
        interval = self.remote_interval if remote else self.poll_interval
        while not self._stop.wait(interval):
            try:
                self.refresh(force=remote)
            except Exception as error:
                self.status.last_error = f"{type(error).__name__}: {error}"
                log.exception("state refresh failed")
