"""Scaffold the example repository (``mlctl init``) and make sure its data exists (``make demo``).

The template lives in this package's ``files/`` directory (package data) and is read with
:mod:`importlib.resources`, so it works from a wheel, a zip or a source checkout alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class S3Location:
    """Where ``mlctl init --backend s3://BUCKET/PREFIX`` keeps prod's state, artifacts and
    prediction log: ``bucket``, ``prefix`` (no leading or trailing ``/``, may be empty),
    ``endpoint_url`` for an S3-compatible server, ``region``."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def url(self) -> str:
        """``s3://BUCKET/PREFIX`` (``s3://BUCKET`` without a prefix)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        """``prefix/part/...`` (just the parts when there is no prefix)."""
        return "/".join(p for p in (self.prefix, *parts) if p)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_s3_location(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> S3Location:
    """``s3://BUCKET[/PREFIX]`` as an :class:`S3Location`; ``MlctlError`` (one line) when it is
    not one. Secrets never go in a location: ``${VAR}`` is refused, credentials come from the
    environment."""
    if not url.startswith("s3://"):
        raise MlctlError(f"--backend {url!r}: expected s3://BUCKET/PREFIX")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.match(bucket):
        raise MlctlError(
            f"--backend {url!r}: {bucket!r} is not a valid bucket name "
            "(3-63 lowercase letters, digits, dots and hyphens)"
        )
    if not re.fullmatch(r"[A-Za-z0-9._/-]*", prefix) or "//" in prefix or ".." in prefix:
        raise MlctlError(
            f"--backend {url!r}: the prefix may hold letters, digits, '.', '_', '-' and single '/' (no '..')"
        )
    for name, value in (("--backend", url), ("--endpoint-url", endpoint_url), ("--region", region)):
        if value is not None and "${" in value:
            raise MlctlError(
                f"{name} may not hold ${{VAR}}: give the value; credentials come from the environment"
            )
    if endpoint_url is not None and not re.fullmatch(r"https?://[^\s/#]+(/[^\s#]*)?", endpoint_url):
        raise MlctlError(f"--endpoint-url {endpoint_url!r}: expected http(s)://HOST[:PORT]")
    from mlctl.spec.models import REGION_PATTERN

    if region is not None and not re.match(REGION_PATTERN, region):
        raise MlctlError(f"--region {region!r}: expected a region name such as us-east-1")
    return S3Location(bucket, prefix, endpoint_url, region)


def _s3_environment(env: str, where: S3Location) -> str:
    """``environments/<env>/environment.yaml`` keeping state, artifacts and the prediction log
    in ``where``."""
    optional = "".join(
        f"  {name}: {value}\n"
        for name, value in (("region", where.region), ("endpoint_url", where.endpoint_url))
        if value
    )
    return (
        f'# Environment "{env}": where its state lives and which providers do the work.\n'
        "# Every *.yaml file in this folder is merged into one desired state; defining the same name in\n"
        f"# two files is an error. CI runs `mlctl plan -e {env}` on pull requests and\n"
        f"# `mlctl apply -e {env} --auto-approve` on merge.\n"
        "#\n"
        f"# State, artifacts and the prediction log live in {where.url},\n"
        "# so every machine shares one truth: the CI runner that applies, the pods that serve, the\n"
        "# scheduled monitor, a laptop that rolls back. Credentials come from the environment\n"
        "# (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the pod's role), never from here.\n"
        "backend:\n"
        "  type: s3\n"
        f"  bucket: {where.bucket}\n"
        f"  key: {where.key('state', env + '.json')}   # the lock is this key + .lock\n"
        f"{optional}"
        "providers:                 # names of providers/<name>.yaml, one per role\n"
        "  artifacts: s3            # providers/s3.yaml: models, runs, candidates, prediction log\n"
        "  serving: local           # `mlctl serve` (or a k8s provider); pods follow the state\n"
        "  training: local          # trains on the runner that applies\n"
    )


def _s3_provider(where: S3Location) -> str:
    """``providers/s3.yaml`` for ``where``: artifacts under ``PREFIX/artifacts/<env>/``."""
    optional = "".join(
        f"{name}: {value}\n"
        for name, value in (("region", where.region), ("endpoint_url", where.endpoint_url))
        if value
    )
    return (
        "# The S3 provider: model artifacts, training runs, plan --evaluate candidates and the\n"
        "# endpoints' prediction log, under <prefix>/<environment>/ in the bucket. Any S3-compatible\n"
        "# server works through endpoint_url. Credentials come from the environment, never from here.\n"
        "type: s3\n"
        f"bucket: {where.bucket}\n"
        f"prefix: {where.key('artifacts')}\n"
        f"{optional}"
    )


@dataclass
class Scaffold:
    """What :func:`scaffold` did: ``written`` files (absolute), and ``kept``: files of the
    template that already existed and were left exactly as they were."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def scaffold(
    target: Path,
    *,
    generate_data: bool = True,
    customers: int = 20000,
    as_of: dt.date | str | None = None,
    backend: S3Location | None = None,
) -> Scaffold:
    """Copy the example repository into ``target`` and generate its data.

    The data's timeline ends at the ``as_of`` day (default: today, UTC), so the online
    feature values are live (see :mod:`mlctl.example.generator`). With ``backend``, the prod
    environment keeps its state, artifacts and prediction log in that S3 location
    (``providers/s3.yaml``); dev stays local.

    Refuses (``MlctlError``, before anything is written) when ``target/environments`` exists
    and is not empty, when ``customers`` is below 1, when ``as_of`` is not a date, or when a
    directory it would write into (``target`` included) is a symbolic link or a file. Any
    other file of the template that already exists (a workflow, a ``.gitignore``, a
    provider) is never overwritten: it is kept and listed in ``kept``.
    """
    target = Path(target)
    day = as_of_day(as_of)  # a bad date fails before anything is written
    if customers < 1:
        raise MlctlError(f"--customers {customers}: the example needs at least 1 customer")
    environments = target / "environments"
    if environments.is_file() or (environments.is_dir() and any(environments.iterdir())):
        raise MlctlError(
            f"{environments} already exists and is not empty; run `mlctl init` in a new or empty directory"
        )
    files = dict(template_files())
    if backend is not None:
        files["environments/prod/environment.yaml"] = _s3_environment("prod", backend).encode()
        files["providers/s3.yaml"] = _s3_provider(backend).encode()
    folders = {target, target / "data"}  # every directory init writes into: none may be a link
    for rel in files:
        parts = rel.split("/")[:-1]
        folders.update(target.joinpath(*parts[:end]) for end in range(1, len(parts) + 1))
    for folder in sorted(folders):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            what = "a symbolic link" if folder.is_symlink() else "not a directory"
            raise MlctlError(f"{folder} is {what}; mlctl init writes only into real directories")
    done = Scaffold()
    for rel, content in sorted(files.items()):
        path = target.joinpath(*rel.split("/"))
        if path.exists() or path.is_symlink():
            done.kept.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        done.written.append(path)
    if generate_data:
        from mlctl.example.generator import generate

        done.written.extend(generate(target / "data", customers=customers, as_of=day).values())
    return done


def init_repo(
    target: Path,
    *,
    generate_data: bool = True,
    customers: int = 20000,
    as_of: dt.date | str | None = None,
    backend: S3Location | None = None,
) -> list[Path]:
    """:func:`scaffold`, returning the paths written (existing files are kept, never listed)."""
    return scaffold(
        target, generate_data=generate_data, customers=customers, as_of=as_of, backend=backend
    ).written


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
