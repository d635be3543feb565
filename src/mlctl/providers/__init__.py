"""Providers (floor 4): where artifacts are stored and endpoints run (local, S3 artifacts,
Kubernetes), the prediction log, dataset reading, run files and the MLflow mirror client.

:func:`artifact_store` and :func:`serving` build the provider an environment names in
``environment.yaml`` from its ``providers/<name>.yaml``. The S3 and Kubernetes modules (and
boto3 / kubernetes) are imported only when a provider of that type is used.

Modules: :mod:`~mlctl.providers.base` (the ``ArtifactStore`` and ``ServingProvider`` protocols,
verified reads), :mod:`~mlctl.providers.local`, :mod:`~mlctl.providers.s3`,
:mod:`~mlctl.providers.k8s` and :mod:`~mlctl.providers.k8s_manifests` (the Kubernetes
provider and the manifests it applies), :mod:`~mlctl.providers.predlog` (the prediction log:
writer, stores, reader), :mod:`~mlctl.providers.datasets` (where a dataset's bytes are, and
its rows), :mod:`~mlctl.providers.runfiles` (a run's files in the artifact store) and
:mod:`~mlctl.providers.mlflow` (the MLflow tracking server and registry client).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.providers.base import ArtifactStore, ServingProvider
from mlctl.providers.local import LocalArtifactStore, LocalServing
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import K8sProvider, LocalProvider, S3Provider


def provider_config(spec: EnvSpec, name: str) -> object:
    """The configuration of provider ``name`` in ``spec`` (the built-in ``local`` when it has no
    file); MlctlError when another provider has no ``providers/<name>.yaml``."""
    config = spec.providers.get(name)
    if config is None and name == "local":
        return LocalProvider(type="local")
    if config is None:
        raise MlctlError(f"provider '{name}' has no providers/{name}.yaml")
    return config


def artifact_store(spec: EnvSpec) -> ArtifactStore:
    """The artifact store named by ``providers.artifacts``."""
    name = spec.config.providers.artifacts
    config = provider_config(spec, name)
    if isinstance(config, LocalProvider):
        return LocalArtifactStore(spec.repo, config.root, spec.name)
    if isinstance(config, S3Provider):
        from mlctl.providers.s3 import S3ArtifactStore

        return S3ArtifactStore(
            spec.repo,
            config.bucket,
            config.prefix,
            spec.name,
            cache_root=spec.repo / ".mlctl" / "cache" / "sha256",
            region=config.region,
            endpoint_url=config.endpoint_url,
            profile=config.profile,
        )
    raise MlctlError(f"provider '{name}' ({getattr(config, 'type', '?')}) cannot store artifacts yet")


def local_root(spec: EnvSpec) -> str:
    """The directory (repo-relative) local runs and caches live under."""
    config = provider_config(spec, spec.config.providers.artifacts)
    return config.root if isinstance(config, LocalProvider) else ".mlctl"


def runs_root(spec: EnvSpec) -> Path:
    """The folder of the environment's tracking runs on this machine (``<repo>/<root>/runs/<env>``):
    what training writes, and what serving, monitors and ``mlctl runs`` read."""
    return spec.repo / local_root(spec) / "runs" / spec.name


def serving(spec: EnvSpec, name: str) -> ServingProvider:
    """The serving provider called ``name``."""
    config = provider_config(spec, name)
    if isinstance(config, LocalProvider):
        return LocalServing(spec.repo, spec.name, config.root)
    if isinstance(config, K8sProvider):
        from mlctl.providers.k8s import K8sServing

        return K8sServing(spec, config)
    raise MlctlError(f"provider '{name}' ({getattr(config, 'type', '?')}) cannot serve yet")


def s3_data_client(spec: EnvSpec, url: str) -> Any:
    """An S3 client for reading the dataset at ``url``, configured like the provider (or state
    backend) that names its bucket. Other buckets are refused: YAML from a pull request may
    not read arbitrary buckets with the runner's credentials."""
    from mlctl.providers.s3 import split_s3_url
    from mlctl.s3client import s3_client

    bucket, _ = split_s3_url(url)
    for config in spec.providers.values():
        if isinstance(config, S3Provider) and config.bucket == bucket:
            return s3_client(region=config.region, endpoint_url=config.endpoint_url, profile=config.profile)
    backend = spec.config.backend
    if backend.type == "s3" and backend.bucket == bucket:
        return s3_client(region=backend.region, endpoint_url=backend.endpoint_url, profile=backend.profile)
    raise MlctlError(
        f"dataset {url}: bucket '{bucket}' is not configured (name it in an s3 provider, "
        "providers/<name>.yaml, or the s3 state backend)"
    )
