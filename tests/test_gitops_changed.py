"""`changed_environments` and `mlctl plan --changed` against real temporary git repositories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import invoke
from mlctl.errors import MlctlError
from mlctl.example.init import init_repo
from mlctl.gitops.changed import changed_environments


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_git(root: Path) -> Path:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    init_repo(root, generate_data=False)
    (root / "README.md").write_text("hello\n")
    make_git(root)
    git(root, "checkout", "-q", "-b", "feature")
    return root


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_one_environment_changed_on_the_branch(project: Path) -> None:
    append(project / "environments" / "prod" / "models.yaml", "# tweak\n")
    commit(project)
    found = changed_environments(project, "main")
    assert found.environments == ["prod"]
    assert found.reasons == {"prod": ["environments/prod/models.yaml"]}
    assert found.base == "main" and found.merge_base == git(project, "rev-parse", "main")
    assert found.head == git(project, "rev-parse", "HEAD")
    assert "prod (environments/prod/models.yaml)" in found.describe()


def test_merge_base_ignores_what_moved_on_main(project: Path) -> None:
    append(project / "environments" / "dev" / "models.yaml", "# on the branch\n")
    commit(project)
    git(project, "checkout", "-q", "main")
    append(project / "environments" / "prod" / "data.yaml", "# on main meanwhile\n")
    commit(project)
    git(project, "checkout", "-q", "feature")
    assert changed_environments(project, "main").environments == ["dev"]


def test_unrelated_files_change_nothing(project: Path) -> None:
    append(project / "README.md", "more\n")
    commit(project)
    found = changed_environments(project, "main")
    assert found.environments == [] and found.files == ["README.md"]
    assert found.describe() == "no environment changed"


def test_provider_change_plans_the_environments_using_it(project: Path) -> None:
    append(project / "providers" / "local.yaml", "# comment\n")
    (project / "providers" / "unused.yaml").write_text("type: local\n")
    commit(project)
    found = changed_environments(project, "main")
    assert found.environments == ["dev", "prod"]
    assert found.reasons["dev"] == ["providers/local.yaml"]


def test_new_unused_provider_changes_nothing(project: Path) -> None:
    (project / "providers" / "spare.yaml").write_text("type: local\n")
    commit(project)
    assert changed_environments(project, "main").environments == []


def test_package_change_plans_every_environment(project: Path) -> None:
    (project / "src" / "mlctl").mkdir(parents=True)
    (project / "src" / "mlctl" / "x.py").write_text("x = 1\n")
    commit(project)
    assert changed_environments(project, "main").environments == ["dev", "prod"]


def test_working_tree_counts_unless_excluded(project: Path) -> None:
    append(project / "environments" / "dev" / "monitors.yaml", "# unstaged\n")
    (project / "environments" / "prod" / "extra.yaml").write_text("{}\n")  # untracked
    assert changed_environments(project, "main").environments == ["dev", "prod"]
    assert changed_environments(project, "main", include_worktree=False).environments == []


def test_deleted_environment_is_reported_not_planned(project: Path) -> None:
    git(project, "rm", "-q", "-r", "environments/dev")
    commit(project)
    found = changed_environments(project, "main")
    assert found.environments == [] and found.removed == ["dev"]


def test_project_in_a_subdirectory(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    init_repo(top / "ml", generate_data=False)
    (top / "environments" / "dev").mkdir(parents=True)  # outside the project: ignored
    (top / "environments" / "dev" / "x.yaml").write_text("{}\n")
    make_git(top)
    git(top, "checkout", "-q", "-b", "feature")
    append(top / "environments" / "dev" / "x.yaml", "# outside\n")
    append(top / "ml" / "environments" / "prod" / "models.yaml", "# inside\n")
    commit(top)
    found = changed_environments(top / "ml", "main")
    assert found.environments == ["prod"]
    assert found.files == ["environments/prod/models.yaml"]


def test_default_base_from_github_base_ref(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append(project / "environments" / "dev" / "models.yaml", "# x\n")
    commit(project)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert changed_environments(project).base == "main"  # origin/main does not exist here
    monkeypatch.delenv("GITHUB_BASE_REF")
    assert changed_environments(project).environments == ["dev"]


def test_errors(project: Path, tmp_path: Path) -> None:
    with pytest.raises(MlctlError, match="--base nope: no such branch"):
        changed_environments(project, "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(MlctlError, match="not inside one"):
        changed_environments(tmp_path / "plain")
    git(project, "checkout", "-q", "--orphan", "island")
    git(project, "commit", "-q", "-m", "unrelated")
    with pytest.raises(MlctlError, match="no common ancestor"):
        changed_environments(project, "main")


# --- the CLI, on the example repository with data ----------------------------------------


@pytest.fixture
def gitrepo(repo: Path) -> Path:
    make_git(repo)
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def test_plan_changed_json_and_markdown(gitrepo: Path) -> None:
    text = (gitrepo / "environments" / "dev" / "models.yaml").read_text()
    (gitrepo / "environments" / "dev" / "models.yaml").write_text(
        text.replace("team: growth", "team: retention")
    )
    commit(gitrepo)
    result = invoke(gitrepo, "plan", "--changed", "--base", "main", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [p["mlctl"]["environment"] for p in document["environments"]] == ["dev"]
    assert document["changed_files"] == ["environments/dev/models.yaml"]
    assert "Changed since main" in result.stderr

    result = invoke(
        gitrepo,
        "plan",
        "--changed",
        "--base",
        "main",
        "--format",
        "markdown",
        "--out",
        str(gitrepo / "plans"),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!-- mlctl-plan -->\n## mlctl plan: `dev`\n")
    assert "### `dev`: Plan:" in result.stdout
    saved = json.loads((gitrepo / "plans" / "dev.json").read_text())
    assert saved["environment"] == "dev" and saved["resource_changes"]
    assert not (gitrepo / "plans" / "prod.json").exists()

    result = invoke(gitrepo, "plan", "--changed", "--base", "main", "--detailed-exitcode")
    assert result.exit_code == 2 and "=== environment dev ===" in result.stdout


def test_plan_changed_nothing(gitrepo: Path) -> None:
    result = invoke(
        gitrepo, "plan", "--changed", "--base", "main", "--format", "markdown", "--detailed-exitcode"
    )
    assert result.exit_code == 0
    assert "No environment changed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--changed", "-e", "dev", "--base", "main"], "-e and --changed exclude each other"),
        (["plan", "--changed", "--base", "nope"], "--base nope: no such branch"),
        (["plan"], "Missing option '-e' / '--env': plan needs an environment"),
        (["plan", "--changed", "--base", "main", "--target", "model.x"], "--target/--replace"),
    ],
)
def test_plan_changed_user_errors(gitrepo: Path, args: list[str], message: str) -> None:
    result = invoke(gitrepo, *args)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
