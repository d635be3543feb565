"""`apply PLANFILE`: a saved plan is carried out exactly while the state, the configuration
and the data are as when it was made, and refused, before anything is written, when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.harness import GIT, World, actions
from mlctl import operations
from mlctl.errors import StalePlanError
from plan.world import edit


@pytest.fixture
def saved(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """v1 applied, then a plan to train v2 saved to a file."""
    monkeypatch.setattr("mlctl.engine.reality.artifact_store", lambda spec: world.store)
    world.apply()
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    plan = world.plan()
    assert "model_version.churn" in actions(plan)
    path = tmp_path / "plan.json"
    plan.save(path)
    return path


def apply_saved(world: World, path: Path) -> operations.ApplyResult:
    return operations.apply(
        world.workspace(), operations.ApplyOptions(planfile=path), git=GIT, actor="tester@host"
    )


def test_a_fresh_saved_plan_is_carried_out(world: World, saved: Path) -> None:
    result = apply_saved(world, saved)
    assert [str(d) for d in result.diagnostics] == []
    state = world.state
    assert state is not None and state.models["churn"].stages == {"staging": 2, "production": 2}
    assert world.serving.serving == {"api": ("churn", 2)}
    assert not world.plan().has_changes


def test_a_saved_plan_is_refused_once_the_state_moved(world: World, saved: Path) -> None:
    edit(world.root, "models.yaml", "params: {C: 0.5}", "params: {C: 1.0}")
    world.apply(world.plan(replace=["model.churn"]))  # someone else applied meanwhile
    edit(world.root, "models.yaml", "params: {C: 1.0}", "params: {C: 0.5}")
    writes = len(world.backend.snapshots)
    with pytest.raises(StalePlanError, match="state serial is"):
        apply_saved(world, saved)
    assert len(world.backend.snapshots) == writes


def test_a_saved_plan_is_refused_once_the_configuration_changed(world: World, saved: Path) -> None:
    edit(world.root, "models.yaml", "min_auc: 0.8", "min_auc: 0.7")
    writes = len(world.backend.snapshots)
    with pytest.raises(StalePlanError, match="configuration changed"):
        apply_saved(world, saved)
    assert len(world.backend.snapshots) == writes and world.trainer.calls == ["churn"]


def test_a_saved_plan_is_refused_once_the_data_changed(world: World, saved: Path) -> None:
    with (world.root / "data" / "labels.csv").open("a") as labels:
        labels.write("c9,2026-01-09T00:00:00Z,1\n")
    writes = len(world.backend.snapshots)
    with pytest.raises(StalePlanError, match=r"data changed since it was made \(labels\)"):
        apply_saved(world, saved)
    assert len(world.backend.snapshots) == writes and world.trainer.calls == ["churn"]
