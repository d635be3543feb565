"""The Plan: what apply would do, as data. Renderers and the executor both read it.

A plan is bound to the state it was made against (``lineage`` + ``serial``), to the desired
state (``spec_digest``) and to the data it fingerprinted (``data``). ``apply`` of a saved plan
refuses it as stale when any of those moved. Values only known after apply (a new version's
number, its metrics) are listed in ``after_unknown``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from mlctl.errors import Diagnostic, MlctlError, StalePlanError

PLAN_FORMAT_VERSION = "1.1"  # 1.1: warnings and policies are diagnostics (1.0 files still load)
UNKNOWN = "(known after apply)"

# Symbols in the order the text legend lists them.
SYMBOLS: dict[str, str] = {
    "create": "+",
    "update": "~",
    "replace": "-/+",
    "delete": "-",
    "check": "?",
    "train": "*",
    "promote": ">",
    "archive": "x",
    "deploy": "^",
    "rollback": "<",
    "materialize": "=",
}


def check_writable(path: Path) -> None:
    """MlctlError unless a file can be created or replaced at ``path`` (checked before planning,
    so a bad ``--out`` fails fast instead of after the plan is printed)."""
    if path.is_dir():
        raise MlctlError(f"cannot write the plan to {path}: it is a directory (give a file name)")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise MlctlError(f"cannot write the plan to {path}: {parent} is not a writable directory")


class ResourceChange(BaseModel):
    """One change to one address. ``actions`` is e.g. ``["update"]``, ``["train"]``,
    ``["create", "check"]``; ``before``/``after`` are normalized values (None when absent)."""

    address: str
    type: str
    name: str
    actions: list[str]
    before: Any = None
    after: Any = None
    after_unknown: list[str] = Field(default_factory=list)
    reason: str = ""
    details: list[str] = Field(default_factory=list, description="human lines: field diffs, gates")
    blocking: list[str] = Field(default_factory=list, description="why apply would fail here")

    @property
    def symbol(self) -> str:
        if "delete" in self.actions and "create" in self.actions:
            return SYMBOLS["replace"]
        return SYMBOLS.get(self.actions[0], "?")


def _legacy_diagnostic(value: Any) -> Any:
    """A warning or policy finding as plans saved before 1.1 stored it (a string; a policy
    ``{kind, message, file, line}``), as :class:`~mlctl.errors.Diagnostic` fields; else as is."""
    if isinstance(value, str):
        return {"summary": value, "severity": "warning"}
    if isinstance(value, dict) and "kind" in value and "message" in value and "summary" not in value:
        return {
            "summary": value["message"],
            "file": value.get("file"),
            "line": value.get("line"),
            "severity": "error" if value["kind"] == "deny" else "warning",
            "subject": "policy",
        }
    return value


class RolloutStep(BaseModel):
    """What the next ``mlctl rollout step`` (or ``monitor run``) would do to one endpoint's
    declared rollout, and why: read-only, computed by :func:`mlctl.operations.plan.plan` from
    the state and the prediction log (the planner cannot read the analysis: it lives above
    it). Apply never moves a rollout; it is shown beside the changes, never counted in them.

    ``verdict``: ``start``, ``wait``, ``advance``, ``promote``, ``abort``, ``hold`` (A/B), or
    None when nothing is to be done (``reason`` says why); ``weight`` is the candidate's
    share now and ``next_weight`` the share the verdict leads to (percent; None when no
    rollout runs or none starts). ``statistics`` are the analysis' (arms and tests)."""

    endpoint: str
    model: str
    strategy: str
    candidate_stage: str
    status: str | None = None
    stable_version: int | None = None
    candidate_version: int | None = None
    steps: list[float] = Field(default_factory=list)
    step: int | None = None
    weight: float | None = None
    next_weight: float | None = None
    verdict: str | None = None
    reason: str = ""
    statistics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @property
    def shown(self) -> bool:
        """Whether the human renderers show it: a running rollout, one to start, or an error
        (an idle declaration is in the JSON plan only)."""
        return self.status == "running" or self.verdict is not None or self.error is not None


class Plan(BaseModel):
    """Everything ``apply`` needs to make the desired state true, and nothing it must guess."""

    format_version: str = PLAN_FORMAT_VERSION
    mlctl_version: str = ""
    environment: str
    created_at: str
    lineage: str | None = None
    serial: int = 0
    spec_digest: str
    data: dict[str, str | None] = Field(default_factory=dict, description="dataset fingerprints")
    refresh: bool = True
    targets: list[str] = Field(default_factory=list)
    replace: list[str] = Field(default_factory=list)
    resource_changes: list[ResourceChange] = Field(default_factory=list)
    drift: list[ResourceChange] = Field(default_factory=list, description="found by refresh")
    warnings: list[Diagnostic] = Field(
        default_factory=list, description="warning diagnostics (the planner's, policies' warn)"
    )
    policies: list[Diagnostic] = Field(
        default_factory=list,
        description="policy findings: deny as error diagnostics (apply refuses), warn as warnings",
    )
    rollouts: list[RolloutStep] = Field(
        default_factory=list, description="declared rollouts and their next step (not applied)"
    )

    @field_validator("warnings", "policies", mode="before")
    @classmethod
    def _read_legacy(cls, value: Any) -> Any:
        return [_legacy_diagnostic(v) for v in value] if isinstance(value, list) else value

    @property
    def has_changes(self) -> bool:
        return bool(self.resource_changes)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Warnings, then policy denials: what the JSON plan lists under ``diagnostics``."""
        return [*self.warnings, *self.denials]

    @property
    def blocking(self) -> list[str]:
        """Reasons apply is known to fail (e.g. a stored candidate failing its gates, a policy's
        ``deny``: apply refuses a plan with policy denials)."""
        return [b for change in self.resource_changes for b in change.blocking] + [
            str(d) for d in self.denials
        ]

    @property
    def denials(self) -> list[Diagnostic]:
        """The policies' ``deny`` messages, error diagnostics (each blocks apply)."""
        return [p for p in self.policies if p.severity == "error"]

    def counts(self) -> Counter[str]:
        """How many changes carry each action (replace counted once as replace)."""
        counts: Counter[str] = Counter()
        for change in self.resource_changes:
            actions = list(dict.fromkeys(change.actions))  # ordered: the JSON summary is stable
            if "delete" in actions and "create" in actions:
                counts["replace"] += 1
                actions = [a for a in actions if a not in ("delete", "create")]
            for action in actions:
                counts[action] += 1
        return counts

    def summary(self) -> str:
        """Terraform-style summary line, with ML verbs after the CRUD counts."""
        if not self.has_changes:
            return "No changes. The environment matches the configuration."
        c = self.counts()
        text = (
            f"Plan: {c['create'] + c['replace']} to add, {c['update']} to change, "
            f"{c['delete'] + c['replace']} to destroy"
        )
        verbs = [
            f"{c[v]} to {v}"
            for v in ("check", "materialize", "train", "promote", "archive", "deploy")
            if c[v]
        ]
        return text + ("; " + ", ".join(verbs) if verbs else "") + "."

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

    def save(self, path: Path) -> None:
        """Write the plan as JSON (no secrets: specs hold ``${VAR}`` placeholders only).

        MlctlError when ``path`` cannot be written (a directory, no permission ...).
        """
        check_writable(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_json())
        except OSError as exc:
            raise MlctlError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: Path) -> Plan:
        """Read a saved plan; MlctlError when missing or not a plan file."""
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise MlctlError(f"plan file {path} not found") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise MlctlError(f"{path} is not an mlctl plan file: {first}") from None

    def check_fresh(
        self, *, lineage: str | None, serial: int, spec_digest: str, data: dict[str, str | None]
    ) -> None:
        """Raise StalePlanError unless state, desired state and data are as when planned."""
        if self.lineage is not None and lineage != self.lineage:
            raise StalePlanError(
                "saved plan is stale: it was made for a different state lineage; run mlctl plan again"
            )
        if serial != self.serial:
            raise StalePlanError(
                f"saved plan is stale: state serial is {serial}, the plan was made at serial "
                f"{self.serial}; run mlctl plan again"
            )
        if spec_digest != self.spec_digest:
            raise StalePlanError(
                "saved plan is stale: the environment's configuration changed since it was made; "
                "run mlctl plan again"
            )
        changed = sorted(k for k, v in self.data.items() if data.get(k) != v)
        if changed:
            raise StalePlanError(
                f"saved plan is stale: data changed since it was made ({', '.join(changed)}); "
                "run mlctl plan again"
            )
