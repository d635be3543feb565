"""``plan --evaluate``: train each planned candidate now, so the review shows its metrics.

Contract: :func:`evaluate_plan` trains every ``train`` change of a plan whose version identity
is known, in a scratch area: it never reads or writes the state backend's lock, never changes
state, stages or endpoints. What it trains it keeps in the candidate store
(:mod:`mlctl.engine.candidates`), keyed by the version identity, where apply finds it after
the merge (:func:`~mlctl.engine.candidates.obtain` reuses it after verifying its sha256).

An identity already in the store is not trained again (every push to a pull request re-plans;
only new candidates cost training).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlctl.engine.candidates import (
    CandidateRequest,
    Progress,
    quiet,
    read_manifest,
    short_identity,
    store_candidate,
)
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.providers import runs_root
from mlctl.state.document import Artifact, GateResult, GitInfo, State

if TYPE_CHECKING:
    from pathlib import Path

    from mlctl.workspace import Workspace


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
    progress: Progress = quiet,
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
    runs = runs_root(spec)
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
        found = {ds: plan.data.get(ds) for ds in datasets}
        if any(v is None for v in found.values()):
            warnings.append(f"{name}: not evaluated (a dataset fingerprint is unknown)")
            changes.append(change)
            continue
        data = {k: str(v) for k, v in found.items()}
        prod_version, prod_metrics = _production(state, name)
        model = spec.config.models[name]
        manifest = (
            None if plan.replace and change.address in plan.replace else read_manifest(store, name, identity)
        )
        if manifest is not None and store.health(Artifact.model_validate(manifest["artifact"])) != "ok":
            manifest = None
        if manifest is not None:
            short = short_identity(identity)[:12]
            progress(f"{name}: candidate {short} already evaluated (run {manifest['run_id']})")
            metrics = {k: float(v) for k, v in manifest["metrics"].items()}
            artifact = Artifact.model_validate(manifest["artifact"])
            run_id = str(manifest["run_id"])
            cached = True
        else:
            progress(f"{name}: training candidate {short_identity(identity)[:12]} in a scratch area")
            request = CandidateRequest(
                spec=spec,
                model=name,
                identity=identity,
                store=store,
                training=d.spec,
                data=data,
                production_metrics=prod_metrics or None,
                git=git,
                actor=actor,
                progress=_prefixed(progress, name),
            )
            candidate = train_candidate(request, runs)
            _tag_run(runs, candidate.run_id, identity)
            store_candidate(request, candidate, runs)
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


def _tag_run(runs: Path, run_id: str, identity: str) -> None:
    """Mark the tracking run as a ``plan --evaluate`` candidate (tags in run.json)."""
    from mlctl.ml.tracking import RunStore

    RunStore(runs).add_tags(run_id, {"purpose": "plan-evaluate", "identity": identity})


__all__ = ["Evaluation", "evaluate_plan"]
