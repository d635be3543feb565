"""Durable file writes on the local file system (the ground floor: imports nothing of mlctl).

Every writer that must never leave a truncated file (state, the pin write-back, run records,
candidate manifests) goes through :func:`atomic_write`; writers that stream (artifact copies,
downloads) write into :func:`atomic_target`, which replaces the file only when they finish.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably; creates missing parents.

    The file keeps the mode of the file it replaces (else ``mode``, else 0o644). See
    :func:`atomic_target` for what "atomically and durably" promises.
    """
    with atomic_target(path, mode=mode) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_target(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file object whose bytes replace ``path`` all at once when the block ends.

    Temp file in the same directory (parents are created), written by the caller, then flush,
    ``fsync``, ``os.replace``, ``fsync`` of the directory. Raising inside the block (a failed
    download, a sha256 that does not match) discards the temp file and leaves ``path`` as it
    was. The file keeps the mode of the file it replaces (else ``mode``, else 0o644). A crash
    may leave a ``.<name>.*.tmp`` file behind, never a truncated ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_copy(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` through :func:`atomic_target`, in 1 MiB chunks; return
    the hex sha256 and the size of the bytes copied (hashed on the way, not read twice)."""
    digest = hashlib.sha256()
    size = 0
    with atomic_target(target) as out, source.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(dfd)
