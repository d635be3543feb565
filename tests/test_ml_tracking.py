"""The local run store: round trip, prefixes, compare, atomic writes, buffering and its
durability contract (a real process killed mid-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def started(store: RunStore, model: str) -> str:
    """A run started and flushed (on disk, status running); its id."""
    run = store.start_run(model, "dev", {})
    run.flush()
    return run.run_id


def test_list_newest_first_and_filter(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ids = [started(store, m) for m in ("a", "b", "a")]
    assert [r.run_id for r in store.list_runs()] == list(reversed(ids))
    assert [r.run_id for r in store.list_runs("a")] == [ids[2], ids[0]]
    assert store.list_runs("zzz") == []
    assert RunStore(tmp_path / "none").list_runs() == []


def test_prefix_lookup(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first = started(store, "m")
    second = started(store, "m")
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
    a.finish()
    b.finish()
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
    run.flush()
    path = tmp_path / run.run_id / "run.json"
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    run.log_metrics({"auc": 0.99})  # buffered: nothing written yet
    with pytest.raises(OSError):
        run.flush()
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


def test_logs_are_buffered_until_a_flush(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.start_run("m", "dev", {})
    run.log_params({"depth": 3})
    run.log_metrics({"auc": 0.5})
    assert not (tmp_path / run.run_id).exists()  # start_run and log calls write nothing yet
    run.flush()
    assert store.get_run(run.run_id).status == "running"
    assert store.get_run(run.run_id).params == {"depth": 3}
    run.set_tags({"late": "yes"})
    assert "late" not in store.get_run(run.run_id).tags
    run.finish()
    assert store.get_run(run.run_id).tags["late"] == "yes"
    run.set_tags({"after": "finish"})  # a finished run writes every further call at once
    assert store.get_run(run.run_id).tags["after"] == "finish"


def test_flush_every_n_logs_and_after_an_interval(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.start_run("m", "dev", {})
    run.flush_every = 3
    for i in range(5):
        run.log_metrics({"loss": float(i)}, step=i)
    assert store.get_run(run.run_id).metrics == {"loss": 2.0}  # flushed at the 3rd call
    assert [p.step for p in store.metric_history(run.run_id)["loss"]] == [0, 1, 2]
    run.flush_every, run.flush_seconds = 1000, 0.0
    run.log_metrics({"loss": 9.0}, step=5)  # the interval has passed: flushed
    assert store.get_run(run.run_id).metrics == {"loss": 9.0}


def test_metric_history_keeps_every_step(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with store.start_run("m", "dev", {}) as run:
        for i in range(2500):
            run.log_metrics({"loss": 1 / (i + 1), "lr": 0.1}, step=i)
        run.log_metrics({"auc": 0.9})  # no step: the latest value only
    history = store.metric_history(run.run_id)
    assert sorted(history) == ["loss", "lr"]
    assert [p.step for p in history["loss"]] == list(range(2500))
    assert history["loss"][-1].value == 1 / 2500 and history["loss"][0].timestamp > 0
    assert store.metric_history(run.run_id, "lr")["lr"][7].value == 0.1
    assert store.get_run(run.run_id).metrics == {"loss": 1 / 2500, "lr": 0.1, "auc": 0.9}
    with (tmp_path / run.run_id / "metrics.jsonl").open("ab") as handle:
        handle.write(b'{"name": "loss", "st')  # a torn last line, as a crash mid-append leaves
    assert len(store.metric_history(run.run_id)["loss"]) == 2500


CHILD = """
import os, sys
from pathlib import Path
from mlctl.ml.tracking import RunStore
run = RunStore(Path(sys.argv[1])).start_run("m", "dev", {{}})
run.flush_every = 100
print(run.run_id, flush=True)
for i in range(250):
    run.log_metrics({{"loss": float(i)}}, step=i)
{end}
"""


def _child(tmp_path: Path, end: str, code: int) -> str:
    """Run CHILD ending with ``end`` in a new interpreter; the run id it printed."""
    script = CHILD.format(end=end)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
    return done.stdout.split()[0]


def test_a_crash_loses_only_what_was_logged_since_the_last_flush(tmp_path: Path) -> None:
    """A real process that dies without cleanup (``os._exit``: no atexit, no finish)."""
    run_id = _child(tmp_path, "os._exit(9)", 9)
    store = RunStore(tmp_path)
    record = store.get_run(run_id)  # run.json is whole and valid
    assert record.status == "running" and record.metrics == {"loss": 199.0}
    assert [p.step for p in store.metric_history(run_id)["loss"]] == list(range(200))
    assert not [p for p in (tmp_path / run_id).iterdir() if p.name.endswith(".tmp")]


def test_a_run_left_open_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    run_id = _child(tmp_path, "sys.exit(0)", 0)
    store = RunStore(tmp_path)
    assert store.get_run(run_id).metrics == {"loss": 249.0}
    assert len(store.metric_history(run_id)["loss"]) == 250


def test_exit_does_not_bring_back_a_deleted_run(tmp_path: Path) -> None:
    run_id = _child(tmp_path, "import shutil; shutil.rmtree(run.directory)", 0)
    assert not (tmp_path / run_id).exists()
