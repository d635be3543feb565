"""Rollback: production goes back at once, state and YAML agree afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import edit, invoke, plan_json, run_process, state_of

MODELS = Path("environments/dev/models.yaml")


@pytest.fixture
def two_versions(applied: Path) -> Path:
    """v1 then v2 promoted to production (v1 archived)."""
    edit(applied / MODELS, "max_depth: 8", "max_depth: 7")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert state_of(applied)["models"]["churn-predictor"]["stages"]["production"] == 2
    return applied


def test_rollback_round_trip_keeps_comments_and_plans_clean(two_versions: Path) -> None:
    repo = two_versions
    before_yaml = (repo / MODELS).read_text()
    result = invoke(repo, "rollback", "churn-predictor", "-e", "dev", "--reason", "latency doubled")
    assert result.exit_code == 0, result.output
    assert "production v2 -> v1" in result.stdout

    state = state_of(repo)
    registry = state["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 1
    v1, v2 = registry["versions"]
    assert v1["stage"] == "production"
    assert v2["rolled_back"]["reason"] == "latency doubled" and v2["rolled_back"]["by"]
    event = registry["history"][-1]
    assert event["action"] == "rollback" and event["from_version"] == 2 and event["to_version"] == 1
    assert event["actor"] and event["time"] and event["reason"] == "latency doubled"
    assert state["resources"]["endpoint.churn-api"]["status"]["version"] == 1

    after_yaml = (repo / MODELS).read_text()
    changed = [
        (a, b) for a, b in zip(before_yaml.splitlines(), after_yaml.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1
    assert "production: 1" in changed[0][1] and "# " in changed[0][1], "inline comment kept"
    assert "# Stage pins." in after_yaml

    assert invoke(repo, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_rollback_without_write_back_never_quietly_repromotes(two_versions: Path) -> None:
    repo = two_versions
    before_yaml = (repo / MODELS).read_text()
    result = invoke(repo, "rollback", "churn-predictor", "-e", "dev", "--no-write-back")
    assert result.exit_code == 0, result.output
    assert (repo / MODELS).read_text() == before_yaml
    text = invoke(repo, "plan", "-e", "dev").stdout
    assert "rolled back" in text
    plan = plan_json(repo)
    assert not [c for c in plan["resource_changes"] if c["address"].startswith("stage.")]
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0
    assert state_of(repo)["models"]["churn-predictor"]["stages"]["production"] == 1


def test_rollback_to_a_named_version_and_errors(two_versions: Path) -> None:
    repo = two_versions
    before = (repo / "state" / "dev.json").read_text()
    for args, message in [
        (["--to", "9"], "has no version 9"),
        (["--to", "2"], "already in production"),
    ]:
        result = invoke(repo, "rollback", "churn-predictor", "-e", "dev", *args)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert "Traceback" not in result.output
    result = invoke(repo, "rollback", "churn-predictr", "-e", "dev")
    assert result.exit_code == 1 and "did you mean 'churn-predictor'" in result.stderr
    assert (repo / "state" / "dev.json").read_text() == before
    assert invoke(repo, "rollback", "churn-predictor", "-e", "dev", "--to", "1").exit_code == 0


def test_rollback_with_nothing_earlier_is_a_clear_error(applied: Path) -> None:
    result = invoke(applied, "rollback", "churn-predictor", "-e", "dev")
    assert result.exit_code == 1
    assert "no earlier production version" in result.stderr


def test_rollback_refuses_a_tampered_target(two_versions: Path) -> None:
    repo = two_versions
    uri = state_of(repo)["models"]["churn-predictor"]["versions"][0]["artifact"]["uri"]
    (repo / uri).write_bytes(b"not a model")
    result = invoke(repo, "rollback", "churn-predictor", "-e", "dev")
    assert result.exit_code == 1 and "tampered" in result.stderr
    assert state_of(repo)["models"]["churn-predictor"]["stages"]["production"] == 2


def test_rollback_as_a_process_serves_the_previous_version_without_training(two_versions: Path) -> None:
    proc = run_process(two_versions, "rollback", "churn-predictor", "-e", "dev")
    assert proc.returncode == 0, proc.stderr
    state = state_of(two_versions)
    assert state["models"]["churn-predictor"]["stages"]["production"] == 1
    assert state["resources"]["endpoint.churn-api"]["status"]["version"] == 1
    runs = json.loads(invoke(two_versions, "runs", "list", "-e", "dev", "--json").stdout)
    assert len(runs) == 2  # v1 and v2 only: rollback trained nothing
