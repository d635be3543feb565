"""mlctl as a library: each operation takes a :class:`~mlctl.workspace.Workspace` (from
:func:`~mlctl.workspace.open_workspace`) and typed options, holds the environment's lock
itself for as long as it changes anything, and returns a typed result (see
:mod:`mlctl.operations.results`). Nothing here prints; the CLI renders the results.

    from pathlib import Path
    from mlctl import operations
    from mlctl.workspace import open_workspace

    ws = open_workspace(Path("."), "dev")
    if operations.plan(ws).has_changes:
        result = operations.apply(ws)
        for outcome in result.outcomes:
            print(outcome.address, outcome.status, outcome.message)

Errors that stop an operation before it changes anything are raised as
:class:`~mlctl.errors.MlctlError` (a held lock: :class:`~mlctl.errors.LockError` naming the
holder); failures of single actions after work was done are outcomes and diagnostics.
Importing this package is cheap: heavy dependencies load when an operation runs.
"""

from __future__ import annotations

from mlctl.operations.apply import ApplyOptions, apply
from mlctl.operations.materialize import MaterializeOptions, materialize
from mlctl.operations.migrate import migrate_state
from mlctl.operations.models import LoadedVersion, load_model
from mlctl.operations.monitor import MonitorOptions, monitor
from mlctl.operations.plan import PlanOptions, plan, plan_changed
from mlctl.operations.results import (
    ActionOutcome,
    ApplyResult,
    ChangedPlanResult,
    MaterializeResult,
    MigrateResult,
    PlanResult,
    RollbackResult,
    Status,
)
from mlctl.operations.rollback import RollbackOptions, rollback

__all__ = [
    "ActionOutcome",
    "ApplyOptions",
    "ApplyResult",
    "ChangedPlanResult",
    "LoadedVersion",
    "MaterializeOptions",
    "MaterializeResult",
    "MigrateResult",
    "MonitorOptions",
    "PlanOptions",
    "PlanResult",
    "RollbackOptions",
    "RollbackResult",
    "Status",
    "apply",
    "load_model",
    "materialize",
    "migrate_state",
    "monitor",
    "plan",
    "plan_changed",
    "rollback",
]
