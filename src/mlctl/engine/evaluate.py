"""``plan --evaluate``: check the data and train each planned candidate now, so the review
shows what apply would reject and each candidate's metrics next to production's.

Contract: :func:`evaluate_plan` first runs the data checks of every dataset the plan checks
(the same checks, and the same gate between a failed check and training,
:func:`~mlctl.engine.apply.data_check_failure`, that apply uses) and lists each failure as a
blocker of its dataset change. Then it trains every ``train`` change whose identity is known
and whose data passes, in a scratch area: it never reads or writes the state backend's lock,
never changes state, stages or endpoints.

What it trains it keeps under the artifact store's ``evaluations/`` prefix
(:data:`~mlctl.engine.candidates.EVIDENCE_PREFIX`), keyed by the version identity: **evidence
for reviewers, never an input to apply**, which trains again (docs/security.md). An identity
already evaluated there is not trained again (every push to a pull request re-plans); such
cached evidence is shown as ``cached`` since anyone who may write the prefix could have
written it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlctl.engine.candidates import (
    EVIDENCE_PREFIX,
    CandidateRequest,
    Progress,
    quiet,
    read_manifest,
    short_identity,
    store_candidate,
)
from mlctl.errors import Diagnostic, MlctlError
from mlctl.plan.model import UNKNOWN, Plan, ResourceChange
from mlctl.providers import runs_root
from mlctl.state.document import Artifact, GateResult, GitInfo, State

if TYPE_CHECKING:
    from pathlib import Path

    from mlctl.providers.base import ArtifactStore
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


def check_data(ws: Workspace, plan: Plan) -> dict[str, list[str]]:
    """Run the checks of every dataset ``plan`` checks, as apply would; returns the failures
    by dataset name (one line per failed check; a dataset that cannot be read fails too)."""
    from mlctl.ml.datachecks import run_checks
    from mlctl.ml.tables import read_table
    from mlctl.providers.datasets import dataset_path

    spec = ws.spec
    failures: dict[str, list[str]] = {}
    for change in plan.resource_changes:
        if change.type != "dataset" or "check" not in change.actions:
            continue
        dataset = spec.config.datasets.get(change.name)
        if dataset is None:
            continue
        try:
            frame = read_table(
                dataset_path(spec, dataset), dataset.file_format, dataset.schema_ or None, dataset.timestamp
            )
        except MlctlError as exc:  # its text names the resolved path: not when that is a secret
            secret = f"datasets.{change.name}.path" in spec.placeholders
            failures[change.name] = [f"dataset {change.name} cannot be read" + ("" if secret else f": {exc}")]
            continue
        failed = [r for r in run_checks(frame, dataset) if not r.passed]
        if failed:
            failures[change.name] = [
                f"dataset {change.name} fails check {r.name}: {r.detail}" for r in failed
            ]
    return failures


def _with_check_results(plan: Plan, checked: set[str], failures: dict[str, list[str]]) -> Plan:
    changes = []
    for change in plan.resource_changes:
        if change.type == "dataset" and change.name in checked:
            found = failures.get(change.name, [])
            line = "checked by plan --evaluate: " + ("FAIL" if found else "all checks pass")
            change = change.model_copy(
                update={"details": [*change.details, line], "blocking": change.blocking + found}
            )
        changes.append(change)
    return plan.model_copy(update={"resource_changes": changes})


def _cached(
    store: ArtifactStore, name: str, identity: str, training: dict[str, Any], data: dict[str, str]
) -> dict[str, Any] | None:
    """The evaluation kept for ``identity``, when well formed, made from exactly ``training``
    and ``data``, and its model is intact (evidence only: see the module contract)."""
    from mlctl.ml.tracking import is_run_id

    manifest = read_manifest(store, name, identity, EVIDENCE_PREFIX)
    if manifest is None or not is_run_id(manifest.get("run_id")):
        return None
    if manifest.get("training") != training or manifest.get("data") != data:
        return None
    try:
        artifact = Artifact.model_validate(manifest.get("artifact"))
        metrics = {str(k): float(v) for k, v in (manifest.get("metrics") or {}).items()}
    except (ValueError, TypeError, AttributeError):
        return None
    if store.health(artifact) != "ok":
        return None
    return {"run_id": manifest["run_id"], "artifact": artifact, "metrics": metrics}


def evaluate_plan(
    ws: Workspace,
    plan: Plan,
    state: State | None,
    *,
    git: GitInfo,
    actor: str,
    progress: Progress = quiet,
) -> tuple[Plan, list[Evaluation]]:
    """Check the plan's data, train its candidates (or find them evaluated already) and
    annotate the plan.

    Returns a copy of ``plan`` whose checked dataset changes carry a ``blocking`` entry per
    failed check, whose ``train`` changes carry the candidate's metrics in ``after``
    (``after.evaluation``: metrics, gates, production's metrics), a gate line per gate in
    ``details``, and a ``blocking`` entry per failed gate; plus the evaluations. Candidates
    whose data fails a check (now, or at its last check when not checked now), or whose
    identity is unknown, are left as they are with a warning.
    """
    from mlctl.engine.apply import data_check_failure
    from mlctl.engine.training import train_candidate
    from mlctl.ml.gates import evaluate_gates
    from mlctl.plan.resources import desired_resources
    from mlctl.providers import artifact_store

    spec = ws.spec
    checked = {c.name for c in plan.resource_changes if c.type == "dataset" and "check" in c.actions}
    if checked:
        progress(f"checking data: {', '.join(sorted(checked))}")
    failures = check_data(ws, plan)
    plan = _with_check_results(plan, checked, failures)
    failed_now = {name: "; ".join(lines) for name, lines in failures.items()}
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
            unknown = "not evaluated (its data fingerprint is unknown; plan with refresh)"
            warnings.append(_skipped(change, unknown))
            changes.append(change)
            continue
        datasets = [a.split(".", 1)[1] for a in d.depends_on if a.startswith("dataset.")]
        blocked = data_check_failure(None, [ds for ds in datasets if ds in checked], failed_now)
        blocked = blocked or data_check_failure(state, [ds for ds in datasets if ds not in checked])
        if blocked:
            warnings.append(_skipped(change, f"not evaluated: apply would skip training ({blocked})"))
            changes.append(change)
            continue
        found = {ds: plan.data.get(ds) for ds in datasets}
        if any(v is None for v in found.values()):
            warnings.append(_skipped(change, "not evaluated (a dataset fingerprint is unknown)"))
            changes.append(change)
            continue
        data = {k: str(v) for k, v in found.items()}
        prod_version, prod_metrics = _production(state, name)
        model = spec.config.models[name]
        cached = (
            None
            if plan.replace and change.address in plan.replace
            else _cached(store, name, identity, d.spec, data)
        )
        if cached is not None:
            short = short_identity(identity)[:12]
            progress(f"{name}: candidate {short} already evaluated (run {cached['run_id']})")
            metrics, artifact, run_id = cached["metrics"], cached["artifact"], str(cached["run_id"])
            was_cached = True
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
                artifact_prefix=f"{EVIDENCE_PREFIX}/",
                purpose="plan-evaluate",
            )
            candidate = train_candidate(request, runs)
            _tag_run(runs, candidate.run_id, identity)
            store_candidate(request, candidate, runs, prefix=EVIDENCE_PREFIX)
            metrics, artifact, run_id, was_cached = (
                candidate.metrics,
                candidate.artifact,
                candidate.run_id,
                False,
            )
        gates = evaluate_gates(metrics, model.gates, model.training.task, prod_metrics or None)
        evaluation = Evaluation(
            name, identity, run_id, metrics, gates, artifact, prod_version, prod_metrics, was_cached
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
                    + [f"evaluated candidate (run {run_id}{', cached' if was_cached else ''}):"]
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


def _skipped(change: ResourceChange, why: str) -> Diagnostic:
    """The warning of a candidate left unevaluated (reads ``NAME: why``)."""
    return Diagnostic(f"{change.name}: {why}", severity="warning", address=change.address)


def _prefixed(progress: Progress, name: str) -> Progress:
    def emit(message: str) -> None:
        progress(f"{name}: {message}")

    return emit


def _tag_run(runs: Path, run_id: str, identity: str) -> None:
    """Mark the tracking run as a ``plan --evaluate`` candidate (tags in run.json)."""
    from mlctl.ml.tracking import RunStore

    RunStore(runs).add_tags(run_id, {"identity": identity})


__all__ = ["Evaluation", "check_data", "evaluate_plan"]
