"""``monitor``: run an environment's monitors, record what they found, carry out their actions.

Contract: evaluation reads the state without the lock (read-only,
:func:`mlctl.monitor.evaluation.evaluate_monitors`). Then the operation takes the lock itself:
it reads the state again and records each monitor's result (breach streak, last status),
retraining triggers, and clears triggers whose version is live, in one write. With the lock
released, a fired monitor with ``rollback`` rolls its model back through
:func:`mlctl.operations.rollback` (which takes the lock again, with the monitor named as its
holder and as the reason, and rewrites the YAML pin). Alerts run last, so their payload lists
what the other actions did. A failed action is recorded in the result, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.errors import MlctlError
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace

if TYPE_CHECKING:
    from mlctl.monitor.results import ActionResult, MonitorResult
    from mlctl.monitor.run import RunResult


@dataclass(frozen=True)
class MonitorOptions:
    """``monitors``: names (default: every monitor that is due). ``current``: current data (a
    CSV/Parquet file for drift monitors, or a prediction log directory). ``now``: the time the
    run is for (default: now, UTC)."""

    monitors: tuple[str, ...] = ()
    current: Path | None = None
    now: datetime | None = None


def _rollback(ws: Workspace, result: MonitorResult, actor: str, git: GitInfo) -> ActionResult:
    from mlctl.monitor.actions import rollback_outcome
    from mlctl.monitor.results import ActionResult
    from mlctl.operations.rollback import RollbackOptions, rollback

    reason = f"auto-rollback by monitor {result.name}: {result.summary}"
    try:
        done = rollback(
            ws,
            result.model,
            RollbackOptions(reason=reason, write_back=True),
            actor=actor,
            git=git,
            operation=f"monitor {result.name}: rollback",
        )
    except MlctlError as exc:
        return ActionResult("rollback", False, str(exc))
    return rollback_outcome(ws.env, done.from_version, done.to_version, done.written, ws.repo)


def monitor(
    ws: Workspace,
    options: MonitorOptions = MonitorOptions(),
    *,
    actor: str | None = None,
    git: GitInfo | None = None,
) -> RunResult:
    """Run the monitors of ``ws``; see the module contract. The result's ``diagnostics`` are
    the monitors that could not be evaluated and the actions that failed."""
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.monitor import actions
    from mlctl.monitor.evaluation import evaluate_monitors, record
    from mlctl.plan.triggers import sweep_cleared
    from mlctl.state.backend import locked, persist
    from mlctl.state.document import State

    actor = actor or current_actor(ws.repo)
    git = git or git_info(ws.repo)
    names = list(options.monitors)
    run, not_due = evaluate_monitors(ws, names, current=options.current, now=options.now or datetime.now(UTC))
    config = ws.spec.config.monitors
    with locked(ws.backend, "monitor", ws.env):
        fresh = ws.backend.read() or State(environment=ws.env)
        for result in run.results:
            if result.name in not_due:
                continue
            record(fresh, result)
            if result.fired and "retrain" in config[result.name].actions:
                result.actions.append(actions.record_trigger(ws.spec, fresh, result, actor))
        for registry in fresh.models.values():
            sweep_cleared(registry)
        persist(ws.backend, fresh, git=git)

    for result in run.fired:
        if "rollback" in config[result.name].actions:
            result.actions.append(_rollback(ws, result, actor, git))
    for result in run.fired:
        if "alert" in config[result.name].actions:
            result.actions.insert(0, actions.alert(ws.env, result))
    return run
