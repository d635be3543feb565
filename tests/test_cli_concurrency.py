"""Real processes: two applies at once, an apply killed mid-training, lock recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import MLCTL, edit, invoke, run_process, state_of

MODELS = Path("environments/dev/models.yaml")


def start_apply(repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MLCTL, "-C", str(repo), "apply", "-e", "dev", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> list[str]:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"process ended before {needle!r}: {''.join(seen)}")
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"timed out waiting for {needle!r}")


def test_second_apply_is_refused_naming_the_holder(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 7")
    first = start_apply(applied)
    try:
        wait_for(first, "model_version.churn-predictor: training")
        second = run_process(applied, "apply", "-e", "dev", "--auto-approve")
        assert second.returncode == 1
        assert "locked" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "apply" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert first.wait(timeout=300) == 0
    registry = state_of(applied)["models"]["churn-predictor"]
    assert [v["version"] for v in registry["versions"]] == [1, 2]
    assert registry["stages"]["production"] == 2


def test_apply_killed_during_training_converges_on_rerun(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 7")
    before = state_of(applied)
    proc = start_apply(applied)
    wait_for(proc, "training RandomForestClassifier")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    after = state_of(applied)  # parseable
    assert after["models"]["churn-predictor"]["versions"] == before["models"]["churn-predictor"]["versions"]
    assert after["lineage"] == before["lineage"]

    # The kernel released the lock with the process: no stale lock, no force-unlock needed.
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    registry = state_of(applied)["models"]["churn-predictor"]
    numbers = [v["version"] for v in registry["versions"]]
    identities = [v["identity"] for v in registry["versions"]]
    assert numbers == [1, 2] and len(set(identities)) == 2
    assert registry["stages"]["production"] == 2
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0


def test_state_is_parseable_at_every_moment_of_an_apply(applied: Path) -> None:
    edit(applied / MODELS, "max_depth: 8", "max_depth: 6")
    path = applied / "state" / "dev.json"
    first = json.loads(path.read_text())["serial"]
    proc = start_apply(applied)
    serials = set()
    while proc.poll() is None:
        serials.add(json.loads(path.read_text())["serial"])  # every read parses
        time.sleep(0.01)
    assert proc.returncode == 0
    last = json.loads(path.read_text())["serial"]
    assert serials <= set(range(first, last + 1))
    # one write per action (update, train, two promotions, deploy), not one at the end; the
    # writes after training land milliseconds apart, so polling cannot be relied on to see each
    assert last - first > 2, "the executor checkpoints after every action"


def test_force_unlock_of_a_live_holder_is_refused_and_wrong_ids_are_named(applied: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from mlctl.state.local import LocalBackend\n"
            "from mlctl.state.backend import LockInfo\n"
            f"b = LocalBackend({str(applied / 'state' / 'dev.json')!r})\n"
            "info = LockInfo.new('apply', 'dev')\n"
            "b.lock(info)\n"
            "print(info.id, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        lock_id = holder.stdout.readline().strip()
        blocked = invoke(applied, "rollback", "churn-predictor", "-e", "dev")
        assert blocked.exit_code == 1 and lock_id in blocked.stderr
        wrong = invoke(applied, "force-unlock", "-e", "dev", "not-the-id")
        assert wrong.exit_code == 1 and lock_id in wrong.stderr
        live = invoke(applied, "force-unlock", "-e", "dev", lock_id)
        assert live.exit_code == 1 and str(holder.pid) in live.stderr
    finally:
        holder.kill()
        holder.wait()
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
