"""``operations.rollback`` on the applied example: it takes the lock itself, refuses before
changing anything, and returns what moved (state, endpoints, the rewritten YAML pin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import edit
from mlctl import operations
from mlctl.errors import LockError, MlctlError
from mlctl.operations import RollbackOptions, Status
from mlctl.state.backend import LockInfo
from mlctl.state.local import LocalBackend
from mlctl.workspace import open_workspace

MODEL = "churn-predictor"


def test_a_held_lock_makes_rollback_raise_naming_the_holder(applied: Path) -> None:
    ws = open_workspace(applied, "dev")
    before = ws.backend.read()
    holder = LocalBackend(applied / "state" / "dev.json")
    info = LockInfo.new("apply", "dev")
    holder.lock(info)
    try:
        with pytest.raises(LockError, match=info.id):
            operations.rollback(ws, MODEL)
    finally:
        holder.unlock(info.id)
    after = ws.backend.read()
    assert before is not None and after is not None and after.serial == before.serial


def test_refusals_change_nothing_and_release_the_lock(applied: Path) -> None:
    ws = open_workspace(applied, "dev")
    with pytest.raises(MlctlError, match="no earlier production version"):
        operations.rollback(ws, MODEL)
    with pytest.raises(MlctlError, match="--no-write-back"):
        operations.rollback(ws, MODEL, RollbackOptions(write_back=False, commit=True))
    with pytest.raises(MlctlError, match="is not defined"):
        operations.rollback(ws, "churn-predictr")
    assert ws.backend.lock_holder() is None


def test_rollback_after_a_second_version_moves_production_and_the_pin(applied: Path) -> None:
    edit(applied / "environments/dev/models.yaml", "max_depth: 8", "max_depth: 7")
    ws = open_workspace(applied, "dev")
    applied_v2 = operations.apply(ws)
    assert applied_v2.ok and applied_v2.trained == [(MODEL, 2)]
    assert Status.OK in {o.status for o in applied_v2.outcomes}

    result = operations.rollback(ws, MODEL, RollbackOptions(reason="latency doubled"))

    assert (result.from_version, result.to_version) == (2, 1) and result.ok
    assert result.endpoints == ["churn-api"] and result.commit is None
    assert result.written == applied / "environments/dev/models.yaml"
    state = ws.backend.read()
    assert state is not None and state.serial == result.serial
    assert state.models[MODEL].stages["production"] == 1
    assert not operations.plan(open_workspace(applied, "dev")).has_changes
