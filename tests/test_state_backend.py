"""LockInfo, persist() and locked(): the backend-independent half of the state contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mlctl
from mlctl.errors import LockError, StateConflictError
from mlctl.state import GitInfo, LocalBackend, LockInfo, State, locked, persist


def test_lockinfo_new_describe_and_json_round_trip() -> None:
    info = LockInfo.new("apply", "dev")
    assert info.operation == "apply" and info.environment == "dev"
    assert info.pid == os.getpid()
    assert "@" in info.who and info.created.endswith("Z")
    assert info.version == mlctl.__version__
    text = info.describe()
    assert text.startswith(f"ID {info.id}, operation apply, who {info.who}, pid {info.pid}")
    assert f"created {info.created}" in text
    assert LockInfo.from_json(info.to_json()) == info
    assert json.loads(info.to_json())["id"] == info.id


def test_lockinfo_from_dict_tolerates_missing_and_extra_keys() -> None:
    info = LockInfo.from_dict({"id": "x", "pid": "12", "future": 1})
    assert info.id == "x" and info.pid == 12 and info.operation == "unknown"
    with pytest.raises(ValueError):
        LockInfo.from_json("[1, 2]")


def test_persist_bumps_serial_and_stamps(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "dev.json")
    assert backend.read() is None
    state = State(environment="dev")
    persist(backend, state, git=GitInfo(commit="abc", branch="main"))
    assert state.serial == 1
    assert state.mlctl_version == mlctl.__version__
    assert state.updated_at is not None
    stored = LocalBackend(tmp_path / "dev.json").read()
    assert stored is not None
    assert (stored.serial, stored.lineage, stored.git.commit) == (1, state.lineage, "abc")
    persist(backend, state)
    assert state.serial == 2
    assert state.git.commit == "abc"  # kept when no git info is given


def test_persist_restores_serial_when_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    first, second = LocalBackend(path), LocalBackend(path)
    persist(first, State())
    mine = first.read()
    theirs = second.read()
    assert mine is not None and theirs is not None
    persist(second, theirs)
    with pytest.raises(StateConflictError):
        persist(first, mine)
    assert mine.serial == 1


def test_locked_always_unlocks(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "dev.json")
    with locked(backend, "apply", "dev") as info:
        assert backend.lock_holder() == info
        with pytest.raises(LockError):
            LocalBackend(tmp_path / "dev.json").lock(LockInfo.new("plan", "dev"))
    assert backend.lock_holder() is None
    with pytest.raises(RuntimeError), locked(backend, "apply", "dev"):
        raise RuntimeError("boom")
    assert backend.lock_holder() is None
    assert LocalBackend(tmp_path / "dev.json").lock_holder() is None
