"""The README's five-minute tour is a test: its commands run, in order, as a user types them.

The tour is the ```console blocks between ``<!-- tour:begin -->`` and ``<!-- tour:end -->``
in README.md; the "From here" commands after it, between ``<!-- tour:from-here:begin -->``
and ``<!-- tour:from-here:end -->``, run next, in the same repository. A line starting with
``$ `` is a command and must exit 0; the lines under it are its output (stdout and stderr
together), matched line by line, in order, as a glob:

* a line shown is a line printed, the next one after the previous match (surrounding
  spaces and blank lines do not count); ``…`` inside a line stands for any text;
* a line that is only ``…`` stands for one or more lines left out, there and nowhere else.

So where the README shows no ``…`` line, the output is exactly the lines shown (a command
shown without output prints nothing), and no line can be reordered, dropped or added
without the test failing.

Commands run with ``bash -c`` in a scratch HOME (the tour starts with ``mlctl init
~/churn-tour``), with this virtualenv first on PATH and ``PYTHONUNBUFFERED=1`` (so the order
of stdout and stderr lines is the order they were printed). Three forms are a shell's own
and are handled here: ``cd DIR``; ``COMMAND &`` (started in the background, stopped at the
end); ``kill %1`` (stops it). The server's port (``:8000`` in a URL, ``--port 8000``) is
replaced by a free port, so the test can run next to anything else.
"""

from __future__ import annotations

import functools
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
FROM_HERE = ("<!-- tour:from-here:begin -->", "<!-- tour:from-here:end -->")
ELLIPSIS = "…"
PORT = re.compile(r"(:|--port )8000\b")
STEP_TIMEOUT = 300  # seconds; the slowest step trains a model (about 15 s here)


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def tour_steps(text: str, begin: str = BEGIN, end: str = END) -> list[Step]:
    """The commands of the section between ``begin`` and ``end``, with their abridged
    outputs (blank lines dropped, ``…`` lines kept), in order."""
    assert text.count(begin) == 1 and text.count(end) == 1, f"README.md must hold {begin} ... {end} once"
    section = text.split(begin, 1)[1].split(end, 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"^```console\n(.*?)^```", section, flags=re.S | re.M):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:].strip()))
            elif line.strip():
                assert steps, f"output before the first command in the section: {line!r}"
                steps[-1].expected.append(line.strip())
    return steps


def from_here_steps(text: str) -> list[Step]:
    """The "From here" commands, run after the tour in its repository."""
    return tour_steps(text, *FROM_HERE)


def line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split(ELLIPSIS)))


def unmatched(expected: list[str], output: str) -> str | None:
    """None when ``output`` matches ``expected`` (see the module docstring), else the first
    README line that has no place in it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    patterns = [None if e == ELLIPSIS else line_pattern(e) for e in expected]

    @functools.cache
    def match(i: int, j: int) -> bool:  # patterns[i:] against lines[j:]
        if i == len(patterns):
            return j == len(lines)
        pattern = patterns[i]
        if pattern is None:  # one or more lines left out
            return any(match(i + 1, k) for k in range(j + 1, len(lines) + 1))
        return j < len(lines) and pattern.fullmatch(lines[j]) is not None and match(i + 1, j + 1)

    if match(0, 0):
        return None
    # The longest prefix of the README lines that matches some prefix of the output.
    reach = {0}
    for i, pattern in enumerate(patterns):
        if pattern is None:
            following = {k for j in reach for k in range(j + 1, len(lines) + 1)}
        else:
            following = {j + 1 for j in reach if j < len(lines) and pattern.fullmatch(lines[j])}
        if not following:
            return expected[i]
        reach = following
    return "(end of the README lines: the command printed more than they show; add a `…` line?)"


def test_readme_tour_parses() -> None:
    """Cheap guard (no training): the tour is there, well formed, and walks the whole loop."""
    text = README.read_text()
    steps = tour_steps(text)
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
    # after the automatic rollback: the pin is committed and the server is seen to follow
    rollback = max(i for i, c in enumerate(commands) if c.startswith("mlctl monitor run"))
    assert any(c.startswith("git commit ") for c in commands[rollback:])
    assert any("/ready" in c for c in commands[rollback:])
    after = from_here_steps(text)
    assert after and not any(s.command.endswith("&") or s.command.startswith("cd ") for s in after)
    for step in steps + after:
        if step.command.startswith("mlctl ") and not step.command.endswith("&"):
            assert step.expected, f"no expected output for {step.command!r}"
        if step.command.startswith("curl "):
            assert "--fail-with-body" in step.command, f"an HTTP error must fail {step.command!r}"


def test_output_matching_is_ordered_and_strict() -> None:
    """The rules of the module docstring, on their own (no tour run)."""
    output = "Monitors of dev:\n\n  a: FIRED\n    detail\n  b: ok\n2 monitors run.\n"
    assert unmatched(["…", "a: FIRED", "…", "b: ok", "2 monitors run."], output) is None
    assert unmatched(["…", "a: …", "…", "2 monitors …"], output) is None
    assert unmatched(["…", "b: ok", "a: FIRED", "…"], output) == "a: FIRED"  # order
    assert unmatched(["Monitors of dev:", "a: FIRED", "b: ok", "…"], output) == "b: ok"  # a gap needs …
    assert unmatched(["…", "b: ok"], output) is not None  # lines after the last one shown
    assert unmatched(["Monitors of dev:", "…", "a: FIRED", "…"], output) == "a: FIRED"  # … is 1+ lines
    assert unmatched([], "") is None and unmatched([], "\n\n") is None
    assert unmatched([], "Updated 1 path from the index\n") is not None


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
        command = PORT.sub(rf"\g<1>{self.port}", step.command)
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
            self.job = None  # the steps after it run without a background job
        else:
            self._check_job(command)
            output = self._shell(command)
            expected = [PORT.sub(rf"\g<1>{self.port}", e) for e in step.expected]
            missing = unmatched(expected, output)
            assert missing is None, (
                f"$ {command}\n{output}\nREADME line not matched in order (rules: tests/test_tour.py): "
                f"{missing!r}"
            )
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
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave in the order they were written
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
    text = README.read_text()
    steps = tour_steps(text)
    try:
        for step in [*steps, *from_here_steps(text)]:
            tour.run(step)
    finally:
        tour.stop()
        slowest = sorted(tour.timings, key=lambda t: -t[1])[:5]
        total = sum(t for _, t in tour.timings[: len(steps)])
        print("tour:", f"{total:.0f} s;", "with From here:", f"{sum(t for _, t in tour.timings):.0f} s;")
        print("slowest:", [(c, round(t, 1)) for c, t in slowest])
    # The README promises under ten minutes: the time is printed above, never asserted.
