"""The embedded default provider: artifacts on local disk, endpoints served by ``mlctl serve``.

Artifacts live under ``<repo>/<root>/artifacts/<env>/<key>`` and are recorded in state by a
repo-relative URI, so a repository can move on disk. Every fetch verifies sha256 before the
path is handed out; nothing unverified is ever loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.providers.base import ArtifactHealth
from mlctl.state.document import Artifact

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalArtifactStore:
    """Artifacts in a directory of the repository (``providers/<name>.yaml: {type: local}``)."""

    def __init__(self, repo: Path, root: str, environment: str) -> None:
        self.repo = repo
        self.base = repo / root / "artifacts" / environment

    def _path(self, uri: str) -> Path:
        path = (self.repo / uri).resolve()
        if not path.is_relative_to(self.repo.resolve()):
            raise MlctlError(f"artifact uri {uri} points outside the repository")
        return path

    def put(self, source: Path, key: str) -> Artifact:
        """Copy ``source`` to ``<base>/<key>`` atomically; return its uri, sha256 and size."""
        target = self.base / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        uri = target.relative_to(self.repo).as_posix()
        return Artifact(uri=uri, sha256=digest.hexdigest(), size=size)

    def fetch(self, artifact: Artifact) -> Path:
        """The verified local path of ``artifact``; MlctlError if missing or tampered."""
        health = self.health(artifact)
        if health == "missing":
            raise MlctlError(f"artifact {artifact.uri} is missing")
        if health == "tampered":
            raise MlctlError(
                f"artifact {artifact.uri} is tampered: its sha256 does not match state; refusing to load it"
            )
        return self._path(artifact.uri)

    def health(self, artifact: Artifact) -> ArtifactHealth:
        path = self._path(artifact.uri)
        if not path.is_file():
            return "missing"
        if path.stat().st_size != artifact.size or sha256_file(path) != artifact.sha256:
            return "tampered"
        return "ok"

    def copy_tree(self, source: Path, key: str) -> None:
        """Copy a directory of run files (plots, profiles) under ``key``, replacing it."""
        target = self.base / key
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


class LocalServing:
    """Endpoints served by ``mlctl serve`` on this machine, which follows state.

    Deploying records what the endpoint should serve; a running server watches the state and
    swaps versions itself. ``live`` cannot see more than state, so it reports None (unknown).
    """

    def __init__(self, repo: Path, environment: str) -> None:
        self.repo = repo
        self.environment = environment

    def deploy(self, endpoint: str, model: str, version: int, artifact: Artifact) -> dict[str, Any]:
        return {
            "model": model,
            "version": version,
            "artifact": artifact.uri,
            "sha256": artifact.sha256,
            "provider": "local",
            "command": f"mlctl serve {model} -e {self.environment}",
        }

    def undeploy(self, endpoint: str) -> None:
        return None

    def live(self, endpoint: str) -> dict[str, Any] | None:
        return None
