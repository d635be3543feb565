"""LocalBackend: atomic writes, backup, conflicts, corrupt files, flock locking, force-unlock.

The multiprocess tests spawn real Python processes and SIGKILL them: a killed holder must not
leave a stale lock, and a writer killed at any instant must leave a parseable state file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlctl
from mlctl.errors import LockError, MlctlError, StateConflictError
from mlctl.files import atomic_write
from mlctl.state import LocalBackend, LockInfo, State, persist
from mlctl.state.document import ResourceState

SRC = str(Path(mlctl.__file__).resolve().parents[1])


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != expected:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"child did not print {expected!r}: {line!r}\n{err}")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


# -- reading and writing ---------------------------------------------------------------------


def test_read_missing_returns_none_and_first_write_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "dev.json"
    backend = LocalBackend(path)
    assert backend.read() is None
    state = persist(backend, State(environment="dev"))
    assert path.exists()
    assert State.from_json(path.read_text()).serial == state.serial == 1
    assert backend.describe() == f"local state file {path}"
    assert not list(path.parent.glob(".*.tmp")), "temp files are cleaned up"


def test_write_does_not_change_serial(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "dev.json")
    backend.read()
    state = State(serial=7)
    backend.write(state)
    assert state.serial == 7
    stored = backend.read()
    assert stored is not None and stored.serial == 7


def test_backup_holds_the_document_from_before_the_command(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    backup = tmp_path / "dev.json.backup"
    backend = LocalBackend(path)
    state = persist(backend, State())
    persist(backend, state)
    persist(backend, state)
    assert not backup.exists(), "there was no state before this command: nothing to back up"
    assert State.from_json(path.read_text()).serial == 3

    # the next command (a new backend object) backs up what the previous one left
    later = LocalBackend(path)
    again = later.read()
    assert again is not None
    persist(later, again)
    persist(later, again)
    assert State.from_json(backup.read_text()).serial == 3, "checkpoints keep the pre-command copy"
    assert State.from_json(path.read_text()).serial == 5


def test_write_conflict_when_another_writer_bumped_the_serial(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    persist(LocalBackend(path), State())
    first, second = LocalBackend(path), LocalBackend(path)
    mine, theirs = first.read(), second.read()
    assert mine is not None and theirs is not None
    persist(second, theirs)
    with pytest.raises(StateConflictError, match="changed by another operation"):
        persist(first, mine)
    assert State.from_json(path.read_text()).serial == 2


def test_checkpoints_still_see_a_writer_that_came_between_them(tmp_path: Path) -> None:
    """A backend that wrote last does not parse its own file again before the next checkpoint,
    yet a write by anyone else in between (same size, same second) is still a conflict."""
    path = tmp_path / "dev.json"
    persist(LocalBackend(path), State())
    first = LocalBackend(path)
    mine = first.read()
    assert mine is not None
    persist(first, mine)
    persist(first, mine)  # the fast path: the file is as this backend left it
    second = LocalBackend(path)
    theirs = second.read()
    assert theirs is not None and len(theirs.to_json()) == len(mine.to_json())
    persist(second, theirs)
    with pytest.raises(StateConflictError, match="changed by another operation"):
        persist(first, mine)
    assert State.from_json(path.read_text()).serial == 4


def test_write_conflict_on_other_lineage(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    persist(LocalBackend(path), State())
    with pytest.raises(StateConflictError, match="lineage"):
        persist(LocalBackend(path), State())  # a fresh document, never read


def test_write_conflict_when_state_was_created_after_reading_none(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    first = LocalBackend(path)
    assert first.read() is None
    persist(LocalBackend(path), State())
    with pytest.raises(StateConflictError, match="created by another operation"):
        persist(first, State())


def test_corrupt_state_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text('{"lineage": "x", "serial": ')
    backend = LocalBackend(path)
    with pytest.raises(MlctlError) as err:
        backend.read()
    message = str(err.value)
    assert message.startswith(f"state file {path} is corrupt: ")
    assert "\n" not in message
    assert not isinstance(err.value, StateConflictError)
    with pytest.raises(MlctlError, match="is corrupt"):
        backend.write(State())
    path.write_text(json.dumps({"serial": "not a number"}))
    with pytest.raises(MlctlError, match="is corrupt"):
        LocalBackend(path).read()


def test_state_from_a_newer_mlctl_is_refused_not_rewritten(tmp_path: Path) -> None:
    """Terraform's rule: a newer format_version is neither read nor overwritten."""
    path = tmp_path / "dev.json"
    document = json.loads(State(environment="dev").to_json())
    document["format_version"] = 2
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    with pytest.raises(MlctlError, match=rf"^{path}: state format_version 2 is newer than this mlctl"):
        LocalBackend(path).read()
    with pytest.raises(MlctlError, match="newer than this mlctl"):
        LocalBackend(path).write(State(environment="dev"))
    assert path.read_bytes() == before


def test_a_newer_state_stops_every_command_with_one_line(tmp_path: Path) -> None:
    """Through the CLI: exit 1, one line naming the file, the state byte-identical."""
    from conftest import invoke
    from mlctl.example.init import init_repo

    repo = tmp_path / "repo"
    init_repo(repo, generate_data=False)
    path = repo / "state" / "dev.json"
    document = json.loads(State(environment="dev").to_json())
    document["format_version"] = 7
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    for args in (
        ("plan", "-e", "dev"),
        ("apply", "-e", "dev", "--auto-approve"),
        ("state", "list", "-e", "dev"),
    ):
        result = invoke(repo, *args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert "format_version 7 is newer than this mlctl" in lines[-1], (args, result.output)
        assert "Traceback" not in result.output
    assert path.read_bytes() == before


def test_atomic_write_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("a")
    path.chmod(0o600)
    atomic_write(path, b"b")
    assert path.read_text() == "b"
    assert path.stat().st_mode & 0o777 == 0o600


# -- locking in one process ------------------------------------------------------------------


def test_lock_unlock_and_holder(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    backend = LocalBackend(path)
    assert backend.lock_holder() is None
    info = LockInfo.new("apply", "dev")
    backend.lock(info)
    assert LockInfo.from_json((tmp_path / "dev.json.lock").read_text()) == info
    assert LocalBackend(path).lock_holder() == info
    with pytest.raises(LockError) as err:
        LocalBackend(path).lock(LockInfo.new("plan", "dev"))
    message = str(err.value)
    assert message == f"state is locked by another operation: {info.describe()}"
    for part in (info.id, "operation apply", info.who, f"pid {info.pid}", info.created):
        assert part in message
    with pytest.raises(LockError):
        backend.lock(LockInfo.new("apply", "dev"))  # not re-entrant
    with pytest.raises(MlctlError, match="does not match"):
        backend.unlock("other-id")
    backend.unlock(info.id)
    assert not (tmp_path / "dev.json.lock").exists()
    assert backend.lock_holder() is None
    with pytest.raises(MlctlError, match="does not hold"):
        backend.unlock(info.id)


def test_force_unlock_without_lock_or_with_wrong_id(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    with pytest.raises(MlctlError, match="no lock is held"):
        LocalBackend(path).force_unlock("abc")
    holder = LocalBackend(path)
    info = LockInfo.new("apply", "dev")
    holder.lock(info)
    with pytest.raises(MlctlError) as err:
        LocalBackend(path).force_unlock("wrong-id")
    assert info.id in str(err.value) and "wrong-id" in str(err.value)
    holder.force_unlock(info.id)  # the holder itself may: same as unlock
    assert LocalBackend(path).lock_holder() is None


def test_force_unlock_refuses_a_live_holder_in_this_process(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    holder = LocalBackend(path)
    info = LockInfo.new("apply", "dev")
    holder.lock(info)
    with pytest.raises(MlctlError, match=f"pid {os.getpid()}.*stop that process"):
        LocalBackend(path).force_unlock(info.id)
    assert LocalBackend(path).lock_holder() == info
    holder.unlock(info.id)


def test_stale_info_is_ignored_and_force_unlock_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    lock_file = tmp_path / "dev.json.lock"
    stale = LockInfo.new("apply", "dev")
    lock_file.write_text(stale.to_json())  # info left behind, no flock held
    assert LocalBackend(path).lock_holder() is None
    with pytest.raises(MlctlError, match=stale.id):
        LocalBackend(path).force_unlock("wrong")
    LocalBackend(path).force_unlock(stale.id)
    assert not lock_file.exists()


# -- real processes --------------------------------------------------------------------------

HOLDER = """
import sys, time
from mlctl.state import LocalBackend, LockInfo
backend = LocalBackend(sys.argv[1])
backend.lock(LockInfo.new("apply", "prod"))
print("LOCKED", flush=True)
time.sleep(120)
"""


def test_lock_contention_across_processes_and_no_stale_lock_after_sigkill(
    tmp_path: Path,
) -> None:
    path = tmp_path / "prod.json"
    child = spawn(HOLDER, str(path))
    try:
        wait_for_line(child, "LOCKED")
        with pytest.raises(LockError) as err:
            LocalBackend(path).lock(LockInfo.new("apply", "prod"))
        message = str(err.value)
        assert f"pid {child.pid}" in message
        assert "operation apply" in message
        holder = LocalBackend(path).lock_holder()
        assert holder is not None and holder.pid == child.pid
        with pytest.raises(MlctlError, match=f"pid {child.pid}"):
            LocalBackend(path).force_unlock(holder.id)
    finally:
        kill(child)

    assert (tmp_path / "prod.json.lock").exists(), "the killed holder left its info behind"
    backend = LocalBackend(path)
    assert backend.lock_holder() is None, "the kernel released the dead holder's flock"
    info = LockInfo.new("apply", "prod")
    backend.lock(info)  # at once: lock() does not wait, so success means the lock was free
    assert backend.lock_holder() == info
    backend.unlock(info.id)


WRITER = """
import sys
from mlctl.state import LocalBackend, State, persist
from mlctl.state.document import ResourceState
backend = LocalBackend(sys.argv[1])
state = backend.read() or State(environment="dev")
pad = "x" * 200
n = 0
while True:
    n += 1
    count = 3000 if n % 2 else 50  # alternate sizes: a torn file could not parse
    state.resources = {
        f"dataset.d{i}": ResourceState(type="dataset", name=f"d{i}", spec={"pad": pad, "n": n})
        for i in range(count)
    }
    persist(backend, state)
    if n == 1:
        print("WROTE", flush=True)
"""


def test_state_file_always_parses_when_writer_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    rng = random.Random(1234)
    deadline = time.monotonic() + 60
    serials = []
    for _ in range(6):
        child = spawn(WRITER, str(path))
        try:
            wait_for_line(child, "WROTE")
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            kill(child)
        state = State.from_json(path.read_text())  # never a mix of two documents
        assert len(state.resources) in (50, 3000)
        sample = next(iter(state.resources.values()))
        assert isinstance(sample, ResourceState)
        assert {r.spec["n"] for r in state.resources.values()} == {sample.spec["n"]}
        serials.append(state.serial)
        if (tmp_path / "dev.json.backup").exists():
            State.from_json((tmp_path / "dev.json.backup").read_text())
        assert time.monotonic() < deadline
    assert serials == sorted(serials) and serials[-1] > serials[0]
    backend = LocalBackend(path)
    final = backend.read()
    assert final is not None
    persist(backend, final)  # the next writer cleans temp files orphaned by the kills
    assert not list(tmp_path.glob(".*.tmp"))
    assert len({State.from_json(path.read_text()).lineage}) == 1
