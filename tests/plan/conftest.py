"""Fixtures of the planner tests: a small environment on disk, its applied state, a fake world."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import State
from plan.world import TOOLCHAIN, FakeReality, applied_state, install_toolchain, load, write_repo


@pytest.fixture(autouse=True)
def toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """mlctl and scikit-learn "installed" at fixed versions (dist-info first on sys.path),
    so identities and golden files do not depend on what this machine has installed."""
    monkeypatch.syspath_prepend(str(install_toolchain(tmp_path / "site-toolchain", TOOLCHAIN)))
    return dict(TOOLCHAIN)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_repo(tmp_path / "repo")


@pytest.fixture
def spec(root: Path) -> EnvSpec:
    return load(root)


@pytest.fixture
def state(spec: EnvSpec) -> State:
    """What one successful apply of the unedited environment left (v1 live)."""
    return applied_state(spec)


@pytest.fixture
def reality() -> FakeReality:
    """A world that agrees with :func:`applied_state`."""
    return FakeReality()
