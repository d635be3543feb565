"""Providers: where artifacts are stored and endpoints run (local now; S3 and Kubernetes next).

:func:`artifact_store` and :func:`serving` build the provider an environment names in
``environment.yaml`` from its ``providers/<name>.yaml``.
"""

from __future__ import annotations

from mlctl.errors import MlctlError
from mlctl.providers.local import LocalArtifactStore, LocalServing
from mlctl.spec.loader import EnvSpec
from mlctl.spec.models import LocalProvider


def _config(spec: EnvSpec, name: str) -> object:
    config = spec.providers.get(name)
    if config is None and name == "local":
        return LocalProvider(type="local")
    if config is None:
        raise MlctlError(f"provider '{name}' has no providers/{name}.yaml")
    return config


def artifact_store(spec: EnvSpec) -> LocalArtifactStore:
    """The artifact store named by ``providers.artifacts``."""
    name = spec.config.providers.artifacts
    config = _config(spec, name)
    if isinstance(config, LocalProvider):
        return LocalArtifactStore(spec.repo, config.root, spec.name)
    raise MlctlError(f"provider '{name}' ({getattr(config, 'type', '?')}) cannot store artifacts yet")


def local_root(spec: EnvSpec) -> str:
    """The directory (repo-relative) local runs and caches live under."""
    config = _config(spec, spec.config.providers.artifacts)
    return config.root if isinstance(config, LocalProvider) else ".mlctl"


def serving(spec: EnvSpec, name: str) -> LocalServing:
    """The serving provider called ``name``."""
    config = _config(spec, name)
    if isinstance(config, LocalProvider):
        return LocalServing(spec.repo, spec.name)
    raise MlctlError(f"provider '{name}' ({getattr(config, 'type', '?')}) cannot serve yet")
