"""Which version each stage should hold: one resolver shared by the planner and the executor.

Rules (DESIGN.md, "Stages"): ``staging: latest`` is the version the current training spec on the
current data defines, once it passes its gates; ``staging: N`` and ``production: N`` pin;
``production: staging`` follows staging; ``none`` empties the stage. Only versions that pass
their gates may enter a stage. A version taken out of production by a rollback is never put back
by ``latest``/``staging`` following; only a numeric pin (an explicit decision in git) does.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlctl.ml.gates import evaluate_gates
from mlctl.spec.models import Model
from mlctl.state.document import GateResult, ModelRegistry, ModelVersion


@dataclass(frozen=True)
class StageTarget:
    """Where a stage should point. ``pending`` means the candidate is trained by this apply."""

    version: int | None
    pending: bool = False
    blocked: str | None = None  # why the stage cannot move to what its pin asks for
    error: str | None = None  # the pin names something impossible (unknown/rejected version)
    warning: str | None = None


def gate_results(model: Model, version: ModelVersion, registry: ModelRegistry) -> list[GateResult]:
    """The model's *current* gates evaluated on ``version``'s stored metrics.

    Gates are re-evaluated rather than read from the version's recorded status, so changing
    a gate never needs retraining: a version rejected under old gates may pass new ones.
    """
    production = registry.stages.get("production")
    prod_metrics = None
    if production is not None and production != version.version:
        holder = registry.get(production)
        prod_metrics = holder.metrics if holder else None
    return evaluate_gates(version.metrics, model.gates, model.training.task, prod_metrics)


def passes(model: Model, version: ModelVersion, registry: ModelRegistry) -> tuple[bool, str]:
    """(whether ``version`` clears the current gates, text naming the failing ones)."""
    failed = [r for r in gate_results(model, version, registry) if not r.passed]
    text = ", ".join(
        f"{r.gate}: {r.metric} {'n/a' if r.value is None else f'{r.value:.4g}'} not {r.op} {r.threshold:.4g}"
        for r in failed
    )
    return (not failed, text)


def _pinned(model: Model, name: str, registry: ModelRegistry, number: int, stage: str) -> StageTarget:
    version = registry.get(number)
    if version is None:
        known = ", ".join(f"v{v.version}" for v in registry.versions) or "none yet"
        return StageTarget(
            registry.stages.get(stage),
            error=f"{stage}: {number} names a version of {name} that does not exist (known: {known})",
        )
    ok, failed = passes(model, version, registry)
    if not ok:
        return StageTarget(
            registry.stages.get(stage),
            error=f"{stage}: {number}: v{number} of {name} did not pass its gates ({failed or 'rejected'})",
        )
    warning = None
    if version.rolled_back:
        mark = version.rolled_back
        warning = (
            f"v{number} of {name} was rolled back at {mark.at} by {mark.by}"
            f"{f' ({mark.reason})' if mark.reason else ''}; the pin promotes it again"
        )
    return StageTarget(number, warning=warning)


def resolve(
    name: str,
    model: Model,
    registry: ModelRegistry,
    candidate: ModelVersion | None,
    candidate_pending: bool,
) -> dict[str, StageTarget]:
    """Targets for ``staging`` and ``production`` of one model.

    ``candidate`` is the registered version with the current identity (None if not trained yet);
    ``candidate_pending`` says this apply will train it (its number is known after apply).
    """
    staging_pin = model.stages.staging
    current_staging = registry.stages.get("staging")
    if staging_pin == "none":
        staging = StageTarget(None)
    elif isinstance(staging_pin, int):
        staging = _pinned(model, name, registry, staging_pin, "staging")
    elif candidate_pending:
        staging = StageTarget(None, pending=True)
    elif candidate is None:
        staging = StageTarget(current_staging)
    else:
        ok, failed = passes(model, candidate, registry)
        if not ok:
            staging = StageTarget(
                current_staging,
                blocked=f"candidate v{candidate.version} of {name} fails its gates ({failed or 'rejected'})",
            )
        elif candidate.rolled_back and candidate.version != current_staging:
            staging = StageTarget(
                current_staging,
                blocked=f"candidate v{candidate.version} of {name} was rolled back; pin it to promote it",
            )
        else:
            staging = StageTarget(candidate.version)

    production_pin = model.stages.production
    current_production = registry.stages.get("production")
    if production_pin == "none":
        production = StageTarget(None)
    elif isinstance(production_pin, int):
        production = _pinned(model, name, registry, production_pin, "production")
    elif staging.pending:
        production = StageTarget(None, pending=True)
    elif staging.version is None or staging.version == current_production:
        production = StageTarget(current_production if staging.version else None)
        if staging.version is None and current_production is not None and staging.blocked:
            production = StageTarget(current_production)
    else:
        follow = registry.get(staging.version)
        if follow is not None and follow.rolled_back:
            production = StageTarget(
                current_production,
                blocked=(
                    f"v{follow.version} of {name} was rolled back from production; "
                    f"pin production: {follow.version} to promote it again"
                ),
            )
        else:
            production = StageTarget(staging.version)
    return {"staging": staging, "production": production}
