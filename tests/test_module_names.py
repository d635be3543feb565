"""Each module name means one thing: a newcomer who reads ``results`` or ``metrics`` in an
import should not have to ask which package it came from."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mlctl"

# The names kept in two packages on purpose, and why each pair is one meaning.
SAME_MEANING = {
    "__init__": "every package has one",
    "apply": "one operation: the engine's executor, and the library call that locks around it",
    "rollback": "one operation: the engine's stage move, and the library call that locks around it",
    "materialize": "one operation: the feature store's, and the library call that locks around it",
    "local": "the local-file implementation of a seam: state backend, and artifact/serving providers",
    "s3": "the S3 implementation of a seam: state backend, and artifact provider",
}


def _modules_by_name() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        found[path.stem].append(str(path.relative_to(SRC)))
    return found


def test_no_module_name_means_two_things() -> None:
    repeated = {
        name: paths
        for name, paths in _modules_by_name().items()
        if len(paths) > 1 and name not in SAME_MEANING
    }
    assert repeated == {}, f"module names used in two packages: {repeated}; rename one"


def test_every_kept_pair_still_exists() -> None:
    names = _modules_by_name()
    stale = [name for name in SAME_MEANING if len(names.get(name, [])) < 2]
    assert stale == [], f"no longer repeated, drop from SAME_MEANING: {stale}"
