"""The embedded default provider: artifacts on local disk, endpoints served by ``mlctl serve``.

Artifacts live under ``<repo>/<root>/artifacts/<env>/<key>`` and are recorded in state by a
repo-relative URI, so a repository can move on disk. Every fetch verifies sha256 before the
path is handed out; nothing unverified is ever loaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.files import atomic_copy, atomic_write, sha256_file
from mlctl.providers.base import ArtifactHealth, refuse_unless_intact
from mlctl.state.document import Artifact

__all__ = ["LocalArtifactStore", "LocalServing", "serving_status_path", "sha256_file", "write_serving_status"]


class LocalArtifactStore:
    """Artifacts in a directory of the repository (``providers/<name>.yaml: {type: local}``)."""

    def __init__(self, repo: Path, root: str, environment: str) -> None:
        self.repo = repo
        self.base = repo / root / "artifacts" / environment

    def _path(self, uri: str) -> Path:
        relative = Path(uri)
        if relative.is_absolute() or ".." in relative.parts:
            raise MlctlError(f"artifact uri {uri} points outside the repository")
        return self.repo / relative

    def put(self, source: Path, key: str) -> Artifact:
        """Copy ``source`` to ``<base>/<key>`` atomically; return its uri, sha256 and size."""
        target = self.base / key
        sha256, size = atomic_copy(source, target)
        return self._artifact(target, sha256, size)

    def put_bytes(self, data: bytes, key: str) -> Artifact:
        """Write ``data`` to ``<base>/<key>`` atomically; return its uri, sha256 and size."""
        target = self.base / key
        atomic_write(target, data)
        return self._artifact(target, hashlib.sha256(data).hexdigest(), len(data))

    def _artifact(self, target: Path, sha256: str, size: int) -> Artifact:
        uri = target.relative_to(self.repo).as_posix()
        return Artifact(uri=uri, sha256=sha256, size=size, mtime_ns=target.stat().st_mtime_ns)

    def fetch(self, artifact: Artifact) -> Path:
        """The verified local path of ``artifact``; MlctlError if missing or tampered."""
        refuse_unless_intact(artifact, self.health(artifact, deep=True))
        return self._path(artifact.uri)

    def health(self, artifact: Artifact, *, deep: bool = False) -> ArtifactHealth:
        """Cheap by default: a file whose size and mtime are as stored is taken as intact
        (what a plan of 1,000 models can afford); any other file is hashed. ``deep`` always
        hashes, and :meth:`fetch` always verifies the sha256 before a path is handed out."""
        path = self._path(artifact.uri)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return "missing"
        if stat.st_size != artifact.size:
            return "tampered"
        if not deep and artifact.mtime_ns is not None and stat.st_mtime_ns == artifact.mtime_ns:
            return "ok"
        return "ok" if sha256_file(path) == artifact.sha256 else "tampered"

    def get_bytes(self, key: str) -> bytes | None:
        """The plain file stored under ``key`` (manifests, results), or None if absent."""
        path = self.base / key
        return path.read_bytes() if path.is_file() else None


#: A running server refreshes its status file this often; older files are stale.
SERVING_HEARTBEAT_SECONDS = 5.0


def serving_status_path(repo: Path, root: str, environment: str, endpoint: str) -> Path:
    """Where ``mlctl serve`` keeps the status of ``endpoint`` (what it serves, its pid)."""
    return repo / root / "serving" / environment / f"{endpoint}.json"


def write_serving_status(path: Path, status: dict[str, Any]) -> None:
    """Atomically replace a serving status file (written by the running server)."""
    import json

    atomic_write(path, json.dumps(status, sort_keys=True).encode("utf-8"))


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalServing:
    """Endpoints served by ``mlctl serve`` on this machine, which follows state.

    Deploying records what the endpoint should serve; a running server watches the state and
    swaps versions itself. A running server keeps a status file
    (:func:`serving_status_path`) refreshed every few seconds; ``live`` reads it and reports
    what that server really serves, or None when no server is running (unknown).
    """

    def __init__(self, repo: Path, environment: str, root: str = ".mlctl") -> None:
        self.repo = repo
        self.environment = environment
        self.root = root

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
        """What a running ``mlctl serve`` of ``endpoint`` serves, or None if none runs."""
        import json
        import time

        path = serving_status_path(self.repo, self.root, self.environment, endpoint)
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(status, dict):
            return None
        updated = status.get("updated_at")
        fresh = isinstance(updated, (int, float)) and time.time() - updated < 3 * SERVING_HEARTBEAT_SECONDS
        if not fresh or not _pid_alive(status.get("pid")):
            return None
        return status
