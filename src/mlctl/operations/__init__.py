"""mlctl as a library (floor 9): each operation takes a :class:`~mlctl.workspace.Workspace` (from
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

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlctl.operations.apply import ApplyOptions, apply
    from mlctl.operations.loading import LoadedVersion, load_model
    from mlctl.operations.materialize import MaterializeOptions, materialize
    from mlctl.operations.migrate import migrate_state
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

# public name -> the submodule defining it; each loads on first use, so `load_model` does not
# pay for the planner and the executor
_EXPORTS = {
    **dict.fromkeys(["ApplyOptions", "apply"], "apply"),
    **dict.fromkeys(["MaterializeOptions", "materialize"], "materialize"),
    "migrate_state": "migrate",
    **dict.fromkeys(["LoadedVersion", "load_model"], "loading"),
    **dict.fromkeys(["MonitorOptions", "monitor"], "monitor"),
    **dict.fromkeys(["PlanOptions", "plan", "plan_changed"], "plan"),
    **dict.fromkeys(
        [
            "ActionOutcome",
            "ApplyResult",
            "ChangedPlanResult",
            "MaterializeResult",
            "MigrateResult",
            "PlanResult",
            "RollbackResult",
            "Status",
        ],
        "results",
    ),
    **dict.fromkeys(["RollbackOptions", "rollback"], "rollback"),
}


def __getattr__(name: str) -> Any:
    """Load a public name from its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """Five operations share their name with the submodule defining them (``apply`` in
    ``operations/apply.py``). Importing a submodule binds it to the package's attribute of that
    name; this keeps the operation there instead, so ``operations.apply`` is always the function,
    whichever of ``mlctl.operations.apply`` and ``operations.apply`` was reached first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
