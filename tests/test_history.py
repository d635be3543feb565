"""``mlctl models history``: the stage timeline of a model, and who served each stage when."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import edit, invoke, state_of
from mlctl.errors import MlctlError
from mlctl.state.document import ModelRegistry, StageEvent
from mlctl.state.history import holders_at, parse_instant, timeline

MODELS = Path("environments/dev/models.yaml")


def registry() -> ModelRegistry:
    """v1 to staging and production, v2 promoted, then rolled back to v1 (events out of order
    in the list on purpose: the timeline sorts by time)."""
    events = [
        StageEvent(time="2026-01-01T10:00:00Z", stage="staging", action="promote", to_version=1, actor="ci"),
        StageEvent(time="2026-01-01T10:00:00Z", stage="production", action="promote", to_version=1,
                   actor="ci", commit="a" * 40),
        StageEvent(time="2026-01-05T09:00:00Z", stage="production", action="rollback", from_version=2,
                   to_version=1, actor="alice", reason="latency doubled", commit="c" * 40),
        StageEvent(time="2026-01-03T12:00:00Z", stage="staging", action="promote", from_version=1,
                   to_version=2, actor="ci"),
        StageEvent(time="2026-01-03T12:00:00Z", stage="production", action="promote", from_version=1,
                   to_version=2, actor="ci", reason="spec changed", commit="b" * 40),
    ]  # fmt: skip
    return ModelRegistry(history=events, stages={"staging": 2, "production": 1})


def test_timeline_is_every_move_oldest_first() -> None:
    moves = timeline(registry())
    assert [(m.stage, m.from_version, m.to_version) for m in moves] == [
        ("staging", None, 1),
        ("production", None, 1),
        ("staging", 1, 2),
        ("production", 1, 2),
        ("production", 2, 1),
    ]
    last = moves[-1]
    assert (last.action, last.actor, last.reason, last.commit) == (
        "rollback",
        "alice",
        "latency doubled",
        "c" * 40,
    )
    assert [m.to_version for m in timeline(registry(), "staging")] == [1, 2]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2025-12-31T23:59:59Z", {"staging": None, "production": None}),
        ("2026-01-01T10:00:00Z", {"staging": 1, "production": 1}),  # a move at the instant counts
        ("2026-01-04", {"staging": 2, "production": 2}),
        ("2026-01-05T10:00:00+01:00", {"staging": 2, "production": 1}),  # 09:00Z: the rollback
        ("2026-01-05T08:59:59", {"staging": 2, "production": 2}),  # no zone: UTC
    ],
)
def test_holders_at_an_instant(at: str, expected: dict[str, int | None]) -> None:
    assert holders_at(registry(), parse_instant(at)) == expected


def test_parse_instant() -> None:
    assert parse_instant("2026-01-05T09:00:00Z") == datetime(2026, 1, 5, 9, tzinfo=UTC)
    with pytest.raises(MlctlError, match="--at 'yesterday': not a time"):
        parse_instant("yesterday")


@pytest.mark.slow
def test_history_through_the_cli_after_a_rollback(applied: Path) -> None:
    first_at = state_of(applied)["models"]["churn-predictor"]["history"][-1]["time"]  # v1 promoted
    edit(applied / MODELS, "max_depth: 8", "max_depth: 7")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    result = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--reason", "latency doubled")
    assert result.exit_code == 0, result.output

    moves = json.loads(invoke(applied, "models", "history", "churn-predictor", "-e", "dev", "--json").stdout)
    production = [m for m in moves if m["stage"] == "production"]
    assert [(m["from_version"], m["to_version"]) for m in production] == [(None, 1), (1, 2), (2, 1)]
    assert production[-1]["action"] == "rollback" and production[-1]["reason"] == "latency doubled"
    assert all(m["actor"] for m in moves)

    text = invoke(applied, "models", "history", "churn-predictor", "-e", "dev").stdout
    assert text.splitlines()[0].split()[:5] == ["TIME", "STAGE", "ACTION", "MOVE", "BY"]
    assert "rollback  v2 -> v1" in text and "latency doubled" in text

    at = json.loads(
        invoke(
            applied, "models", "history", "churn-predictor", "-e", "dev", "--at", first_at, "--json"
        ).stdout
    )
    assert at["stages"] == {"staging": 1, "production": 1}
    now = invoke(applied, "models", "history", "churn-predictor", "-e", "dev", "--at", "2999-01-01")
    assert "production  v1" in now.stdout

    bad = invoke(applied, "models", "history", "churn-predictor", "-e", "dev", "--at", "soon")
    assert bad.exit_code == 1 and bad.output.count("\n") == 1
    unknown = invoke(applied, "models", "history", "nope", "-e", "dev")
    assert unknown.exit_code == 1 and "model 'nope' not found" in unknown.output
