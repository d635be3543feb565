"""Moving versions between stages in the registry, with history. Pure state edits."""

from __future__ import annotations

from typing import Literal

from mlctl.state.document import ModelRegistry, StageEvent


def _restage(registry: ModelRegistry, number: int | None) -> None:
    """Recompute one version's ``stage`` field from the stage holders."""
    if number is None:
        return
    version = registry.get(number)
    if version is None:
        return
    if registry.stages.get("production") == number:
        version.stage = "production"
    elif registry.stages.get("staging") == number:
        version.stage = "staging"
    elif version.stage in ("staging", "production"):
        version.stage = "archived"


def move_stage(
    registry: ModelRegistry,
    stage: Literal["staging", "production"],
    to_version: int | None,
    *,
    action: Literal["promote", "archive", "rollback", "clear"],
    actor: str,
    reason: str | None,
    commit: str | None,
) -> StageEvent | None:
    """Point ``stage`` at ``to_version`` (None empties it); the previous holder is archived
    unless it still holds the other stage. Returns the recorded event, or None if no move."""
    previous = registry.stages.get(stage)
    if previous == to_version:
        return None
    registry.stages[stage] = to_version
    event = StageEvent(
        stage=stage,
        action=action,
        from_version=previous,
        to_version=to_version,
        actor=actor,
        reason=reason,
        commit=commit,
    )
    registry.history.append(event)
    _restage(registry, previous)
    _restage(registry, to_version)
    return event
