"""Git facts on the CLI: `rollback --commit/--branch` (message, changed file, author) and
`apply` refusing a dirty tree in CI unless --allow-dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import edit, invoke, state_of

MODELS = "environments/dev/models.yaml"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def init_git(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Repo Owner")
    git(repo, "config", "user.email", "owner@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")


@pytest.fixture
def two_versions(applied: Path) -> Path:
    """v2 in production, v1 before it, all committed."""
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    init_git(applied)
    return applied


def test_rollback_commit(two_versions: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_ACTOR", "oncall-bob")
    head = git(two_versions, "rev-parse", "HEAD")
    result = invoke(
        two_versions, "rollback", "churn-predictor", "-e", "dev", "--reason", "p95 doubled", "--commit"
    )
    assert result.exit_code == 0, result.output
    assert "committed production: 1" in result.stdout
    assert git(two_versions, "rev-parse", "HEAD^") == head
    message = git(two_versions, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "mlctl rollback: churn-predictor in dev production v2 -> v1"
    assert "Reason: p95 doubled" in message and "Actor: oncall-bob" in message
    assert git(two_versions, "log", "-1", "--format=%an <%ae>") == "Repo Owner <owner@example.com>"
    assert git(two_versions, "show", "--name-only", "--format=", "HEAD").splitlines() == [MODELS]
    assert "production: 1" in git(two_versions, "show", "HEAD:" + MODELS)
    assert git(two_versions, "status", "--porcelain", "--", "environments") == ""
    assert state_of(two_versions)["models"]["churn-predictor"]["stages"]["production"] == 1


def test_rollback_commit_on_a_branch(two_versions: Path) -> None:
    result = invoke(two_versions, "rollback", "churn-predictor", "-e", "dev", "--branch", "rollback/churn")
    assert result.exit_code == 0, result.output
    assert "on branch rollback/churn" in result.stdout
    assert git(two_versions, "rev-parse", "--abbrev-ref", "HEAD") == "rollback/churn"
    assert "production: 1" in git(two_versions, "show", "rollback/churn:" + MODELS)
    assert "production: 1" not in git(two_versions, "show", "main:" + MODELS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--commit", "--no-write-back"], "cannot be combined with --no-write-back"),
        (["--branch", "bad..name"], "not a valid git branch name"),
    ],
)
def test_rollback_commit_user_errors(two_versions: Path, args: list[str], message: str) -> None:
    before = (two_versions / "state" / "dev.json").read_bytes()
    result = invoke(two_versions, "rollback", "churn-predictor", "-e", "dev", *args)
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (two_versions / "state" / "dev.json").read_bytes() == before


def test_rollback_commit_outside_git(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    before = (applied / "state" / "dev.json").read_bytes()
    result = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--commit")
    assert result.exit_code == 1 and "--commit needs a git repository" in result.stderr
    assert (applied / "state" / "dev.json").read_bytes() == before


def test_apply_in_ci_refuses_a_dirty_tree(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_git(applied)
    edit(applied / MODELS, "team: growth", "team: retention")
    before = (applied / "state" / "dev.json").read_bytes()
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve", "--allow-local-state")
    assert result.exit_code == 1
    assert "refusing to apply in CI from a dirty tree" in result.stderr and "--allow-dirty" in result.stderr
    assert (applied / "state" / "dev.json").read_bytes() == before
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve", "--allow-dirty", "--allow-local-state")
    assert result.exit_code == 0, result.output
    assert state_of(applied)["git"]["dirty"] is True
    monkeypatch.setenv("CI", "false")  # outside CI a dirty tree is recorded, not refused
    edit(applied / MODELS, "team: retention", "team: growth")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0


def test_apply_in_ci_from_a_clean_tree(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_git(applied)
    monkeypatch.setenv("CI", "true")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve", "--allow-local-state")
    assert result.exit_code == 0, result.output
