"""Retraining triggers as the planner and the executor see them.

Contract: light (no pandas, no scikit-learn; croniter is imported only for a schedule). A
trigger is *pending* until a version is trained for it. While a trigger is pending, the
identity of the model's candidate version includes the trigger ids, so the same spec on the
same data plans a NEW version instead of reusing the old one. Once a version was trained for
the latest trigger, that version stays the candidate as long as the spec and data are the ones
it was trained on; any other spec or data falls back to the ordinary identity (so reverting a
spec in git still reuses the earlier version without training).

Scheduled retraining (``retrain.schedule``) needs no stored trigger: it is due when the cron
expression fired after the last training time of the model; its id names that cron tick, so
the plan is stable until apply trains it (apply then stores the consumed trigger).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from mlctl.spec.models import Model
from mlctl.state.document import ModelRegistry, ModelVersion, RetrainTrigger, utcnow


@dataclass(frozen=True)
class Due:
    """One reason to train now: a stored pending trigger, or a due schedule (not stored yet)."""

    id: str
    kind: str
    reason: str
    stored: bool


def parse_time(text: str) -> datetime:
    """An ISO-8601 timestamp (``Z`` allowed) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_training_time(registry: ModelRegistry) -> datetime | None:
    """When the most recent version of the model was trained (None: never)."""
    times = [parse_time(v.created_at) for v in registry.versions if v.created_at]
    return max(times) if times else None


@lru_cache(maxsize=256)
def previous_tick(schedule: str, minute: datetime) -> datetime:
    """The last time ``schedule`` fired at or before ``minute`` (UTC). Cron resolution is a
    minute, so models sharing a schedule share one evaluation per plan."""
    from croniter import croniter

    tick = croniter(schedule, minute + timedelta(seconds=1)).get_prev(datetime)
    return tick if tick.tzinfo else tick.replace(tzinfo=UTC)


def schedule_due(model: Model, registry: ModelRegistry, now: datetime | None = None) -> Due | None:
    """The due scheduled retraining, if ``retrain.schedule`` fired since the last training."""
    if model.retrain is None or not model.retrain.schedule:
        return None
    last = last_training_time(registry)
    if last is None:
        return None  # never trained: the first training is planned anyway
    now = now or datetime.now(UTC)
    tick = previous_tick(model.retrain.schedule, now.replace(second=0, microsecond=0))
    if tick <= last:
        return None
    stamp = tick.strftime("%Y-%m-%dT%H:%MZ")
    when = last.strftime("%Y-%m-%d %H:%M")
    return Due(
        id=f"schedule:{stamp}",
        kind="schedule",
        reason=f"scheduled retraining ({model.retrain.schedule}) due since {stamp}; last trained {when}Z",
        stored=False,
    )


def due_triggers(model: Model, registry: ModelRegistry, now: datetime | None = None) -> list[Due]:
    """Every reason to retrain now: stored pending triggers, then a due schedule."""
    due = [Due(t.id, t.kind, t.reason, True) for t in registry.triggers if t.pending]
    scheduled = schedule_due(model, registry, now)
    if scheduled is not None and all(d.id != scheduled.id for d in due):
        due.append(scheduled)
    return due


def candidate_identity(
    plain: str | None,
    inputs: dict[str, Any],
    data: dict[str, Any],
    registry: ModelRegistry,
    due: list[Due],
) -> str | None:
    """The identity of the candidate version given the triggers (see module contract).

    ``plain`` is the ordinary identity (hash of training inputs and data fingerprints).
    """
    if plain is None:
        return None
    if due:
        from mlctl.spec.views import canonical_hash

        return canonical_hash({"identity": plain, "triggers": sorted(d.id for d in due)})
    consumed = [t for t in registry.triggers if t.trained_version is not None]
    if consumed:
        version = registry.get(consumed[-1].trained_version or 0)
        if version is not None and version.training == inputs and version.data == data:
            return version.identity
    return plain


def train_reason(due: list[Due]) -> str:
    """The plan's reason text for training because of ``due``."""
    return "; ".join(d.reason for d in due)


def mark_trained(registry: ModelRegistry, due: list[Due], version: int, actor: str | None) -> None:
    """Record that ``version`` was trained for ``due`` (stores a due schedule as consumed)."""
    for item in due:
        stored = next((t for t in registry.triggers if t.id == item.id), None)
        if stored is None:
            stored = RetrainTrigger.model_validate(
                {"id": item.id, "kind": item.kind, "reason": item.reason, "created_by": actor}
            )
            registry.triggers.append(stored)
        stored.trained_version = version


def sweep_cleared(registry: ModelRegistry) -> list[RetrainTrigger]:
    """Mark triggers cleared whose trained version (or a later one) is live in production."""
    production = registry.stages.get("production")
    cleared = []
    for trigger in registry.triggers:
        done = trigger.trained_version
        if trigger.cleared_at is None and done is not None and production is not None and production >= done:
            trigger.cleared_at = utcnow()
            cleared.append(trigger)
    return cleared


def trigger_status(trigger: RetrainTrigger, registry: ModelRegistry) -> str:
    """pending | trained (not live yet) | cleared (computed, whether or not swept yet)."""
    if trigger.cleared_at is not None:
        return "cleared"
    if trigger.trained_version is None:
        return "pending"
    production = registry.stages.get("production")
    if production is not None and production >= trigger.trained_version:
        return "cleared"
    return "trained"


def counts_new_rows(model: Model) -> bool:
    """Whether ``retrain`` holds training until ``min_new_rows`` rows arrived: ``new_data`` is
    listed in ``retrain.on`` and ``min_new_rows`` is written in the YAML."""
    retrain = model.retrain
    return retrain is not None and "new_data" in retrain.on and "min_new_rows" in retrain.model_fields_set


def new_data_hold(
    model: Model,
    previous: ModelVersion | None,
    inputs: dict[str, Any],
    data: dict[str, Any],
    rows_now: dict[str, int | None],
) -> str | None:
    """Why the new data is not enough to train yet, or None (train as usual).

    Holds only when :func:`counts_new_rows`, the spec is unchanged since ``previous``, and
    every dataset whose data changed grew by at least one and fewer than ``min_new_rows``
    rows (a rewritten or shrunk dataset, or one whose rows are unknown, trains as usual).
    """
    if previous is None or not counts_new_rows(model) or previous.training != inputs:
        return None
    assert model.retrain is not None
    changed = [name for name, fingerprint in data.items() if previous.data.get(name) != fingerprint]
    if not changed:
        return None
    grown = []
    for name in changed:
        before, now = previous.data_rows.get(name), rows_now.get(name)
        if before is None or now is None or not 0 < now - before < model.retrain.min_new_rows:
            return None
        grown.append(f"{now - before:,} in {name}")
    return (
        f"{', '.join(grown)} new rows since v{previous.version} was trained, fewer than "
        f"retrain.min_new_rows {model.retrain.min_new_rows}: v{previous.version} stays the candidate"
    )
