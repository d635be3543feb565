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
        relative = Path(uri)
        if relative.is_absolute() or ".." in relative.parts:
            raise MlctlError(f"artifact uri {uri} points outside the repository")
        return self.repo / relative

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
        return Artifact(uri=uri, sha256=digest.hexdigest(), size=size, mtime_ns=target.stat().st_mtime_ns)

    def fetch(self, artifact: Artifact) -> Path:
        """The verified local path of ``artifact``; MlctlError if missing or tampered."""
        health = self.health(artifact, deep=True)
        if health == "missing":
            raise MlctlError(f"artifact {artifact.uri} is missing")
        if health == "tampered":
            raise MlctlError(
                f"artifact {artifact.uri} is tampered: its sha256 does not match state; refusing to load it"
            )
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

    def copy_tree(self, source: Path, key: str) -> None:
        """Copy a directory of run files (plots, profiles) under ``key``, replacing it."""
        target = self.base / key
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)


#: A running server refreshes its status file this often; older files are stale.
SERVING_HEARTBEAT_SECONDS = 5.0


def serving_status_path(repo: Path, root: str, environment: str, endpoint: str) -> Path:
    """Where ``mlctl serve`` keeps the status of ``endpoint`` (what it serves, its pid)."""
    return repo / root / "serving" / environment / f"{endpoint}.json"


def write_serving_status(path: Path, status: dict[str, Any]) -> None:
    """Atomically replace a serving status file (written by the running server)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(status, out, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
