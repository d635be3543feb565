"""What operations return: typed results instead of printed lines.

Contract: every result carries ``diagnostics`` (:class:`~mlctl.errors.Diagnostic`, severity
``error`` or ``warning``); ``ok`` means no error among them. Work that changes the world one
action at a time (apply, materialize) also reports one :class:`ActionOutcome` per action with
its :class:`Status`. A failure that stops an operation before it changes anything is raised as
an :class:`~mlctl.errors.MlctlError` instead (a held lock, a stale plan, an unknown name).
Plain data: no rendering here (that is the CLI's job) and nothing heavy to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.engine.outcomes import ActionOutcome, OutcomeAddresses, Status
from mlctl.errors import Diagnostic
from mlctl.plan.model import Plan

if TYPE_CHECKING:
    from mlctl.gitops.changed import ChangedEnvironments

__all__ = [
    "ActionOutcome",
    "ApplyResult",
    "ChangedPlanResult",
    "MaterializeResult",
    "MigrateResult",
    "PlanResult",
    "Result",
    "RollbackResult",
    "Status",
]


@dataclass(kw_only=True)
class Result:
    """The diagnostics every result carries."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No error: the operation did everything it set out to do."""
        return not self.errors


@dataclass(kw_only=True)
class _Outcomes(OutcomeAddresses, Result):
    outcomes: list[ActionOutcome] = field(default_factory=list)


@dataclass(kw_only=True)
class PlanResult(Result):
    """One environment's plan; its warnings (e.g. a candidate ``--evaluate`` left alone) are
    also warning diagnostics."""

    plan: Plan

    @property
    def has_changes(self) -> bool:
        return self.plan.has_changes


@dataclass(kw_only=True)
class ChangedPlanResult(Result):
    """Plans of every environment changed since a git base, and why each one changed."""

    changes: ChangedEnvironments
    plans: list[Plan]

    @property
    def has_changes(self) -> bool:
        return any(p.has_changes for p in self.plans)


@dataclass(kw_only=True)
class ApplyResult(_Outcomes):
    """What an apply did: the plan it carried out, one outcome per action in plan order, the
    versions it trained, and an error diagnostic per failed action (``address: reason``).
    No outcomes when the plan had no changes (or the review declined it)."""

    environment: str
    plan: Plan
    trained: list[tuple[str, int]] = field(default_factory=list)


@dataclass(kw_only=True)
class RollbackResult(Result):
    """Production of ``model`` moved ``from_version`` -> ``to_version`` (state ``serial``),
    ``endpoints`` now serve it; ``written`` is the YAML file whose pin was rewritten (None when
    it already pinned that version, or write-back was off) and ``commit`` the sha of the
    commit made of it on ``branch`` (None without ``commit``)."""

    environment: str
    model: str
    from_version: int
    to_version: int
    endpoints: list[str]
    serial: int
    write_back: bool
    written: Path | None = None
    commit: str | None = None
    branch: str | None = None
    mirror: str | None = None  # what the MLflow mirror (providers.tracking) did, or why not


@dataclass(kw_only=True)
class MaterializeResult(_Outcomes):
    """One outcome per feature view, in the order asked; after a failure the views left are
    skipped. ``message`` of an ok outcome is what it wrote."""

    environment: str


@dataclass(kw_only=True)
class MigrateResult(Result):
    """The state ``lineage``/``serial`` of ``environment`` now in ``target``; ``migrated`` is
    False when ``target`` already held it (nothing was written)."""

    environment: str
    source: str
    target: str
    lineage: str
    serial: int
    migrated: bool
