"""``plan --evaluate``: train each planned candidate now, so the review shows its metrics.

Contract: :func:`evaluate_plan` trains every ``train`` change of a plan whose version identity
is known, in a scratch area: it never reads or writes the state backend's lock, never changes
state, stages or endpoints. What it keeps goes to the environment's artifact store, keyed by
the version identity (the hash of the training spec plus the data fingerprints):

``candidates/<model>/<identity>.json``
    the manifest: metrics, the model artifact (uri, sha256, size), the training spec and
    data it was made from, the tracking run and each of the run's files (uri, sha256, size);
``<model>/<run_id>/model.joblib``
    the model itself, where :func:`~mlctl.engine.training.train_candidate` puts every model;
``candidates/<model>/<identity>/run/<file>``
    a copy of the run's files (run.json, signature.json, reference profile and sample,
    plots), so a machine that did not evaluate (CI applying after the merge) can restore the
    run record that serving and monitoring read.

An identity already in the store is not trained again (every push to a pull request re-plans;
only new candidates cost training). After the merge, ``apply`` calls :func:`reuse_candidate`
for the same identity: the manifest must describe exactly the spec and data being applied, and
the model artifact (and every restored run file) must match its sha256, or the candidate is
ignored and apply trains as usual. Gates are evaluated again at apply time against the
production version of that moment, so a candidate evaluated against an older production
cannot slip past ``max_regression``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.state.document import Artifact, GateResult, GitInfo, State, utcnow

if TYPE_CHECKING:
    from mlctl.engine.training import Candidate
    from mlctl.spec.loader import EnvSpec
    from mlctl.workspace import Workspace

MANIFEST_VERSION = 1
Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass
class Evaluation:
    """One evaluated candidate next to the production version it would replace."""

    model: str
    identity: str
    run_id: str
    metrics: dict[str, float]
    gates: list[GateResult]
    artifact: Artifact
    production_version: int | None = None
    production_metrics: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def gate_lines(self) -> list[str]:
        """``auc 0.912 (prod v5 0.905, +0.007) >= 0.9 pass``, one per gate."""
        lines = []
        for gate in self.gates:
            value = "n/a" if gate.value is None else f"{gate.value:.3f}"
            base = self.production_metrics.get(gate.metric)
            versus = ""
            if base is not None and self.production_version is not None:
                delta = f", {gate.value - base:+.3f}" if gate.value is not None else ""
                versus = f" (prod v{self.production_version} {base:.3f}{delta})"
            bar = f"{gate.op} {gate.threshold:.3g}"
            if gate.gate == "max_regression":
                bar += " (max_regression)"
            lines.append(f"{gate.metric} {value}{versus} {bar} {'pass' if gate.passed else 'FAIL'}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "gates": [g.model_dump(mode="json") for g in self.gates],
            "passed": self.passed,
            "artifact": self.artifact.model_dump(mode="json"),
            "production": {"version": self.production_version, "metrics": self.production_metrics}
            if self.production_version is not None
            else None,
            "cached": self.cached,
        }


# -- the store: manifests are plain files under a key -------------------------------------------


def _short(identity: str) -> str:
    return identity.split(":", 1)[-1]


def manifest_key(model: str, identity: str) -> str:
    """Where the manifest of ``model``'s candidate ``identity`` lives in the artifact store."""
    return f"candidates/{model}/{_short(identity)}.json"


def _put_bytes(store: Any, payload: bytes, key: str) -> Artifact:
    with tempfile.TemporaryDirectory(prefix="mlctl-candidate-") as tmp:
        path = Path(tmp) / "payload"
        path.write_bytes(payload)
        artifact: Artifact = store.put(path, key)
        return artifact


def read_manifest(store: Any, model: str, identity: str) -> dict[str, Any] | None:
    """The manifest of ``model``'s candidate ``identity``, or None if absent or unreadable."""
    raw: bytes | None = store.get_bytes(manifest_key(model, identity))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("identity") != identity or data.get("model") != model:
        return None
    return data


def _store_candidate(
    spec: EnvSpec,
    store: Any,
    runs_root: Path,
    model: str,
    identity: str,
    candidate: Candidate,
    extra: dict[str, Any],
) -> dict[str, Any]:
    run_dir = runs_root / candidate.run_id
    files: dict[str, Any] = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and not path.name.startswith(".tmp"):
            rel = path.relative_to(run_dir).as_posix()
            stored = store.put(path, f"candidates/{model}/{_short(identity)}/run/{rel}")
            files[rel] = stored.model_dump(mode="json")
    manifest = {
        "format_version": MANIFEST_VERSION,
        "model": model,
        "environment": spec.name,
        "identity": identity,
        "run_id": candidate.run_id,
        "metrics": candidate.metrics,
        "artifact": candidate.artifact.model_dump(mode="json"),
        "signature": candidate.signature,
        "run_files": files,
        "created_at": utcnow(),
        **extra,
    }
    _put_bytes(store, json.dumps(manifest, indent=2, sort_keys=True).encode(), manifest_key(model, identity))
    return manifest


def _runs_root(spec: EnvSpec) -> Path:
    from mlctl.providers import local_root

    return spec.repo / local_root(spec) / "runs" / spec.name


def _restore_run(store: Any, runs_root: Path, manifest: dict[str, Any]) -> bool:
    """Make sure the candidate's run directory exists locally (restored from the store,
    sha256-verified, when this machine did not evaluate). False when it cannot be."""
    import shutil

    run_dir = runs_root / str(manifest["run_id"])
    if (run_dir / "run.json").is_file():
        return True
    files = manifest.get("run_files") or {}
    if "run.json" not in files:
        return False
    staging = runs_root / f".restore-{manifest['run_id']}"
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


# -- apply side ------------------------------------------------------------------------------


def reuse_candidate(
    spec: EnvSpec,
    name: str,
    identity: str,
    *,
    store: Any,
    training: dict[str, Any],
    data: dict[str, str],
    production_metrics: dict[str, float] | None,
    progress: Progress = _quiet,
) -> Candidate | None:
    """The candidate ``plan --evaluate`` trained for ``identity``, ready to register, or None.

    None (and apply trains) unless the manifest names exactly this training spec and data,
    the model artifact verifies against its sha256 and the run record is present (or restored
    and verified). Gates are re-evaluated against ``production_metrics`` of now.
    """
    from mlctl.engine.training import Candidate
    from mlctl.ml.gates import evaluate_gates

    manifest = read_manifest(store, name, identity)
    if manifest is None:
        return None
    if manifest.get("training") != training or manifest.get("data") != data:
        progress("an evaluated candidate has this identity but another spec or data; training")
        return None
    try:
        artifact = Artifact.model_validate(manifest["artifact"])
    except (KeyError, ValueError):
        return None
    try:
        store.fetch(artifact)  # verifies the sha256 of the stored bytes
    except MlctlError as exc:
        progress(f"evaluated candidate not reused ({exc}); training instead")
        return None
    if not _restore_run(store, _runs_root(spec), manifest):
        progress("the evaluated candidate's run record could not be restored; training instead")
        return None
    model = spec.config.models[name]
    metrics = {k: float(v) for k, v in (manifest.get("metrics") or {}).items()}
    gates = evaluate_gates(metrics, model.gates, model.training.task, production_metrics)
    progress(f"reusing the candidate evaluated in run {manifest['run_id']} (sha256 verified, no training)")
    return Candidate(
        run_id=str(manifest["run_id"]),
        metrics=metrics,
        gates=gates,
        artifact=artifact,
        signature=manifest.get("signature") or {},
        notes=["reused the candidate trained by plan --evaluate"],
    )


# -- plan side -------------------------------------------------------------------------------


def _production(state: State | None, name: str) -> tuple[int | None, dict[str, float]]:
    registry = state.models.get(name) if state else None
    if registry is None:
        return None, {}
    number = registry.stages.get("production")
    holder = registry.get(number) if number is not None else None
    return (number, dict(holder.metrics)) if holder else (None, {})


def evaluate_plan(
    ws: Workspace,
    plan: Plan,
    state: State | None,
    *,
    git: GitInfo,
    actor: str,
    progress: Progress = _quiet,
) -> tuple[Plan, list[Evaluation]]:
    """Train the plan's candidates (or find them evaluated already) and annotate the plan.

    Returns a copy of ``plan`` whose ``train`` changes carry the candidate's metrics in
    ``after`` (``after.evaluation``: metrics, gates, production's metrics), a gate line per
    gate in ``details``, and a ``blocking`` entry per failed gate; plus the evaluations.
    Candidates whose data failed a check, or whose identity is unknown, are left as they are
    with a warning.
    """
    from mlctl.engine.training import train_candidate
    from mlctl.ml.gates import evaluate_gates
    from mlctl.plan.resources import desired_resources
    from mlctl.providers import artifact_store

    spec = ws.spec
    store = artifact_store(spec)
    runs_root = _runs_root(spec)
    desired = desired_resources(spec.config, spec.placeholders)
    changes: list[ResourceChange] = []
    warnings = list(plan.warnings)
    evaluations: list[Evaluation] = []
    for change in plan.resource_changes:
        if change.type != "model_version" or "train" not in change.actions:
            changes.append(change)
            continue
        name = change.name
        after = dict(change.after) if isinstance(change.after, dict) else {}
        identity = after.get("identity")
        d = desired.get(change.address)
        if not isinstance(identity, str) or identity == UNKNOWN or d is None:
            warnings.append(f"{name}: not evaluated (its data fingerprint is unknown; plan with refresh)")
            changes.append(change)
            continue
        failing = [b for c in plan.resource_changes if c.type == "dataset" for b in c.blocking]
        if failing:
            warnings.append(f"{name}: not evaluated: data checks would fail first")
            changes.append(change)
            continue
        datasets = [a.split(".", 1)[1] for a in d.depends_on if a.startswith("dataset.")]
        data = {ds: plan.data.get(ds) for ds in datasets}
        if any(v is None for v in data.values()):
            warnings.append(f"{name}: not evaluated (a dataset fingerprint is unknown)")
            changes.append(change)
            continue
        prod_version, prod_metrics = _production(state, name)
        model = spec.config.models[name]
        manifest = (
            None if plan.replace and change.address in plan.replace else read_manifest(store, name, identity)
        )
        if manifest is not None and store.health(Artifact.model_validate(manifest["artifact"])) != "ok":
            manifest = None
        if manifest is not None:
            progress(
                f"{name}: candidate {_short(identity)[:12]} already evaluated (run {manifest['run_id']})"
            )
            metrics = {k: float(v) for k, v in manifest["metrics"].items()}
            artifact = Artifact.model_validate(manifest["artifact"])
            run_id = str(manifest["run_id"])
            cached = True
        else:
            progress(f"{name}: training candidate {_short(identity)[:12]} in a scratch area")
            candidate = train_candidate(
                spec,
                name,
                store=store,
                runs_root=runs_root,
                data_fingerprints={k: str(v) for k, v in data.items()},
                production_metrics=prod_metrics or None,
                git=git,
                actor=actor,
                progress=_prefixed(progress, name),
            )
            _tag_run(runs_root, candidate.run_id, identity)
            _store_candidate(
                spec,
                store,
                runs_root,
                name,
                identity,
                candidate,
                {"training": d.spec, "data": data, "git_commit": git.commit, "actor": actor},
            )
            metrics, artifact, run_id, cached = candidate.metrics, candidate.artifact, candidate.run_id, False
        gates = evaluate_gates(metrics, model.gates, model.training.task, prod_metrics or None)
        evaluation = Evaluation(
            name, identity, run_id, metrics, gates, artifact, prod_version, prod_metrics, cached
        )
        evaluations.append(evaluation)
        after["metrics"] = metrics
        after["evaluation"] = evaluation.to_json()
        changes.append(
            change.model_copy(
                update={
                    "after": after,
                    "after_unknown": [k for k in change.after_unknown if k != "metrics"],
                    "details": change.details
                    + [f"evaluated candidate (run {run_id}{', cached' if cached else ''}):"]
                    + [f"  {line}" for line in evaluation.gate_lines()],
                    "blocking": change.blocking
                    + [
                        f"{name} candidate fails gate {g.gate}: {line}"
                        for g, line in zip(gates, evaluation.gate_lines(), strict=True)
                        if not g.passed
                    ],
                }
            )
        )
    return plan.model_copy(update={"resource_changes": changes, "warnings": warnings}), evaluations


def _prefixed(progress: Progress, name: str) -> Progress:
    def emit(message: str) -> None:
        progress(f"{name}: {message}")

    return emit


def _tag_run(runs_root: Path, run_id: str, identity: str) -> None:
    """Mark the tracking run as a ``plan --evaluate`` candidate (tags in run.json)."""
    from mlctl.ml.tracking import RunStore

    store = RunStore(runs_root)
    record = store.get_run(run_id)
    record.tags.update({"purpose": "plan-evaluate", "identity": identity})
    store._write(record)


__all__ = [
    "Evaluation",
    "evaluate_plan",
    "manifest_key",
    "read_manifest",
    "reuse_candidate",
]
