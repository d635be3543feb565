"""The provider interface: where artifacts live and where endpoints run.

Providers are chosen by ``environment.yaml`` (``providers: {artifacts, serving, training}``)
from ``providers/<name>.yaml``. The engine calls them; the planner sees them only through the
:class:`mlctl.plan.refresh.Reality` protocol. Providers know nothing of click or of plans.

Callers type providers with these protocols (``artifact_store()`` returns an
:class:`ArtifactStore`, ``serving()`` a :class:`ServingProvider`), so mypy checks every
implementation against them. A model artifact is loaded only after its sha256 matches the
state: every refusal goes through :func:`refuse_unless_intact`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, Protocol

from mlctl.errors import MlctlError
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

    def put_bytes(self, data: bytes, key: str) -> Artifact:
        """Store a small plain object (a candidate manifest) under ``key``, whole or not at all."""
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


def refuse_unless_intact(artifact: Artifact, health: ArtifactHealth) -> None:
    """The one refusal of an artifact whose bytes do not match its recorded sha256.

    Every store's :meth:`ArtifactStore.fetch` and every loader that re-hashes the bytes it
    read ends here: returns when ``health`` is "ok", raises :class:`~mlctl.errors.MlctlError`
    naming the uri otherwise.
    """
    if health == "missing":
        raise MlctlError(f"artifact {artifact.uri} is missing")
    if health == "tampered":
        raise MlctlError(
            f"artifact {artifact.uri} is tampered: its sha256 does not match state; refusing to load it"
        )


def read_verified(store: ArtifactStore, artifact: Artifact) -> bytes:
    """The artifact's bytes, fetched through ``store`` and hashed again after reading (the
    file could change between the store's check and the read); refused unless they match."""
    data = store.fetch(artifact).read_bytes()
    intact = hashlib.sha256(data).hexdigest() == artifact.sha256
    refuse_unless_intact(artifact, "ok" if intact else "tampered")
    return data
