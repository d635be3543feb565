"""State that outlives the runner: in CI (``CI=true``), commands that write state refuse a
``local`` backend (the runner's disk is gone when the job ends) with one line saying why and
how to move to S3, unless ``--allow-local-state``; nothing is read or changed before."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import invoke, state_of

pytestmark = pytest.mark.slow  # the `applied` fixture trains once per session


def refused(result_stderr: str, command: str) -> None:
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr
    line = lines[0]
    assert f"refusing to {command} in CI with a local state backend" in line
    assert "state/dev.json" in line and "lost when the job ends" in line
    assert "mlctl init-backend -e dev" in line and "--allow-local-state" in line
    assert "Traceback" not in result_stderr


def test_apply_in_ci_refuses_local_state(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (applied / "state" / "dev.json").read_bytes()
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1
    refused(result.stderr, "apply")
    assert result.stdout == ""  # refused before planning
    assert (applied / "state" / "dev.json").read_bytes() == before
    allowed = invoke(applied, "apply", "-e", "dev", "--auto-approve", "--allow-local-state")
    assert allowed.exit_code == 0, allowed.output
    monkeypatch.setenv("CI", "false")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0


def test_rollback_in_ci_refuses_local_state(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = applied / "environments" / "dev" / "models.yaml"
    models.write_text(models.read_text().replace("max_depth: 8", "max_depth: 6", 1))
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    before = (applied / "state" / "dev.json").read_bytes()
    pins = models.read_bytes()
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "rollback", "churn-predictor", "-e", "dev")
    assert result.exit_code == 1
    refused(result.stderr, "roll back")
    assert (applied / "state" / "dev.json").read_bytes() == before and models.read_bytes() == pins
    allowed = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--allow-local-state")
    assert allowed.exit_code == 0, allowed.output
    assert state_of(applied)["models"]["churn-predictor"]["stages"]["production"] == 1


def test_monitor_with_actions_in_ci_refuses_local_state(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (applied / "state" / "dev.json").read_bytes()
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "monitor", "run", "-e", "dev")
    assert result.exit_code == 1
    refused(result.stderr, "run monitors with retrain/rollback actions")
    assert (applied / "state" / "dev.json").read_bytes() == before


def test_read_only_commands_in_ci_are_not_refused(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "plan", "-e", "dev")
    assert result.exit_code == 0, result.output
