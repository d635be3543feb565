"""The timeline of a model's stages, from the registry's stage history. Pure functions.

Contract: :func:`timeline` lists every recorded stage move of one model (oldest first, in the
order the state recorded them; events with equal times keep that order) as :class:`Move`
(who, when, why, commit, stage, from -> to). :func:`holders_at` replays the moves up to and
including an instant and answers which version held each stage then (None: nobody, or the
instant is before the first move). Times are ISO-8601; one without a zone is read as UTC.
:func:`parse_instant` turns user input into an aware datetime, raising
:class:`~mlctl.errors.MlctlError` (one line) for anything else. Nothing here reads files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from mlctl.errors import MlctlError
from mlctl.state.document import ModelRegistry

STAGES = ("staging", "production")


@dataclass(frozen=True)
class Move:
    """One stage move: ``stage`` went from ``from_version`` to ``to_version`` (None: empty)."""

    time: str
    stage: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    commit: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_instant(text: str) -> datetime:
    """``text`` (ISO-8601: ``2026-01-31``, ``2026-01-31T12:00:00Z``, ``...+02:00``) as an aware
    datetime (UTC when no zone is given); MlctlError when it is not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MlctlError(
            f"--at {text!r}: not a time (ISO-8601, e.g. 2026-01-31T12:00:00Z or 2026-01-31)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def timeline(registry: ModelRegistry, stage: str | None = None) -> list[Move]:
    """Every stage move of ``registry`` (of ``stage`` only, when given), oldest first."""
    moves = [
        Move(
            time=e.time,
            stage=e.stage,
            action=e.action,
            from_version=e.from_version,
            to_version=e.to_version,
            actor=e.actor,
            reason=e.reason,
            commit=e.commit,
        )
        for e in registry.history
        if stage is None or e.stage == stage
    ]
    order = {id(m): i for i, m in enumerate(moves)}
    return sorted(moves, key=lambda m: (parse_instant(m.time), order[id(m)]))


def holders_at(registry: ModelRegistry, at: datetime) -> dict[str, int | None]:
    """Which version held each stage at the instant ``at`` (moves at exactly ``at`` count)."""
    held: dict[str, int | None] = dict.fromkeys(STAGES)
    for move in timeline(registry):
        if parse_instant(move.time) > at:
            break
        held[move.stage] = move.to_version
    return held


__all__ = ["STAGES", "Move", "holders_at", "parse_instant", "timeline"]
