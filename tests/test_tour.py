"""The README's five-minute tour is a test: its commands run, in order, as a user types them.

The tour is the ```console blocks between ``<!-- tour:begin -->`` and ``<!-- tour:end -->``
in README.md. A line starting with ``$ `` is a command; the lines under it are its output,
abridged: every one of them must match a line the command really prints (``…`` stands for
any text, a line that is only ``…`` for lines left out), and every command must exit 0.

Commands run with ``bash -c`` in a scratch HOME (the tour starts with ``mlctl init
~/churn-tour``), with this virtualenv first on PATH. Three forms are a shell's own and are
handled here: ``cd DIR``; ``COMMAND &`` (started in the background, stopped at the end);
``kill %1`` (stops it). The server's port ``8000`` is replaced by a free port, so the test
can run next to anything else.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- tour:begin -->", "<!-- tour:end -->"
ELLIPSIS = "…"
STEP_TIMEOUT = 300  # seconds; the slowest step trains a model (about 15 s here)


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def tour_steps(text: str) -> list[Step]:
    """The tour's commands with their abridged outputs, in order."""
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"README.md must hold {BEGIN} ... {END} once"
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"^```console\n(.*?)^```", section, flags=re.S | re.M):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:].strip()))
            elif line.strip() and line.strip() != ELLIPSIS:
                assert steps, f"output before the first command in the tour: {line!r}"
                steps[-1].expected.append(line.strip())
    return steps


def line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split(ELLIPSIS)))


def test_readme_tour_parses() -> None:
    """Cheap guard (no training): the tour is there, well formed, and walks the whole loop."""
    steps = tour_steps(README.read_text())
    commands = [s.command for s in steps]
    assert commands[0].startswith("mlctl init ")
    for needed in (
        "mlctl plan -e dev",
        "mlctl apply -e dev",
        "mlctl serve ",
        "/predict",
        "mlctl demo traffic",
        "mlctl monitor run",
        "git diff",
    ):
        assert any(needed in c for c in commands), needed
    assert sum(c.endswith("&") for c in commands) == 1 and commands[-1] == "kill %1"
    for step in steps:
        if step.command.startswith("mlctl ") and not step.command.endswith("&"):
            assert step.expected, f"no expected output for {step.command!r}"


class Tour:
    """Runs steps like a terminal would: one working directory, one background job."""

    def __init__(self, home: Path, port: int) -> None:
        self.cwd = home
        self.port = port
        self.env = _environment(home)
        self.job: subprocess.Popen[bytes] | None = None
        self.job_log: IO[bytes] | None = None
        self.log_path = home.parent / "background.log"
        self.timings: list[tuple[str, float]] = []

    def run(self, step: Step) -> None:
        command = step.command.replace("8000", str(self.port))
        started = time.monotonic()
        if command.startswith("cd "):
            self.cwd = Path(self._shell(f"{command} && pwd").strip())
        elif command.endswith("&"):
            assert self.job is None, "the tour starts one background job"
            self.job_log = self.log_path.open("wb")
            self.job = subprocess.Popen(
                ["bash", "-c", "exec " + command[:-1].strip()],
                cwd=self.cwd,
                env=self.env,
                stdout=self.job_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        elif command == "kill %1":
            assert self.job is not None and self.job.poll() is None, self._job_output()
            self.job.send_signal(signal.SIGTERM)
            self.job.wait(timeout=30)
        else:
            self._check_job(command)
            output = self._shell(command)
            missing = [
                e
                for e in step.expected
                if not any(
                    line_pattern(e.replace("8000", str(self.port))).fullmatch(a.strip())
                    for a in output.splitlines()
                )
            ]
            assert not missing, f"$ {command}\n{output}\nREADME lines not in this output: {missing}"
        self.timings.append((command, time.monotonic() - started))

    def _shell(self, command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        assert done.returncode == 0, f"$ {command}\nexit {done.returncode}\n{done.stdout}"
        return done.stdout

    def _check_job(self, command: str) -> None:
        if self.job is not None:
            assert self.job.poll() is None, (
                f"the background job died before `{command}`:\n{self._job_output()}"
            )

    def _job_output(self) -> str:
        if self.job_log is not None:
            self.job_log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.job is not None and self.job.poll() is None:
            os.killpg(self.job.pid, signal.SIGTERM)
            try:
                self.job.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.job.pid, signal.SIGKILL)
                self.job.wait()
        if self.job_log is not None:
            self.job_log.close()


def _environment(home: Path) -> dict[str, str]:
    """A user's shell: this virtualenv on PATH, git configured, no CI and no mlctl settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCTL_", "GIT_", "PYTEST_")) and k not in ("CI", "GITHUB_ACTIONS")
    }
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLCONFIGDIR"] = os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".config" / "matplotlib")
    env["HOME"] = str(home)
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"] = "Tour Taker"
        env[f"GIT_{who}_EMAIL"] = "tour@example.com"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_readme_tour_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    tour = Tour(home, _free_port())
    try:
        for step in tour_steps(README.read_text()):
            tour.run(step)
    finally:
        tour.stop()
        slowest = sorted(tour.timings, key=lambda t: -t[1])[:5]
        print("tour:", f"{sum(t for _, t in tour.timings):.0f} s;", "slowest:", slowest)
    assert sum(t for _, t in tour.timings) < 600, "the tour must take under ten minutes"
