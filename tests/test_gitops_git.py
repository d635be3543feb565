"""git_info, current_actor and commit_files against real temporary repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlctl.errors import MlctlError
from mlctl.gitops.git import commit_files, current_actor, git_info


def run(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    run(root, "init", "-q", "-b", "main")
    run(root, "config", "user.name", "Test User")
    run(root, "config", "user.email", "test@example.com")
    run(root, "config", "commit.gpgsign", "false")
    (root / "environments" / "dev").mkdir(parents=True)
    (root / "environments" / "dev" / "models.yaml").write_text("models: {}\n")
    (root / "providers").mkdir()
    (root / "providers" / "local.yaml").write_text("type: local\n")
    (root / "state").mkdir()
    (root / "state" / "dev.json").write_text("{}\n")
    (root / "README.md").write_text("hello\n")
    run(root, "add", ".")
    run(root, "commit", "-q", "-m", "init")
    return root


def test_outside_a_repository(tmp_path: Path) -> None:
    info = git_info(tmp_path)
    assert (info.commit, info.branch, info.dirty) == (None, None, False)
    assert git_info(tmp_path / "does-not-exist").commit is None


def test_clean_checkout(repo: Path) -> None:
    info = git_info(repo)
    assert info.commit == run(repo, "rev-parse", "HEAD")
    assert info.branch == "main"
    assert info.dirty is False


def test_state_and_unrelated_changes_are_not_dirty(repo: Path) -> None:
    (repo / "state" / "dev.json").write_text('{"serial": 1}\n')  # tracked, changed by apply
    (repo / "state" / "dev.json.backup").write_text("{}\n")  # untracked
    (repo / ".mlctl").mkdir()
    (repo / ".mlctl" / "plan.json").write_text("{}\n")
    (repo / "README.md").write_text("edited\n")
    (repo / "notes.txt").write_text("scratch\n")
    assert git_info(repo).dirty is False


@pytest.mark.parametrize(
    "change",
    ["modify_env", "stage_provider", "untracked_env", "delete_env"],
)
def test_desired_state_changes_are_dirty(repo: Path, change: str) -> None:
    models = repo / "environments" / "dev" / "models.yaml"
    if change == "modify_env":
        models.write_text("models: {m: {}}\n")
    elif change == "stage_provider":
        (repo / "providers" / "local.yaml").write_text("type: s3\n")
        run(repo, "add", "providers/local.yaml")
    elif change == "untracked_env":
        (repo / "environments" / "dev" / "extra.yaml").write_text("datasets: {}\n")
    else:
        models.unlink()
    assert git_info(repo).dirty is True


def test_gitignored_files_under_environments_are_not_dirty(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.local.yaml\n")
    (repo / "environments" / "dev" / "secret.local.yaml").write_text("x: 1\n")
    assert git_info(repo).dirty is False


def test_project_in_a_subdirectory(repo: Path) -> None:
    project = repo / "ml"
    (project / "environments" / "dev").mkdir(parents=True)
    (project / "environments" / "dev" / "m.yaml").write_text("models: {}\n")
    run(repo, "add", ".")
    run(repo, "commit", "-q", "-m", "sub")
    (repo / "environments" / "dev" / "models.yaml").write_text("changed: 1\n")  # other project
    assert git_info(project).dirty is False
    (project / "environments" / "dev" / "m.yaml").write_text("models: {a: {}}\n")
    assert git_info(project).dirty is True


def test_detached_head_and_empty_repository(repo: Path, tmp_path: Path) -> None:
    sha = run(repo, "rev-parse", "HEAD")
    run(repo, "checkout", "-q", "--detach", sha)
    info = git_info(repo)
    assert (info.commit, info.branch) == (sha, None)

    empty = tmp_path / "empty"
    empty.mkdir()
    run(empty, "init", "-q", "-b", "main")
    info = git_info(empty)
    assert (info.commit, info.branch) == (None, "main")


def test_current_actor_precedence(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    monkeypatch.setenv("MLCTL_ACTOR", "oncall-bot")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert current_actor(repo) == "oncall-bot"
    monkeypatch.delenv("MLCTL_ACTOR")
    assert current_actor(repo) == "octocat"
    monkeypatch.delenv("GITHUB_ACTOR")
    assert current_actor(repo) == "Test User <test@example.com>"


def test_current_actor_falls_back_to_user_at_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("MLCTL_ACTOR", "GITHUB_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "cfg"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "@" in current_actor(tmp_path)


def test_commit_files_commits_only_the_given_paths(repo: Path) -> None:
    models = repo / "environments" / "dev" / "models.yaml"
    models.write_text("models: {m: {stages: {production: 4}}}\n")
    (repo / "README.md").write_text("unrelated edit\n")
    (repo / "providers" / "local.yaml").write_text("type: s3\n")
    run(repo, "add", "providers/local.yaml")  # staged by the user: must stay out of the commit

    sha = commit_files(repo, [Path("environments/dev/models.yaml")], "rollback m to 4")
    assert sha == run(repo, "rev-parse", "HEAD")
    assert run(repo, "show", "--name-only", "--format=%s", sha).splitlines() == [
        "rollback m to 4",
        "",
        "environments/dev/models.yaml",
    ]
    status = run(repo, "status", "--porcelain")
    assert "M  providers/local.yaml" in status  # still staged, not committed
    assert "README.md" in status  # the unrelated edit is left in the working tree


def test_commit_files_on_a_new_branch_with_absolute_path(repo: Path) -> None:
    models = repo / "environments" / "dev" / "models.yaml"
    models.write_text("models: {x: {}}\n")
    sha = commit_files(repo, [models], "pin", branch="rollback/x")
    assert run(repo, "rev-parse", "--abbrev-ref", "HEAD") == "rollback/x"
    assert run(repo, "rev-parse", "rollback/x") == sha
    assert run(repo, "rev-parse", "main") != sha


def test_commit_files_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(MlctlError, match="nothing to commit"):
        commit_files(repo, ["README.md"], "noop")
    with pytest.raises(MlctlError, match="not a file inside"):
        commit_files(repo, [tmp_path / "elsewhere.yaml"], "x")
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(MlctlError, match="not inside a git repository"):
        commit_files(outside, ["a"], "x")


def test_importing_is_cheap() -> None:
    code = "import sys, mlctl.gitops; print('git' in sys.modules, 'ruamel.yaml' in sys.modules)"
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
