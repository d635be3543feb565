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
    evaluation = change["after"]["evaluation"]
    assert evaluation["run_id"] == new_run["run_id"] and evaluation["passed"] is True
    assert change["after"]["metrics"]["auc"] == pytest.approx(new_run["metrics"]["auc"])
    assert evaluation["production"]["version"] == 1
    prod_auc = state_of(changed)["models"]["churn-predictor"]["versions"][0]["metrics"]["auc"]
    assert evaluation["production"]["metrics"]["auc"] == pytest.approx(prod_auc)
    cand = change["after"]["metrics"]["auc"]
    line = next(d for d in change["details"] if d.strip().startswith("auc ") and "max_regression" not in d)
    assert line.strip() == f"auc {cand:.3f} (prod v1 {prod_auc:.3f}, {cand - prod_auc:+.3f}) >= 0.8 pass"
    assert change["blocking"] == []
    # the candidate is kept in the artifact store, keyed by its identity
    identity = change["after"]["identity"].split(":", 1)[-1]
    manifest = (
        changed / ".mlctl" / "artifacts" / "dev" / "candidates" / "churn-predictor" / f"{identity}.json"
    )
    assert json.loads(manifest.read_text())["run_id"] == new_run["run_id"]


def test_markdown_shows_candidate_next_to_production(changed: Path) -> None:
    result = evaluate(changed, "markdown")
    out = result.stdout
    assert "| metric | candidate | production v1 | delta | gate | result |" in out
    assert "passes its gates" in out and ":white_check_mark: ready to apply" in out
    assert "[dev] churn-predictor: training candidate" in result.stderr


def test_apply_reuses_the_evaluated_candidate(changed: Path) -> None:
    evaluated = train_change(evaluate(changed))["after"]["evaluation"]
    again = train_change(evaluate(changed))["after"]["evaluation"]  # every push re-plans: no retraining
    assert again["run_id"] == evaluated["run_id"] and again["cached"] is True
    count = len(runs(changed))
    result = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "reusing the candidate evaluated in run" in result.stderr
    assert len(runs(changed)) == count  # no second training
    registry = state_of(changed)["models"]["churn-predictor"]
    v2 = registry["versions"][1]
    assert v2["run_id"] == evaluated["run_id"]
    assert v2["artifact"]["sha256"] == evaluated["artifact"]["sha256"]
    assert v2["metrics"]["auc"] == pytest.approx(evaluated["metrics"]["auc"])
    assert registry["stages"]["production"] == 2


def test_tampered_candidate_is_trained_again(changed: Path) -> None:
    evaluated = train_change(evaluate(changed))["after"]["evaluation"]
    artifact = changed / evaluated["artifact"]["uri"]
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    count = len(runs(changed))
    result = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "not reused" in result.stderr and "tampered" in result.stderr
    assert len(runs(changed)) == count + 1
    v2 = state_of(changed)["models"]["churn-predictor"]["versions"][1]
    assert v2["run_id"] != evaluated["run_id"]


def test_missing_run_record_is_restored_from_the_store(changed: Path) -> None:
    """CI applies on another machine: the run directory comes back from the artifact store."""
    import shutil

    evaluated = train_change(evaluate(changed))["after"]["evaluation"]
    run_dir = changed / ".mlctl" / "runs" / "dev" / evaluated["run_id"]
    signature = (run_dir / "artifacts" / "signature.json").read_bytes()
    shutil.rmtree(run_dir)
    result = invoke(changed, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "reusing the candidate" in result.stderr
    assert (run_dir / "artifacts" / "signature.json").read_bytes() == signature
    assert state_of(changed)["models"]["churn-predictor"]["versions"][1]["run_id"] == evaluated["run_id"]


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
    assert change["after"]["evaluation"]["passed"] is False
    assert any("fails gate min_auc" in b and "FAIL" in b for b in change["blocking"])
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
