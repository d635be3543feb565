"""The provider interface: where artifacts live and where endpoints run.

Providers are chosen by ``environment.yaml`` (``providers: {artifacts, serving, training}``)
from ``providers/<name>.yaml``. The engine calls them; the planner sees them only through the
:class:`mlctl.plan.refresh.Reality` protocol. Providers know nothing of click or of plans.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

from mlctl.state.document import Artifact

ArtifactHealth = Literal["ok", "missing", "tampered"]


class ArtifactStore(Protocol):
    """Content-checked storage of model artifacts and run files."""

    def put(self, source: Path, key: str) -> Artifact:
        """Store ``source`` under ``key`` (``MODEL/RUN_ID/model.joblib``); return uri+sha256+size."""
        ...

    def fetch(self, artifact: Artifact) -> Path:
        """A local path holding the artifact, verified against its sha256.

        Raises :class:`mlctl.errors.MlctlError` naming the uri when missing or tampered.
        """
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """A small plain object stored under ``key`` (candidate manifests), or None."""
        ...

    def health(self, artifact: Artifact, *, deep: bool = False) -> ArtifactHealth:
        """Whether the stored bytes still match the recorded sha256. May use cheap evidence
        (size, mtime, ETag) unless ``deep``; never downloads for a plan."""
        ...


class ServingProvider(Protocol):
    """Runs endpoints and reports which version each one serves."""

    def deploy(self, endpoint: str, model: str, version: int, artifact: Artifact) -> dict[str, Any]:
        """Make ``endpoint`` serve ``model`` ``version``; return the status to keep in state."""
        ...

    def undeploy(self, endpoint: str) -> None:
        """Stop serving ``endpoint``; absent endpoints are not an error."""
        ...

    def live(self, endpoint: str) -> dict[str, Any] | None:
        """What ``endpoint`` serves now ({model, version, ...}), or None if not deployed."""
        ...
