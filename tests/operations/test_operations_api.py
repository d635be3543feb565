"""The library API on a tiny repository (one dataset, one online feature view, no model):
plan -> apply with typed outcomes, the lock taken by each operation, the data-check gate shared
by apply and materialize, and state migration keeping lineage. No training, no CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlctl import operations
from mlctl.engine.apply import data_check_failure
from mlctl.errors import Diagnostic, LockError, MlctlError, StalePlanError
from mlctl.operations import ApplyOptions, MaterializeOptions, Status
from mlctl.state.backend import LockInfo
from mlctl.state.document import ResourceState, State
from mlctl.state.local import LocalBackend
from mlctl.workspace import Workspace, open_workspace

ROWS = [
    ("a", "2024-01-01T00:00:00Z", 1, 1.5),
    ("a", "2024-01-05T00:00:00Z", 3, 3.5),
    ("b", "2024-01-01T00:00:00Z", 10, 10.5),
    ("c", "2024-01-03T00:00:00Z", 7, 7.5),
]


def write_repo(root: Path, *, min_rows: int = 1, state: str = "state/dev.json") -> Path:
    env = root / "environments" / "dev"
    env.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    lines = ["customer_id,event_timestamp,orders,value", *(",".join(map(str, r)) for r in ROWS)]
    (root / "data" / "activity.csv").write_text("\n".join(lines) + "\n")
    (env / "environment.yaml").write_text(f"backend: {{type: local, path: {state}}}\n")
    (env / "data.yaml").write_text(
        textwrap.dedent(
            f"""\
            datasets:
              activity:
                path: data/activity.csv
                timestamp: event_timestamp
                schema: {{customer_id: string, event_timestamp: datetime, orders: int, value: float}}
                checks: {{min_rows: {min_rows}}}
            """
        )
    )
    (env / "features.yaml").write_text(
        textwrap.dedent(
            """\
            entities:
              customer: {join_key: customer_id}
            feature_views:
              cf:
                entities: [customer]
                source: activity
                online: true
                features: {orders: int, value: float}
            """
        )
    )
    return root


def hold_lock(ws: Workspace, operation: str) -> tuple[LocalBackend, LockInfo]:
    """Another holder of ``ws``'s lock (its own file handle, as another process would have)."""
    other = LocalBackend(ws.repo / "state" / "dev.json")
    info = LockInfo.new(operation, ws.env)
    other.lock(info)
    return other, info


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(write_repo(tmp_path / "repo"), "dev")


def test_plan_then_apply_returns_one_ok_outcome_per_action(ws: Workspace) -> None:
    planned = operations.plan(ws)
    assert planned.has_changes and planned.ok
    addresses = [c.address for c in planned.plan.resource_changes]

    result = operations.apply(ws)

    assert result.ok and result.errors == [] and result.environment == "dev"
    assert [o.address for o in result.outcomes] == addresses
    assert {o.status for o in result.outcomes} == {Status.OK}
    assert result.applied == addresses and result.failed == result.skipped == []
    view = next(o for o in result.outcomes if o.address == "feature_view.cf")
    assert view.action == "materialize" and "entity rows written" in view.message
    assert not operations.plan(ws).has_changes
    again = operations.apply(ws)
    assert again.ok and again.outcomes == [] and not again.plan.has_changes


def test_a_held_lock_makes_apply_raise_naming_the_holder(ws: Workspace) -> None:
    other, info = hold_lock(ws, "someone else's apply")
    try:
        with pytest.raises(LockError) as caught:
            operations.apply(ws)
        assert info.id in str(caught.value) and "someone else's apply" in str(caught.value)
        with pytest.raises(LockError):
            operations.materialize(ws)
    finally:
        other.unlock(info.id)
    assert ws.backend.read() is None  # nothing was written while the lock was held
    assert operations.apply(ws).ok  # and the operation released nothing it did not hold


def test_the_review_sees_the_plan_under_the_lock_and_can_cancel(ws: Workspace) -> None:
    seen: list[str | None] = []

    def review(plan: object) -> None:
        holder = ws.backend.lock_holder()
        seen.append(holder.operation if holder else None)
        raise MlctlError("apply cancelled")

    with pytest.raises(MlctlError, match="apply cancelled"):
        operations.apply(ws, review=review)
    assert seen == ["apply"]
    assert ws.backend.read() is None and ws.backend.lock_holder() is None


def test_a_failed_data_check_is_a_failed_outcome_and_blocks_materialization(tmp_path: Path) -> None:
    ws = open_workspace(write_repo(tmp_path / "repo", min_rows=100), "dev")

    result = operations.apply(ws)

    assert not result.ok
    status = {o.address: o.status for o in result.outcomes}
    assert status["dataset.activity"] is Status.FAILED
    assert status["feature_view.cf"] is Status.FAILED
    assert all(d.severity == "error" for d in result.diagnostics)
    assert [d.path for d in result.errors] == ["dataset.activity", "feature_view.cf"]
    assert str(result.errors[0]).startswith("dataset.activity: check min_rows failed")
    assert "materialization skipped: dataset.activity failed" in result.errors[1].summary


def test_materialize_refuses_a_view_whose_data_failed_its_last_check(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    assert operations.apply(open_workspace(root, "dev")).ok
    write_repo(root, min_rows=100)  # the same data now fails its check
    ws = open_workspace(root, "dev")
    assert not operations.apply(ws).ok

    result = operations.materialize(ws, MaterializeOptions(views=("cf",)))

    assert [(o.address, o.status) for o in result.outcomes] == [("feature_view.cf", Status.FAILED)]
    assert [str(d) for d in result.errors] == [
        "dataset.activity failed its last check (min_rows); fix it and run apply"
    ]


def test_materialize_writes_and_records_each_view(ws: Workspace) -> None:
    assert operations.apply(ws).ok
    serial = ws.backend.read().serial  # type: ignore[union-attr]

    result = operations.materialize(ws)

    assert result.ok and [o.status for o in result.outcomes] == [Status.OK]
    assert result.outcomes[0].message.startswith("0 of 0 entity rows written")
    assert ws.backend.read().serial == serial + 1  # type: ignore[union-attr]
    with pytest.raises(MlctlError, match="no feature view 'cx'"):
        operations.materialize(ws, MaterializeOptions(views=("cx",)))


def test_a_saved_plan_goes_stale_when_the_state_moves(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "dev.plan"
    operations.plan(ws, out=out)
    assert operations.apply(ws).ok
    with pytest.raises(StalePlanError):
        operations.apply(ws, ApplyOptions(planfile=out))
    with pytest.raises(MlctlError, match="--target/--replace belong to the plan"):
        operations.apply(ws, ApplyOptions(planfile=out, targets=("dataset.activity",)))


def test_migrate_state_keeps_lineage_and_serial_and_is_idempotent(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    assert operations.apply(open_workspace(root, "dev")).ok
    before = LocalBackend(root / "state" / "dev.json").read()
    assert before is not None
    write_repo(root, state="state/moved.json")  # the environment now declares another backend
    ws = open_workspace(root, "dev")

    result = operations.migrate_state(ws)

    assert result.migrated and result.ok and result.warnings == []
    moved = ws.backend.read()
    assert moved is not None
    assert (moved.lineage, moved.serial) == (before.lineage, before.serial) == (result.lineage, result.serial)
    assert "state/moved.json" in result.target and "state/dev.json" in result.source
    assert not operations.migrate_state(ws).migrated  # again: nothing to do
    assert LocalBackend(root / "state" / "dev.json").read() is not None  # the old copy stays


def test_migrate_state_never_overwrites_another_lineage(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    assert operations.apply(open_workspace(root, "dev")).ok
    write_repo(root, state="state/moved.json")
    ws = open_workspace(root, "dev")
    other = LocalBackend(root / "state" / "moved.json")
    info = LockInfo.new("test", "dev")
    other.lock(info)
    other.write(State(environment="dev"))
    other.unlock(info.id)
    with pytest.raises(MlctlError, match="already holds another state"):
        operations.migrate_state(ws)


def test_data_check_failure_is_one_gate_for_this_run_and_the_last_check() -> None:
    state = State(environment="dev")
    assert data_check_failure(state, ["activity"]) is None
    assert data_check_failure(None, ["activity"]) is None
    assert (
        data_check_failure(state, ["activity"], {"activity": "min_rows"})
        == "dataset.activity failed (min_rows)"
    )
    state.resources["dataset.activity"] = ResourceState(
        type="dataset", name="activity", status={"passed": False, "failed": ["min_rows", "nulls"]}
    )
    assert data_check_failure(state, ["other", "activity"]) == (
        "dataset.activity failed its last check (min_rows, nulls)"
    )


def test_a_diagnostic_is_an_error_by_default_and_reads_the_same_with_either_severity() -> None:
    error = Diagnostic("bad value", path="models.m.training", file="models.yaml", line=3, hint="try 1")
    warning = Diagnostic("bad value", "models.m.training", "models.yaml", 3, "try 1", severity="warning")
    assert error.severity == "error" and warning.severity == "warning"
    assert str(error) == str(warning) == "models.yaml:3: models.m.training: bad value (try 1)"
    assert [s.value for s in Status] == ["ok", "failed", "skipped"]
