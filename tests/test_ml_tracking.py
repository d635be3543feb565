"""The local run store: round trip, prefixes, compare, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlctl.errors import MlctlError, NotFoundError
from mlctl.ml.tracking import RunRecord, RunStore


def test_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.start_run("churn", "prod", {"team": "growth"}, git_commit="abc123")
    run.log_params({"max_depth": 5, "class_weight": "balanced", "odd": {1, 2}.__class__})
    run.log_metrics({"auc": 0.91})
    run.log_data({"customer_activity": "sha256:00"})
    run.set_tags({"trigger": "spec"})
    stored = run.log_artifact(b"model-bytes", "model/model.joblib")
    src = tmp_path / "report.txt"
    src.write_text("hi")
    run.log_artifact(src)
    run.finish("finished")

    record = store.get_run(run.run_id)
    assert record.status == "finished" and record.error is None
    assert record.params["max_depth"] == 5 and record.params["odd"] == "<class 'set'>"
    assert record.metrics == {"auc": 0.91}
    assert record.tags == {"team": "growth", "trigger": "spec"}
    assert record.data == {"customer_activity": "sha256:00"}
    assert record.git_commit == "abc123"
    assert record.packages["scikit-learn"] and record.python
    assert record.duration_s is not None and record.ended_at
    assert stored.read_bytes() == b"model-bytes"
    assert stored == tmp_path / "runs" / run.run_id / "artifacts" / "model" / "model.joblib"
    assert record.artifacts["report.txt"]["size"] == 2
    json.dumps(record.to_dict())
    with pytest.raises(MlctlError):
        run.log_artifact(b"x", "../escape")


def test_list_newest_first_and_filter(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ids = [store.start_run(m, "dev", {}).run_id for m in ("a", "b", "a")]
    assert [r.run_id for r in store.list_runs()] == list(reversed(ids))
    assert [r.run_id for r in store.list_runs("a")] == [ids[2], ids[0]]
    assert store.list_runs("zzz") == []
    assert RunStore(tmp_path / "none").list_runs() == []


def test_prefix_lookup(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first = store.start_run("m", "dev", {}).run_id
    second = store.start_run("m", "dev", {}).run_id
    assert store.get_run(first[:-2]).run_id == first
    assert store.get_run(second).run_id == second
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get_run(first[:4])
    with pytest.raises(NotFoundError, match="no run"):
        store.get_run("1999")


def test_compare_marks_differences(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a = store.start_run("m", "dev", {})
    a.log_params({"max_depth": 5, "n": 100})
    a.log_metrics({"auc": 0.9})
    b = store.start_run("m", "dev", {})
    b.log_params({"max_depth": 7, "n": 100})
    b.log_metrics({"auc": 0.92, "f1": 0.5})
    table = store.compare([a.run_id, b.run_id])
    assert table["runs"] == [a.run_id, b.run_id]
    assert table["params"]["max_depth"]["differs"] is True
    assert table["params"]["n"]["differs"] is False
    assert table["metrics"]["f1"]["values"] == {a.run_id: None, b.run_id: 0.5}


def test_context_manager_marks_failure(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError), store.start_run("m", "dev", {}) as run:
        raise RuntimeError("boom")
    record = store.get_run(run.run_id)
    assert record.status == "failed" and record.error == "RuntimeError: boom"


def test_atomic_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path)
    run = store.start_run("m", "dev", {})
    run.log_metrics({"auc": 0.8})
    path = tmp_path / run.run_id / "run.json"
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        run.log_metrics({"auc": 0.99})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]  # no temp left
    assert store.get_run(run.run_id).metrics == {"auc": 0.8}


@pytest.mark.parametrize(
    "run_id", ["/../../outside/pwn", "../../outside/pwn", "a/../../b", "", "20260101T000000000000Z-abcdef\n"]
)
def test_run_records_refuse_ids_that_leave_the_store(tmp_path: Path, run_id: str) -> None:
    """A run.json (restored from a store, or edited) naming ``/../../outside/pwn`` must not
    make the run store write outside its root."""
    store = RunStore(tmp_path / "env" / "runs")  # ../../outside is tmp_path/outside
    run = store.start_run("churn", "dev")
    run.finish()
    path = tmp_path / "env" / "runs" / run.run_id / "run.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "run_id": run_id}))
    with pytest.raises(MlctlError):
        store.add_tags(run.run_id, {"purpose": "x"})
    assert not (tmp_path / "outside").exists() and not Path("/outside").exists()
    with pytest.raises(ValueError):
        RunRecord.model_validate({**record, "run_id": run_id})
    from mlctl.ml.tracking import check_run_id

    with pytest.raises(MlctlError, match="not a run id"):
        check_run_id(run_id)
