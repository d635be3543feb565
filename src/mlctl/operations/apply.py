"""``apply``: make an environment match its configuration, or carry out a saved plan.

Contract: the operation takes the environment's lock itself and holds it from reading the
state to the last checkpoint; a held lock raises :class:`~mlctl.errors.LockError` naming the
holder, before anything is read. Under the lock it reads the state, then either plans afresh
(and lets ``review`` see the plan before anything changes: raising there cancels) or checks
that the saved plan is still fresh (same state lineage and serial, same desired state, same
data; else :class:`~mlctl.errors.StalePlanError`). The executor then checkpoints after every
action (see :mod:`mlctl.engine.apply`). In CI (``$CI`` true) a tree with uncommitted changes
to the desired state is refused unless ``allow_dirty``, since the recorded commit would not
reproduce it; so is a ``local`` state backend unless ``allow_local_state`` (the runner's disk
does not outlive the job, see :mod:`mlctl.operations.ci`). A plan that a policy of
``policies/*.rego`` denies (recorded in a saved plan, or found now) is refused with one line
before anything changes. Failed actions do not raise: they
are outcomes and error diagnostics of the returned :class:`~mlctl.operations.results.ApplyResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlctl.engine.events import Listener, quiet
from mlctl.errors import MlctlError
from mlctl.operations.ci import in_ci, require_lasting_state
from mlctl.operations.results import ApplyResult
from mlctl.plan.model import Plan
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace

#: Sees a fresh plan under the lock before it is carried out; raises to cancel.
Review = Callable[[Plan], None]


@dataclass(frozen=True)
class ApplyOptions:
    """``planfile``: a plan saved by ``plan(out=...)`` to carry out exactly (then ``targets``,
    ``replace`` and ``refresh`` belong to that plan and must be left empty/default)."""

    planfile: str | Path | None = None
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh: bool = True
    allow_dirty: bool = False
    allow_local_state: bool = False
    lock_timeout: float = 0.0  # seconds to wait for a held state lock (0: fail at once naming the holder)
    labels: tuple[str, ...] | None = None  # the pull request's labels, for policies (None: no PR)


def _refuse_denials(ws: Workspace, planned: Plan, labels: tuple[str, ...] | None) -> Plan:
    """``planned`` with the repository's policies evaluated on it now (a saved plan's recorded
    findings kept too); MlctlError, one line, when any policy denies it."""
    from mlctl.operations.plan import check_policies

    checked = check_policies(ws, planned.model_copy(update={"policies": []}), labels)
    denials = list(dict.fromkeys(str(d) for d in [*planned.denials, *checked.denials]))
    if denials:
        raise MlctlError(
            f"refusing to apply: {len(denials)} policy denial{'s' if len(denials) != 1 else ''}: "
            + "; ".join(denials)
        )
    return planned if planned.policies else checked


def apply(
    ws: Workspace,
    options: ApplyOptions = ApplyOptions(),
    *,
    review: Review | None = None,
    listener: Listener = quiet,
    actor: str | None = None,
    git: GitInfo | None = None,
) -> ApplyResult:
    """Apply to ``ws``; see the module contract. ``listener`` hears each action start and end;
    ``actor`` and ``git`` default to who is acting and the repository's commit."""
    from mlctl.engine.apply import Executor
    from mlctl.engine.reality import ProviderReality
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.plan.planner import make_plan
    from mlctl.state.backend import locked
    from mlctl.state.document import State

    env = ws.env
    require_lasting_state(ws, "apply", allowed=options.allow_local_state)
    git = git or git_info(ws.repo)
    if git.dirty and not options.allow_dirty and in_ci():
        raise MlctlError(
            "refusing to apply in CI from a dirty tree: environments/ or providers/ have uncommitted "
            "changes, so the recorded commit would not reproduce what is applied (commit them, or "
            "pass --allow-dirty)"
        )
    if options.planfile is not None and (options.targets or options.replace):
        raise MlctlError("--target/--replace belong to the plan; they cannot change a saved plan")
    actor = actor or current_actor()
    with locked(ws.backend, "apply", env, timeout=options.lock_timeout):
        state = ws.backend.read()
        reality = ProviderReality(ws.spec)
        if options.planfile is not None:
            planned = Plan.load(Path(options.planfile))
            if planned.environment != env:
                raise MlctlError(
                    f"{options.planfile} is a plan for environment '{planned.environment}', not '{env}'"
                )
            data = {
                name: reality.dataset_fingerprint(name, ws.spec.config.datasets[name])
                for name in planned.data
                if name in ws.spec.config.datasets
            }
            planned.check_fresh(
                lineage=state.lineage if state else None,
                serial=state.serial if state else 0,
                spec_digest=ws.spec.digest,
                data=data,
            )
        else:
            planned = make_plan(
                ws.spec,
                state,
                reality if options.refresh else None,
                targets=list(options.targets),
                replace=list(options.replace),
            )
        planned = _refuse_denials(ws, planned, options.labels)
        if options.planfile is None and review is not None:
            review(planned)
        if not planned.has_changes:
            return ApplyResult(environment=env, plan=planned)
        executor = Executor(ws, state or State(environment=env), git=git, actor=actor, listener=listener)
        done = executor.apply(planned)
    return ApplyResult(
        environment=env,
        plan=planned,
        outcomes=done.outcomes,
        diagnostics=done.diagnostics,
        trained=done.trained,
    )
