"""Conventions Terraform users reach for: ``--lock-timeout``, ``MLCTL_ENV``, shell completion,
coloured plan symbols on a terminal only, and a heartbeat line during long steps in CI logs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import seaweed
from mlctl.cli.main import cli
from mlctl.cli.options import use_color
from mlctl.cli.output import Progress
from mlctl.engine.events import Event
from mlctl.errors import LockError, MlctlError
from mlctl.plan.model import Plan, ResourceChange
from mlctl.plan.render import render_markdown, render_text
from mlctl.state.backend import LockInfo, acquire, locked, parse_duration
from mlctl.state.local import LocalBackend
from plan.world import write_repo

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)

MLCTL = [str(Path(sys.executable).with_name("mlctl"))]


def invoke(*args: str, env: dict[str, str] | None = None, color: bool = False) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, color=color)


# -- --lock-timeout ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1m30s", 90.0), ("1.5s", 1.5)],
)
def test_durations_read_like_terraforms(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1s", "1x"])
def test_a_bad_duration_is_one_clear_error(text: str) -> None:
    with pytest.raises(MlctlError, match="invalid duration"):
        parse_duration(text)


class HeldTwice:
    """A backend whose lock is held by someone else for the first ``busy`` attempts."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.attempts = 0

    def lock(self, info: LockInfo) -> None:
        self.attempts += 1
        if self.attempts <= self.busy:
            raise LockError("state is locked by another operation: ID x, operation apply, who bob@ci")


def test_acquire_polls_until_the_holder_lets_go() -> None:
    backend = HeldTwice(busy=2)
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    acquire(backend, LockInfo.new("apply", "dev"), 10.0, poll=0.5, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert backend.attempts == 3 and sleeps == [0.5, 0.5]


def test_acquire_gives_up_after_the_timeout_naming_the_holder() -> None:
    backend = HeldTwice(busy=1000)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(LockError, match=r"who bob@ci.*waited 2s for it: --lock-timeout"):
        acquire(backend, LockInfo.new("apply", "dev"), 2.0, poll=0.5, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert backend.attempts == 5  # at 0, 0.5, 1, 1.5 and 2 seconds


def test_without_a_timeout_a_held_lock_fails_at_once() -> None:
    backend = HeldTwice(busy=1)
    with pytest.raises(LockError, match="bob@ci") as raised:
        acquire(backend, LockInfo.new("apply", "dev"), 0.0, sleep=lambda s: pytest.fail("slept"))  # type: ignore[arg-type]
    assert "waited" not in str(raised.value)


def release_later(backend: Any, info: LockInfo, after: float) -> threading.Thread:
    def run() -> None:
        time.sleep(after)
        backend.unlock(info.id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_local_lock_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dev.json"
    holder, waiter = LocalBackend(path), LocalBackend(path)
    held = LockInfo.new("apply", "dev")
    holder.lock(held)
    with pytest.raises(LockError, match="operation apply"), locked(waiter, "rollback", "dev"):
        pass
    thread = release_later(holder, held, 0.3)
    with locked(waiter, "rollback", "dev", timeout=60) as info:
        assert waiter.lock_holder() == info
    thread.join()


def test_s3_lock_is_waited_for(s3: Any) -> None:
    from mlctl.state.s3 import S3Backend
    from seaweed import fresh_bucket

    bucket = fresh_bucket(s3)
    holder, waiter = (
        S3Backend(bucket, "dev.json", endpoint_url=s3.endpoint_url, region="us-east-1") for _ in "ab"
    )
    held = LockInfo.new("apply", "dev")
    holder.lock(held)
    with pytest.raises(LockError, match="operation apply"), locked(waiter, "monitor", "dev"):
        pass
    thread = release_later(holder, held, 0.3)
    with locked(waiter, "monitor", "dev", timeout=60) as info:
        holder_now = waiter.lock_holder()
        assert holder_now is not None and holder_now.id == info.id
    thread.join()


def test_apply_with_lock_timeout_fails_naming_holder_after_waiting(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    backend = LocalBackend(root / "state" / "dev.json")
    held = LockInfo.new("apply", "dev")
    backend.lock(held)
    try:
        result = invoke("-C", str(root), "apply", "-e", "dev", "--auto-approve", "--lock-timeout", "1s")
    finally:
        backend.unlock(held.id)
    assert result.exit_code == 1
    assert held.id in result.output and "waited 1s for it" in result.output
    assert not (root / "state" / "dev.json").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["apply"],
        ["rollback", "churn"],
        ["features", "materialize"],
        ["monitor", "run"],
        ["init-backend"],
    ],
)
def test_every_locking_command_takes_lock_timeout(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "--lock-timeout DURATION" in result.output


def test_a_bad_lock_timeout_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("-C", str(write_repo(tmp_path / "repo")), "apply", "-e", "dev", "--lock-timeout", "soon")
    assert result.exit_code != 0 and "invalid duration 'soon'" in result.output


# -- MLCTL_ENV -------------------------------------------------------------------------------


def test_mlctl_env_is_the_default_environment(tmp_path: Path) -> None:
    root = str(write_repo(tmp_path / "repo"))
    plain = invoke("-C", root, "plan", "--format", "json", "--no-refresh", env={"MLCTL_ENV": "dev"})
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["mlctl"]["environment"] == "dev"
    flag = invoke(
        "-C", root, "plan", "-e", "dev", "--format", "json", "--no-refresh", env={"MLCTL_ENV": "nope"}
    )
    assert flag.exit_code == 0, flag.output  # -e wins over the variable
    unset = invoke("-C", root, "state", "list", env={"MLCTL_ENV": ""})
    assert unset.exit_code != 0 and "-e" in unset.output


def test_mlctl_env_does_not_fight_changed(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=root, check=True)
    result = invoke("-C", str(root), "plan", "--changed", "--base", "main", env={"MLCTL_ENV": "dev"})
    assert "exclude each other" not in result.output
    assert result.exit_code == 0, result.output


# -- shell completion ----------------------------------------------------------------------------


def complete(root: Path, line: str, **env: str) -> list[str]:
    """What bash completion offers for the last word of ``mlctl -C ROOT <line>``."""
    words = ["mlctl", "-C", str(root), *line.split(" ")]
    environ = {
        **os.environ,
        "_MLCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1),
        **env,
    }
    environ.pop("MLCTL_ENV", None) if "MLCTL_ENV" not in env else None
    result = subprocess.run(MLCTL, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def two_envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_repo(tmp_path_factory.mktemp("complete") / "repo")
    (root / "environments" / "prod").mkdir()
    (root / "environments" / "prod" / "models.yaml").write_text("models:\n  fraud: {}\n")
    return root


def test_environment_names_complete(two_envs: Path) -> None:
    assert complete(two_envs, "plan -e ") == ["dev", "prod"]
    assert complete(two_envs, "apply -e p") == ["prod"]


def test_model_names_complete_for_the_environment(two_envs: Path) -> None:
    assert complete(two_envs, "rollback -e dev ") == ["churn"]
    assert complete(two_envs, "rollback ", MLCTL_ENV="prod") == ["fraud"]


def test_addresses_complete(two_envs: Path) -> None:
    offered = complete(two_envs, "plan -e dev --target ")
    assert {"model.churn", "model_version.churn", "endpoint.api", "stage.churn.production"} <= set(offered)
    assert complete(two_envs, "apply -e dev --replace model_") == ["model_version.churn"]


def test_completion_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert 'eval "$(_MLCTL_COMPLETE=bash_source mlctl)"' in readme


# -- colour --------------------------------------------------------------------------------------


def colourful_plan() -> Plan:
    changes = [
        ResourceChange(address="dataset.d", type="dataset", name="d", actions=["create"], after={"a": 1}),
        ResourceChange(address="model.m", type="model", name="m", actions=["update"], before={}, after={}),
        ResourceChange(address="monitor.x", type="monitor", name="x", actions=["delete"], before={}),
        ResourceChange(
            address="stage.m.production", type="stage", name="m", actions=["promote"], before={"version": 1}
        ),
        ResourceChange(address="stage.m.staging", type="stage", name="m", actions=["archive"], before={}),
    ]
    return Plan(environment="dev", created_at="t", spec_digest="d", resource_changes=changes)


def test_symbols_are_coloured_only_when_asked() -> None:
    coloured = render_text(colourful_plan(), color=True)
    for code, symbol in (("32", "+"), ("33", "~"), ("31", "-"), ("36", ">"), ("35", "x")):
        assert f"\033[{code}m{symbol}\033[0m" in coloured
    plain = render_text(colourful_plan())
    assert "\033[" not in plain
    assert re.sub(r"\033\[\d+m", "", coloured) == plain


def test_use_color_needs_a_terminal_and_no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False


def test_plan_output_is_plain_in_files_and_ci_logs_and_never_in_markdown_or_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(write_repo(tmp_path / "repo"))
    piped = invoke("-C", root, "plan", "-e", "dev", "--no-refresh", color=True)
    assert piped.exit_code == 0 and "\033[" not in piped.output  # stdout is not a terminal
    monkeypatch.setattr("mlctl.cli.plan_cmd.use_color", lambda: True)  # as on a terminal
    on_tty = invoke("-C", root, "plan", "-e", "dev", "--no-refresh", color=True)
    assert "\033[32m+\033[0m" in on_tty.output
    for fmt in ("markdown", "json"):
        other = invoke("-C", root, "plan", "-e", "dev", "--no-refresh", "--format", fmt, color=True)
        assert other.exit_code == 0 and "\033[" not in other.output
    assert "\033[" not in render_markdown(colourful_plan())


# -- heartbeat in CI logs -------------------------------------------------------------------------


def wait_for(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_long_steps_print_still_training_lines_when_not_a_terminal() -> None:
    log = io.StringIO()
    progress = Progress(log, interval=0.05)
    progress(Event("start", "model_version.churn", "train"))
    wait_for(lambda: log.getvalue().count("still training") >= 2)
    progress(Event("done", "model_version.churn", "train", "trained v2", 1.0))
    lines = log.getvalue().splitlines()
    assert lines[0] == "model_version.churn: training..."
    assert re.fullmatch(r"model_version\.churn: still training\.\.\. \[\d+s elapsed\]", lines[1])
    assert lines[-1] == "model_version.churn: trained v2 [1.0s]"
    assert "\r" not in log.getvalue() and "\033[" not in log.getvalue()
    settled = log.getvalue()
    time.sleep(0.2)
    assert log.getvalue() == settled  # the heartbeat stops with the step


def test_the_heartbeat_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_PROGRESS_INTERVAL", "7")
    assert Progress(io.StringIO()).interval == 7.0
    monkeypatch.delenv("MLCTL_PROGRESS_INTERVAL")
    assert Progress(io.StringIO()).interval == 30.0


def test_every_lazy_command_module_exists_and_names_its_command() -> None:
    """A misspelt module in LAZY_COMMANDS must fail here, not vanish from ``mlctl --help``."""
    import importlib

    import click

    from mlctl.cli.main import LAZY_COMMANDS

    for name, module in LAZY_COMMANDS.items():
        command = importlib.import_module(module).command
        assert isinstance(command, click.Command), module
        assert command.name == name, f"{module} declares {command.name!r}, listed as {name!r}"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    shown = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    hidden = {name for name, mod in LAZY_COMMANDS.items() if importlib.import_module(mod).command.hidden}
    assert shown == set(LAZY_COMMANDS) - hidden
