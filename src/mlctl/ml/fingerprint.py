"""Content fingerprints of data files, cheap enough for ``plan`` to import.

Contract: imports only :mod:`hashlib` (and :mod:`pathlib` for typing), never pandas. A
fingerprint is ``'sha256:<hex>'`` of the file's bytes, read in chunks so files larger than
memory are fine. The same bytes always give the same fingerprint, whatever the format.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlctl.errors import MlctlError

_CHUNK = 1 << 20


def fingerprint_file(path: Path) -> str:
    """Return ``'sha256:<hex>'`` of the bytes of ``path``, streaming.

    Raises :class:`MlctlError` naming the path when it is missing or unreadable.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise MlctlError(f"data file not found: {path}") from None
    except OSError as error:
        raise MlctlError(f"cannot read data file {path}: {error.strerror or error}") from None
    return f"sha256:{digest.hexdigest()}"
