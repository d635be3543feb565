"""Scaffold the example repository (``mlctl init``) and make sure its data exists (``make demo``).

The template lives in this package's ``files/`` directory (package data) and is read with
:mod:`importlib.resources`, so it works from a wheel, a zip or a source checkout alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from mlctl.errors import MlctlError

# The files :func:`mlctl.example.generator.generate` writes (not imported: it pulls in numpy).
DATA_FILES = ("customer_activity.csv", "churn_labels.csv", "churn_outcomes.csv")


def as_of_day(as_of: dt.date | str | None = None) -> dt.date:
    """The day the example data ends at: ``as_of`` (a date or ``YYYY-MM-DD``), else today (UTC)."""
    if as_of is None:
        return dt.datetime.now(dt.UTC).date()
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        raise MlctlError(f"--as-of {as_of!r}: not a date (YYYY-MM-DD)") from None


def template_root() -> Traversable:
    """The root of the template repository shipped as package data."""
    return resources.files("mlctl.example").joinpath("files")


def template_files() -> list[tuple[str, bytes]]:
    """Every file of the template as ``(posix relative path, content)``, sorted by path."""
    return sorted((rel, node.read_bytes()) for rel, node in _walk(template_root(), ""))


def init_repo(
    target: Path,
    *,
    generate_data: bool = True,
    customers: int = 20000,
    as_of: dt.date | str | None = None,
) -> list[Path]:
    """Copy the example repository into ``target`` and generate its data; return written paths.

    The data's timeline ends at the ``as_of`` day (default: today, UTC), so the online
    feature values are live (see :mod:`mlctl.example.generator`).

    Refuses (``MlctlError``) when ``target/environments`` exists and is not empty, so an
    existing repository is never overwritten.
    """
    target = Path(target)
    day = as_of_day(as_of)  # a bad date fails before anything is written
    environments = target / "environments"
    if environments.is_file() or (environments.is_dir() and any(environments.iterdir())):
        raise MlctlError(
            f"{environments} already exists and is not empty; run `mlctl init` in a new or empty directory"
        )
    written: list[Path] = []
    for rel, content in template_files():
        path = target.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    if generate_data:
        from mlctl.example.generator import generate

        written.extend(generate(target / "data", customers=customers, as_of=day).values())
    return written


def ensure_example_data(repo: Path, *, customers: int = 20000, as_of: dt.date | str | None = None) -> bool:
    """Generate the example data into ``repo/data`` unless all of it is there; True if written.

    The timeline ends at the ``as_of`` day (default: today, UTC).
    """
    data = Path(repo) / "data"
    if all((data / name).is_file() for name in DATA_FILES):
        return False
    from mlctl.example.generator import generate

    generate(data, customers=customers, as_of=as_of)
    return True


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for child in node.iterdir():
        if child.name == "__pycache__":
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, rel + "/")
        else:
            yield rel, child
