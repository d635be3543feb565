"""Open an environment: its desired state, its state backend, its providers.

One place turns ``(repo, env)`` into the objects every command needs, so commands stay thin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.loader import load_environment
from mlctl.state.backend import StateBackend
from mlctl.state.local import LocalBackend


@dataclass
class Workspace:
    """An environment opened for reading or changing."""

    repo: Path
    spec: EnvSpec
    backend: StateBackend

    @property
    def env(self) -> str:
        return self.spec.name


def open_backend(spec: EnvSpec) -> StateBackend:
    """The state backend ``environment.yaml`` declares (local file by default)."""
    backend = spec.config.backend
    if backend.type == "local":
        return LocalBackend(spec.repo / (backend.path or f"state/{spec.name}.json"))
    if backend.type == "s3":
        from mlctl.state.s3 import S3Backend

        assert backend.bucket and backend.key  # the schema requires both for s3
        return S3Backend(
            backend.bucket,
            backend.key,
            region=backend.region,
            endpoint_url=backend.endpoint_url,
            profile=backend.profile,
        )
    raise MlctlError(f"state backend type '{backend.type}' is not available yet (use type: local)")


def open_workspace(repo: Path, env: str) -> Workspace:
    """Load and validate ``environments/<env>`` of ``repo`` and open its state backend."""
    spec = load_environment(repo.resolve(), env)
    return Workspace(repo=spec.repo, spec=spec, backend=open_backend(spec))
