"""`plan --evaluate` trains candidates without touching state; `apply` reuses them (no second
training: asserted on the tracking runs), only after verifying their sha256."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import edit, invoke, state_of

MODELS = Path("environments") / "dev" / "models.yaml"


def runs(repo: Path) -> list[dict[str, Any]]:
    result = invoke(repo, "runs", "list", "-e", "dev", "--json")
    assert result.exit_code == 0, result.output
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def evaluate(repo: Path, fmt: str = "json") -> Any:
    result = invoke(repo, "plan", "-e", "dev", "--evaluate", "--format", fmt)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else result


def train_change(plan: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in plan["resource_changes"] if c["address"] == "model_version.churn-predictor")


@pytest.fixture
def changed(applied: Path) -> Path:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    return applied


def test_evaluate_shows_metrics_and_never_touches_state(changed: Path) -> None:
    state_file = changed / "state" / "dev.json"
    before = state_file.read_bytes()
    runs_before = runs(changed)
    plan = evaluate(changed)
    assert state_file.read_bytes() == before  # no state write, no stage move
    after = runs(changed)
    assert len(after) == len(runs_before) + 1
    new_run = after[0]
    assert new_run["tags"]["purpose"] == "plan-evaluate"
    change = train_change(plan)
    evaluation = change["change"]["after"]["evaluation"]
    assert evaluation["run_id"] == new_run["run_id"] and evaluation["passed"] is True
    assert change["change"]["after"]["metrics"]["auc"] == pytest.approx(new_run["metrics"]["auc"])
    assert evaluation["production"]["version"] == 1
    prod_auc = state_of(changed)["models"]["churn-predictor"]["versions"][0]["metrics"]["auc"]
    assert evaluation["production"]["metrics"]["auc"] == pytest.approx(prod_auc)
    cand = change["change"]["after"]["metrics"]["auc"]
    line = next(
        d for d in change["mlctl"]["details"] if d.strip().startswith("auc ") and "max_regression" not in d
    )
    assert line.strip() == f"auc {cand:.3f} (prod v1 {prod_auc:.3f}, {cand - prod_auc:+.3f}) >= 0.8 pass"
    assert change["mlctl"]["blocking"] == []
    # the candidate is kept as evidence under evaluations/, keyed by its identity; nothing
    # under the prefix apply reads (candidates/) or next to apply's own models
    identity = change["change"]["after"]["identity"].split(":", 1)[-1]
    store = changed / ".mlctl" / "artifacts" / "dev"
    manifest = store / "evaluations" / "churn-predictor" / f"{identity}.json"
    assert json.loads(manifest.read_text())["run_id"] == new_run["run_id"]
    assert evaluation["artifact"]["uri"].startswith(".mlctl/artifacts/dev/evaluations/churn-predictor/")
    assert not (store / "candidates").exists()


def test_markdown_shows_candidate_next_to_production(changed: Path) -> None:
    result = evaluate(changed, "markdown")
    out = result.stdout
    assert "| metric | candidate | production v1 | delta | gate | result |" in out
    assert "passes its gates" in out and ":white_check_mark: ready to apply" in out
    assert "[dev] churn-predictor: training candidate" in result.stderr


def test_apply_trains_itself_and_never_reuses_the_evaluated_candidate(changed: Path) -> None:
    """The trust boundary: what plan --evaluate stored is evidence for reviewers; apply trains
    the version itself and says so."""
    evaluated = train_change(evaluate(changed))["change"]["after"]["evaluation"]
    again = train_change(evaluate(changed))["change"]["after"]["evaluation"]  # every push re-plans
    assert again["run_id"] == evaluated["run_id"] and again["cached"] is True  # no retraining
    count = len(runs(changed))
    result = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "apply never reuses what plan --evaluate kept" in result.stderr
    assert "trained by this apply" in result.stderr  # which path was taken, in apply's output
    assert len(runs(changed)) == count + 1
    registry = state_of(changed)["models"]["churn-predictor"]
    v2 = registry["versions"][1]
    assert v2["run_id"] != evaluated["run_id"]
    assert "/evaluations/" not in v2["artifact"]["uri"]
    assert registry["stages"]["production"] == 2
    # the same spec on the same data: the evidence agreed with what apply measured
    assert v2["metrics"]["auc"] == pytest.approx(evaluated["metrics"]["auc"])


class _Evil:
    """Unpickling this creates ``marker``: code execution on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_forged_candidate_never_reaches_apply(changed: Path, tmp_path: Path) -> None:
    """Whoever can write the artifact store from a pull request (the plan job) forges a
    candidate for the identity apply will compute: a pickle that runs code, a manifest whose
    sha256 matches it, metrics that pass any gate, and a run id that walks out of the runs
    folder. Apply must not register it, not unpickle it, not write outside, and decide the
    gates on metrics it measured itself."""
    import hashlib
    import pickle

    change = train_change(evaluate(changed))
    identity = change["change"]["after"]["identity"].split(":", 1)[-1]
    store = changed / ".mlctl" / "artifacts" / "dev"
    genuine = next(
        json.loads(path.read_text())
        for prefix in ("evaluations", "candidates")
        if (path := store / prefix / "churn-predictor" / f"{identity}.json").is_file()
    )
    marker = tmp_path / "pwned"
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = pickle.dumps(_Evil(marker))
    model = store / "churn-predictor" / "forged" / "model.joblib"
    model.parent.mkdir(parents=True)
    model.write_bytes(evil)
    run_json = store / "forged-run.json"
    run_json.write_text("{}")

    def record(path: Path) -> dict[str, Any]:
        data = path.read_bytes()
        uri = path.relative_to(changed).as_posix()
        return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    forged = {
        **genuine,
        "run_id": str(outside / "pwn"),
        "metrics": {"auc": 0.999, "accuracy": 0.999, "latency_p95_ms": 0.1},
        "artifact": record(model),
        "run_files": {"run.json": record(run_json)},
    }
    for prefix in ("evaluations", "candidates"):  # where plan --evaluate writes, now and before
        target = store / prefix / "churn-predictor" / f"{identity}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(forged))
    edit(changed / MODELS, "min_auc: 0.80", "min_auc: 0.99")  # only forged metrics pass this

    result = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1  # apply measured its own candidate: it fails min_auc
    assert "rejected" in result.output and "Traceback" not in result.output
    assert "trained by this apply" in result.output  # the gate saw apply's own measurement
    registry = state_of(changed)["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 1
    shas = {v["artifact"]["sha256"] for v in registry["versions"]}
    assert forged["artifact"]["sha256"] not in shas
    assert all(v["metrics"]["auc"] != 0.999 for v in registry["versions"])
    assert not marker.exists()  # never unpickled
    assert list(outside.iterdir()) == []  # nothing written outside the runs folder


def test_tampered_evidence_is_evaluated_again(changed: Path) -> None:
    evaluated = train_change(evaluate(changed))["change"]["after"]["evaluation"]
    artifact = changed / evaluated["artifact"]["uri"]
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    again = train_change(evaluate(changed))["change"]["after"]["evaluation"]
    assert again["cached"] is False and again["run_id"] != evaluated["run_id"]


def test_evaluate_runs_the_data_checks_and_shows_failures_as_blockers(changed: Path) -> None:
    """The PR shows what apply would reject: a failing data check is a blocker, and the
    model reading that data is not evaluated (apply would skip its training)."""
    edit(changed / "environments" / "dev" / "data.yaml", "min_rows: 10000", "min_rows: 99000000")
    before = (changed / "state" / "dev.json").read_bytes()
    result = invoke(changed, "plan", "-e", "dev", "--evaluate", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    dataset = next(c for c in plan["resource_changes"] if c["address"] == "dataset.customer_activity")
    assert any("fails check min_rows" in b and "99000000" in b for b in dataset["mlctl"]["blocking"])
    assert "evaluation" not in train_change(plan)["change"]["after"]
    assert (changed / "state" / "dev.json").read_bytes() == before
    md = invoke(changed, "plan", "-e", "dev", "--evaluate", "--format", "markdown")
    assert md.exit_code == 0, md.output
    assert "**Would block apply:**" in md.stdout and "fails check min_rows" in md.stdout
    assert ":x: apply would fail" in md.stdout
    # and apply does reject it
    applied = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert applied.exit_code == 1 and "min_rows" in applied.output


def test_replace_forces_training(changed: Path) -> None:
    evaluate(changed)
    count = len(runs(changed))
    result = invoke(
        changed, "apply", "-e", "dev", "--auto-approve", "--replace", "model_version.churn-predictor"
    )
    assert result.exit_code == 0, result.output
    assert len(runs(changed)) == count + 1


def test_failing_gate_blocks(changed: Path) -> None:
    edit(changed / MODELS, "min_auc: 0.80", "min_auc: 0.99")
    result = invoke(changed, "plan", "-e", "dev", "--evaluate", "--format", "json")
    assert result.exit_code == 0, result.output
    change = train_change(json.loads(result.stdout))
    assert change["change"]["after"]["evaluation"]["passed"] is False
    assert any("fails gate min_auc" in b and "FAIL" in b for b in change["mlctl"]["blocking"])
    md = invoke(changed, "plan", "-e", "dev", "--evaluate", "--format", "markdown").stdout
    assert "**Would block apply:**" in md and "**fails its gates**" in md and ":x: fail" in md


def test_no_changes_no_training(applied: Path) -> None:
    count = len(runs(applied))
    result = invoke(applied, "plan", "-e", "dev", "--evaluate")
    assert result.exit_code == 0 and "No changes" in result.stdout
    assert len(runs(applied)) == count


def test_evaluate_needs_refresh(changed: Path) -> None:
    result = invoke(changed, "plan", "-e", "dev", "--evaluate", "--no-refresh")
    assert result.exit_code == 1 and "--evaluate needs the data fingerprints" in result.stderr
