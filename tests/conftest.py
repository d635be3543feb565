"""Shared fixtures: an example repository (fast training params), applied once per session
and copied per test, and a CLI runner that goes through the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from mlctl.cli.main import cli
from mlctl.example.init import init_repo

MLCTL = [sys.executable, "-m", "mlctl"]


def make_fast(repo: Path) -> None:
    """Fewer, shallower trees so each training takes about a second; gates still pass."""
    models = repo / "environments" / "dev" / "models.yaml"
    text = models.read_text()
    text = text.replace("n_estimators: 100 ", "n_estimators: 25  ").replace("max_depth: 10", "max_depth: 8")
    # Single-row latency depends on machine load; the gate itself is tested on its own.
    text = text.replace("max_latency_ms: 250 ", "max_latency_ms: 2000")
    models.write_text(text)


def pytest_configure(config: pytest.Config) -> None:
    """Tests run as on a developer's machine, wherever the suite runs: without ``CI``, so the
    CI-only refusals (a dirty tree, a local state backend: see :mod:`mlctl.operations.ci`) do
    not depend on the host. This runs before any fixture, session-scoped ones included, and
    before any subprocess a test starts. Tests of those refusals set ``CI=true`` themselves.
    Likewise ``GITHUB_EVENT_NAME``: a push run skips the pull-request endpoint check
    (:func:`mlctl.operations.ci.reviewed_run`); its tests set the event they mean."""
    os.environ.pop("CI", None)
    os.environ.pop("GITHUB_EVENT_NAME", None)


@pytest.fixture(autouse=True)
def _own_secrets() -> Any:
    """Each test starts with an empty redaction registry, as each command does: a value one
    test remembered as a secret never rewrites another test's output."""
    from mlctl import redaction

    with redaction.scope({}):
        yield


@pytest.fixture(scope="session")
def example_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh `mlctl init` repository with fast training params (not applied)."""
    root = tmp_path_factory.mktemp("template") / "repo"
    init_repo(root)
    make_fast(root)
    return root


@pytest.fixture(scope="session")
def applied_template(example_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example repository after one successful `mlctl apply -e dev`."""
    root = tmp_path_factory.mktemp("applied") / "repo"
    shutil.copytree(example_template, root)
    result = invoke(root, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def repo(example_template: Path, tmp_path: Path) -> Path:
    """A private copy of the unapplied example repository."""
    target = tmp_path / "repo"
    shutil.copytree(example_template, target)
    return target


@pytest.fixture
def applied(applied_template: Path, tmp_path: Path) -> Path:
    """A private copy of the applied example repository (v1 in staging and production), its
    versions stamped as trained now: the example retrains on a schedule (Mondays 06:00 UTC),
    and a tick between the session's apply and this test must not plan a retraining the test
    did not ask for (tests of the schedule set their own training times)."""
    from mlctl.state.document import State, utcnow

    target = tmp_path / "repo"
    shutil.copytree(applied_template, target)
    state_file = target / "state" / "dev.json"
    state = State.from_json(state_file.read_text())
    for registry in state.models.values():
        for version in registry.versions:
            version.created_at = utcnow()
    state_file.write_bytes(state.to_bytes())
    return target


def invoke(repo: Path, *args: str, input: str | None = None) -> Result:
    """Run `mlctl -C repo ARGS...` through the real root group (error boundary included)."""
    runner = CliRunner()
    return runner.invoke(cli, ["-C", str(repo), *args], input=input, catch_exceptions=False)


@pytest.fixture
def mlctl() -> Callable[..., Result]:
    return invoke


def run_process(repo: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run mlctl as a real process (for signals, locks and exit codes end to end)."""
    return subprocess.run([*MLCTL, "-C", str(repo), *args], capture_output=True, text=True, **kw)


def state_of(repo: Path, env: str = "dev") -> dict[str, Any]:
    return json.loads((repo / "state" / f"{env}.json").read_text())


def plan_json(repo: Path, *extra: str) -> dict[str, Any]:
    result = invoke(repo, "plan", "-e", "dev", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
