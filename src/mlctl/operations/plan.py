"""``plan``: what apply would change in an environment, or in every environment a branch changed.

Contract: read-only. A plan never takes the lock, never writes state and never runs code the
YAML names; with ``evaluate`` it runs the data checks (failures become blockers) and trains
candidates in a scratch area, kept as evidence under the artifact store's ``evaluations/``
prefix (apply never reads it), never in the state. ``refresh`` reads data fingerprints,
artifacts and what is live first. With ``out`` the plan is saved there, bound to the state
and desired state it was made from; ``out`` is checked writable before planning so a bad path
fails fast. The repository's ``policies/*.rego`` are evaluated on the JSON plan
(:func:`check_policies`): ``deny`` messages are recorded as blockers (apply refuses the plan),
``warn`` messages join the warnings. Every declared rollout's next step is attached
(:func:`rollout_steps`): what ``mlctl rollout step`` would decide now, read-only, shown beside
the changes (apply never moves a rollout). Raises
:class:`~mlctl.errors.MlctlError` for what the user can fix (missing data, a bad pin, a broken
policy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.errors import Diagnostic, MlctlError
from mlctl.operations.results import ChangedPlanResult, PlanResult
from mlctl.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from mlctl.gitops.changed import ChangedEnvironments
    from mlctl.plan.model import Plan, RolloutStep
    from mlctl.plan.policy import PolicyContext
    from mlctl.state.document import State

#: Progress of ``evaluate`` training: ``(environment, message)``.
PlanProgress = Callable[[str, str], None]


@dataclass(frozen=True)
class PlanOptions:
    """``targets``/``replace``: addresses, as Terraform's ``-target``/``-replace``.
    ``evaluate``: train each candidate now and show its metrics (needs ``refresh``)."""

    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh: bool = True
    evaluate: bool = False
    labels: tuple[str, ...] | None = None  # the pull request's labels, for policies (None: no PR)


def _check(options: PlanOptions) -> None:
    if options.evaluate and not options.refresh:
        raise MlctlError("--evaluate needs the data fingerprints: drop --no-refresh")


def _make(ws: Workspace, options: PlanOptions, progress: PlanProgress | None) -> PlanResult:
    from mlctl.engine.reality import ProviderReality
    from mlctl.plan.planner import make_plan

    state = ws.backend.read()
    reality = ProviderReality(ws.spec) if options.refresh else None
    made = make_plan(ws.spec, state, reality, targets=list(options.targets), replace=list(options.replace))
    made = made.model_copy(update={"rollouts": rollout_steps(ws, state, analyze=options.refresh)})
    if options.evaluate and made.has_changes:
        from mlctl.engine.evaluate import evaluate_plan
        from mlctl.gitops.git import current_actor, git_info

        def report(message: str) -> None:
            if progress is not None:
                progress(ws.env, message)

        made, _ = evaluate_plan(
            ws, made, state, git=git_info(ws.repo), actor=current_actor(ws.repo), progress=report
        )
    made = check_policies(ws, made, options.labels)
    return PlanResult(plan=made, diagnostics=list(made.warnings))


def rollout_steps(ws: Workspace, state: State | None, *, analyze: bool = True) -> list[RolloutStep]:
    """The next step of every rollout ``ws`` declares, from ``state`` (read once by the caller)
    and, when ``analyze``, the prediction log and delayed labels: the reading of
    :func:`mlctl.operations.rollout.status`, so the plan and ``rollout status`` cannot disagree.

    Computed here rather than by the planner: the analysis is :mod:`mlctl.monitor` (floor 8),
    which neither the planner (5) nor the engine's ``Reality`` (7) may import; the plan only
    carries and renders the result. Read-only: no lock, no write."""
    from mlctl.operations.rollout import as_step, preview

    return [as_step(ws, result, state) for result in preview(ws, state, analyze=analyze)]


def policy_context(ws: Workspace, labels: tuple[str, ...] | None) -> PolicyContext:
    """What policies see besides the plan: the PR's labels and every model's tags, gates, stages."""
    from mlctl.plan.policy import PolicyContext

    models = {
        name: {
            "tags": dict(model.tags or {}),
            "gates": model.gates.model_dump(mode="json", exclude_none=True),
            "stages": model.stages.model_dump(mode="json"),
        }
        for name, model in ws.spec.config.models.items()
    }
    return PolicyContext(labels=labels, models=models)


def check_policies(ws: Workspace, made: Plan, labels: tuple[str, ...] | None) -> Plan:
    """``made`` with the findings of ``<repo>/policies/*.rego`` recorded (denials block apply,
    warnings join the plan's warnings); ``made`` unchanged when the repository has no policies.
    :class:`~mlctl.plan.policy.PolicyError` (one line, file:line) for a broken policy."""
    from mlctl.plan.policy import evaluate_policies, policy_files
    from mlctl.plan.render import plan_json

    if not policy_files(ws.repo):
        return made
    findings = evaluate_policies(ws.repo, plan_json(made), policy_context(ws, labels))
    results = [f.diagnostic() for f in findings]
    warned = [r for r in results if r.severity == "warning"]
    return made.model_copy(update={"policies": results, "warnings": [*made.warnings, *warned]})


def plan(
    ws: Workspace,
    options: PlanOptions = PlanOptions(),
    *,
    out: str | Path | None = None,
    progress: PlanProgress | None = None,
) -> PlanResult:
    """Plan ``ws``; see the module contract."""
    _check(options)
    if out is not None:
        from mlctl.plan.model import check_writable

        check_writable(Path(out))
    result = _make(ws, options, progress)
    if out is not None:
        result.plan.save(Path(out))
    return result


def plan_changed(
    repo: Path,
    options: PlanOptions = PlanOptions(),
    *,
    base: str | None = None,
    out: str | Path | None = None,
    progress: PlanProgress | None = None,
    found: Callable[[ChangedEnvironments], None] | None = None,
) -> ChangedPlanResult:
    """Plan every environment of ``repo`` whose files changed since the merge base with
    ``base`` (see :func:`mlctl.gitops.changed.changed_environments`); ``found`` hears which
    ones before planning starts. ``out`` is a directory: one ``ENV.json`` per environment.
    ``targets``/``replace`` name addresses of one environment and are refused here.

    The pull request is untrusted: an environment whose backend or providers name a server
    (endpoint, tracking URI, bucket, region, profile, context) that the same environment at the
    merge base does not declare, and that ``$MLCTL_TRUSTED_ENDPOINTS`` does not list, is not
    planned (nothing is sent to that server) and gets an error diagnostic instead
    (:mod:`mlctl.gitops.endpoints`); the other environments are planned as usual. Not checked
    in a GitHub Actions run that is not for a pull request (:func:`~mlctl.operations.ci.reviewed_run`:
    apply.yml's ``changed`` job, on merged YAML)."""
    _check(options)
    if options.targets or options.replace:
        raise MlctlError("--target/--replace name addresses of one environment: use -e ENV, not --changed")
    from mlctl.gitops.changed import changed_environments
    from mlctl.gitops.endpoints import not_planned, unreviewed_endpoints
    from mlctl.operations.ci import reviewed_run, trusted_endpoints

    changes = changed_environments(repo, base)
    if found is not None:
        found(changes)
    results = []
    held: list[Diagnostic] = []
    check = not reviewed_run()
    for name in changes.environments:
        ws = open_workspace(repo, name)
        unreviewed = (
            unreviewed_endpoints(ws.spec, changes.merge_base, trusted=trusted_endpoints()) if check else []
        )
        if unreviewed:  # never contact a server the pull request itself chose (security.md)
            held.append(not_planned(name, unreviewed))
            continue
        results.append(_make(ws, options, progress))
    plans = [r.plan for r in results]
    if out is not None:
        folder = Path(out)
        if folder.is_file():
            raise MlctlError(
                f"--out {out}: with --changed it names a directory (one ENV.json per environment)"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for made in plans:
            made.save(folder / f"{made.environment}.json")
    return ChangedPlanResult(
        changes=changes, plans=plans, diagnostics=[*held, *(d for r in results for d in r.diagnostics)]
    )
