"""The state document: what mlctl last made true in one environment.

One JSON document per environment. ``lineage`` is fixed when the state is created and
``serial`` grows by one on every write, so a saved plan can tell whether the state moved
under it. ``resources`` holds, per address, the spec last applied and what providers
returned; ``models`` is the registry (versions, stage holders, stage history). Values from
``${VAR}`` interpolation are never stored here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from mlctl.errors import MlctlError

FORMAT_VERSION = 1
_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE

VersionStatus = Literal["passed", "rejected"]
StageName = Literal["none", "staging", "production", "archived"]


def utcnow() -> str:
    """The current time as an ISO-8601 UTC string with seconds precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Doc(BaseModel):
    """Base of state nodes: tolerant of keys added by newer minor versions. A non-finite float
    (a metric that came out NaN) is written as the string ``"NaN"``/``"Infinity"``, which
    strict JSON readers accept and which reads back as the same float."""

    model_config = ConfigDict(extra="allow", ser_json_inf_nan="strings")


class GitInfo(Doc):
    """The commit the desired state was read from (None outside a git repository)."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool = False


class ResourceState(Doc):
    """One applied resource: its normalized spec and what providers reported for it."""

    type: str
    name: str
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    updated_at: str = Field(default_factory=utcnow)


class Artifact(Doc):
    """A stored artifact: where it is and the content hash it must match to be loaded."""

    uri: str
    sha256: str
    size: int
    mtime_ns: int | None = Field(None, description="local stores: mtime when stored (cheap refresh)")


class GateResult(Doc):
    """One gate evaluated against one version's metrics."""

    gate: str
    metric: str
    op: Literal[">=", "<="]
    threshold: float
    value: float | None
    passed: bool


class RollbackMark(Doc):
    """Set on a version taken out of production by a rollback, so apply won't re-promote it."""

    at: str
    by: str
    reason: str | None = None


class ModelVersion(Doc):
    """A registered version: identity, metrics, gate results, artifact and lineage."""

    version: int
    identity: str = Field(description="hash of the normalized training spec and data fingerprints")
    status: VersionStatus
    stage: StageName = "none"
    metrics: dict[str, float] = Field(default_factory=dict)
    gates: list[GateResult] = Field(default_factory=list)
    artifact: Artifact | None = None
    mlflow_model: Artifact | None = Field(
        None, description="manifest of its MLflow model directory (mlctl.ml.mlflow_model), next to artifact"
    )
    compiled: Artifact | None = Field(
        None,
        description="its compiled numpy-only form (mlctl.ml.compiled: an .npz loaded without unpickling),"
        " next to artifact; None: not compiled (not a tree model, or trained before) -- load the pickle",
    )
    run_id: str | None = None
    training: dict[str, Any] = Field(default_factory=dict, description="normalized training spec")
    data: dict[str, str] = Field(default_factory=dict, description="dataset -> fingerprint")
    data_rows: dict[str, int] = Field(default_factory=dict, description="dataset -> rows when trained")
    git_commit: str | None = None
    created_at: str = Field(default_factory=utcnow)
    created_by: str | None = None
    rolled_back: RollbackMark | None = None

    @property
    def failed_gates(self) -> list[str]:
        return [g.gate for g in self.gates if not g.passed]


class StageEvent(Doc):
    """One move of a stage: promote, archive, rollback or clear."""

    time: str = Field(default_factory=utcnow)
    stage: Literal["staging", "production"]
    action: Literal["promote", "archive", "rollback", "clear"]
    from_version: int | None = None
    to_version: int | None = None
    actor: str | None = None
    reason: str | None = None
    commit: str | None = None


TriggerKind = Literal["drift", "performance", "serving", "schedule", "new_data"]


class RetrainTrigger(Doc):
    """A reason to train again although the spec did not change (recorded by a monitor, or by
    apply for a scheduled retraining). Pending until a version is trained for it
    (``trained_version``); cleared once that version (or a later one) is live in production."""

    id: str
    kind: TriggerKind
    monitor: str | None = None
    reason: str
    created_at: str = Field(default_factory=utcnow)
    created_by: str | None = None
    trained_version: int | None = None
    cleared_at: str | None = None

    @property
    def pending(self) -> bool:
        return self.trained_version is None and self.cleared_at is None


class MonitorPoint(Doc):
    """One run of a monitor, kept for reports over time: its status, the production version
    it judged, its numeric ``metrics`` and each finding's statistic (drift: per feature)."""

    time: str
    status: str
    fired: bool = False
    version: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    findings: dict[str, float | None] = Field(default_factory=dict)
    breaches: list[str] = Field(default_factory=list, description="findings in breach")


#: runs kept per monitor in ``MonitorRecord.history`` (the oldest are dropped)
MONITOR_HISTORY = 200


class MonitorRecord(Doc):
    """What the last runs of one monitor found (``consecutive`` counts persisting breaches);
    ``history`` holds its last :data:`MONITOR_HISTORY` runs (optional: older states have none)."""

    consecutive_breaches: int = 0
    last_run_at: str | None = None
    last_status: str | None = None
    last_summary: str | None = None
    last_fired_at: str | None = None
    history: list[MonitorPoint] = Field(default_factory=list)


def _empty_stages() -> dict[str, int | None]:
    return {"staging": None, "production": None}


class ModelRegistry(Doc):
    """Every version of one model, the stage holders and the history of stage moves."""

    next_version: int = 1
    versions: list[ModelVersion] = Field(default_factory=list)
    stages: dict[str, int | None] = Field(default_factory=lambda: _empty_stages())
    history: list[StageEvent] = Field(default_factory=list)
    triggers: list[RetrainTrigger] = Field(default_factory=list)

    def get(self, version: int) -> ModelVersion | None:
        """The version numbered ``version``, or None."""
        for item in self.versions:
            if item.version == version:
                return item
        return None

    def by_identity(self, identity: str) -> ModelVersion | None:
        """The version with this identity (same spec on same data), or None."""
        for item in self.versions:
            if item.identity == identity:
                return item
        return None


class RolloutDecision(Doc):
    """One verdict of a rollout's analysis (or a person's promote/abort), with its statistics."""

    time: str = Field(default_factory=utcnow)
    step: int
    weight: float
    verdict: Literal["wait", "advance", "promote", "abort", "hold"]
    reason: str
    actor: str | None = None
    statistics: dict[str, Any] = Field(default_factory=dict)


class RolloutRecord(Doc):
    """The progress of one endpoint's rollout: which step (so which candidate weight) is
    live, between which versions, and every decision so far. Serving reads ``weight``."""

    strategy: Literal["canary", "shadow", "ab"] = "canary"
    candidate_stage: str = "staging"
    stable_version: int | None = None
    candidate_version: int | None = None
    step: int = 0
    weight: float = 0.0
    status: Literal["running", "promoted", "aborted"] = "running"
    started_at: str = Field(default_factory=utcnow)
    since: str = Field(default_factory=utcnow, description="when the current step began")
    reason: str | None = None
    decisions: list[RolloutDecision] = Field(default_factory=list)


class NewerStateError(MlctlError):
    """The stored state was written in a format newer than this mlctl understands."""


def _refuse_newer(version: object) -> None:
    """Raise :class:`NewerStateError` when ``version`` is newer than :data:`FORMAT_VERSION`."""
    if isinstance(version, int) and version > FORMAT_VERSION:
        from mlctl import __version__

        raise NewerStateError(
            f"state format_version {version} is newer than this mlctl understands "
            f"({FORMAT_VERSION}); upgrade mlctl (this is {__version__}) to read or change it"
        )


class State(Doc):
    """The whole state of one environment."""

    format_version: int = FORMAT_VERSION
    lineage: str = Field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0
    mlctl_version: str = ""
    environment: str = ""
    git: GitInfo = Field(default_factory=GitInfo)
    updated_at: str | None = None
    resources: dict[str, ResourceState] = Field(default_factory=dict)
    models: dict[str, ModelRegistry] = Field(default_factory=dict)
    monitors: dict[str, MonitorRecord] = Field(default_factory=dict)
    rollouts: dict[str, RolloutRecord] = Field(
        default_factory=dict, description="endpoint -> its rollout (optional; absent when none)"
    )

    def registry(self, model: str) -> ModelRegistry:
        """The registry of ``model``, created empty if absent."""
        return self.models.setdefault(model, ModelRegistry())

    def to_bytes(self) -> bytes:
        """Canonical UTF-8 JSON (sorted keys, 2-space indent, trailing newline): the same
        state always gives the same bytes. An empty ``rollouts`` and a monitor's empty
        ``history`` are left out, so older readers never see those keys."""
        data = orjson.loads(self.model_dump_json())
        if not data.get("rollouts"):
            data.pop("rollouts", None)
        for record in data.get("monitors", {}).values():
            if not record.get("history"):
                record.pop("history", None)
        return orjson.dumps(data, option=_CANONICAL)

    def to_json(self) -> str:
        """:meth:`to_bytes` as text."""
        return self.to_bytes().decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse state JSON; raises ``ValueError`` on malformed input, and
        :class:`NewerStateError` for a ``format_version`` this mlctl does not understand
        (a newer mlctl wrote it: reading and rewriting it would lose what it recorded).
        The text is parsed once; only a document that fails validation is parsed again, to
        tell a newer format from a corrupt one."""
        try:
            state = cls.model_validate_json(text)
        except ValueError:
            import json

            try:
                version = json.loads(text).get("format_version", FORMAT_VERSION)
            except (ValueError, AttributeError):
                version = FORMAT_VERSION
            _refuse_newer(version)
            raise
        _refuse_newer(state.format_version)
        return state
