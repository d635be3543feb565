"""One environment's validated desired state (:class:`EnvSpec`) and where each part came from.

Contract: an :class:`EnvSpec` is only ever built by :func:`~mlctl.spec.loader.load_environment`
and is immutable. ``config`` holds resolved ``${VAR}`` values; the key paths of those values are
in ``secret_paths`` and their text before interpolation in ``placeholders``, so anything shown to
a user or hashed (plans, state, comments) can use :meth:`EnvSpec.display` instead of the value;
``secrets`` holds every resolved value with its placeholder, and :meth:`EnvSpec.redact` shows
any text with those values replaced (the same step the CLI applies to everything it prints).
:class:`SourceMap` maps dotted key paths (``models.churn-predictor.training.features.0``) to
``(repo-relative file, 1-based line)``. Provider files are addressed as
``provider:<stem>.<key>`` (:data:`PROVIDER_PREFIX`), so they never collide with the
environment's own ``providers`` section.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlctl.redaction import Secrets
from mlctl.spec.models import Environment
from mlctl.spec.names import not_defined

if typing.TYPE_CHECKING:
    from mlctl.spec.models import K8sProvider, LocalProvider, MlflowProvider, RedisProvider, S3Provider

    ProviderType = LocalProvider | S3Provider | K8sProvider | RedisProvider | MlflowProvider

PROVIDER_PREFIX = "provider:"
"""Key paths of provider files start with this (``provider:s3.bucket``)."""

_KIND_ALIASES = {
    "dataset": "datasets",
    "entity": "entities",
    "feature_view": "feature_views",
    "model": "models",
    "endpoint": "endpoints",
    "monitor": "monitors",
}


class SourceMap(Mapping[str, tuple[str, int]]):
    """Dotted key path -> (repo-relative file, 1-based line) of the node that defines it."""

    def __init__(self, entries: dict[str, tuple[str, int]] | None = None):
        self._entries: dict[str, tuple[str, int]] = entries if entries is not None else {}

    def __getitem__(self, path: str) -> tuple[str, int]:
        return self._entries[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def locate(self, path: str) -> tuple[str | None, int | None]:
        """The location of ``path`` or of its nearest defined ancestor; (None, None) if none."""
        while path:
            found = self._entries.get(path)
            if found is not None:
                return found
            cut = path.rfind(".")
            path = path[:cut] if cut > 0 else ""
        return None, None


@dataclass(frozen=True)
class EnvSpec:
    """One environment's validated desired state and where every part of it came from."""

    name: str
    repo: Path
    config: Environment
    providers: dict[str, ProviderType]
    sources: SourceMap
    secret_paths: frozenset[str]
    files: tuple[Path, ...]
    """Every YAML file read: the environment's and ``providers/*.yaml`` (sorted)."""
    digest: str
    placeholders: Mapping[str, str] = field(default_factory=dict)
    """Secret key path -> its text before interpolation (``"${DB_URL}"``): show that instead."""
    secrets: Secrets = field(default_factory=Secrets)
    """Every value resolved from ``${VAR}`` (whole field values and each variable's value)."""

    def locate(self, path: str) -> tuple[str | None, int | None]:
        """(repo-relative file, 1-based line) of the nearest defined node for a dotted path."""
        return self.sources.locate(path)

    def file_of(self, kind: str, name: str) -> Path:
        """The YAML file (absolute) that defines ``kind`` ``name``, e.g. ("models", "churn")."""
        section = _KIND_ALIASES.get(kind, kind)
        found = self.sources.get(f"{section}.{name}")
        if found is None:
            names = sorted(getattr(self.config, section, None) or {})
            raise not_defined(section.rstrip("s"), name, self.name, names)
        return self.repo / found[0]

    def display(self, path: str, value: object) -> str:
        """``value`` as it may be shown to a user: the placeholder when ``path`` is a secret."""
        return self.placeholders.get(path, self.secrets.redact(str(value)))

    def redact(self, text: str) -> str:
        """``text`` with every value resolved from ``${VAR}`` shown as its placeholder."""
        return self.secrets.redact(text)
