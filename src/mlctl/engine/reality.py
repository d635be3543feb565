"""The planner's view of the world, answered by the environment's providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.ml.fingerprint import fingerprint_file
from mlctl.plan.refresh import ArtifactHealth
from mlctl.providers import artifact_store
from mlctl.spec.loader import EnvSpec
from mlctl.spec.models import Dataset, Endpoint
from mlctl.state.document import Artifact


def dataset_path(spec: EnvSpec, dataset: Dataset) -> Path:
    """The local file of a dataset (S3 datasets arrive with the S3 provider)."""
    if dataset.path.startswith("s3://"):
        raise MlctlError(f"dataset {dataset.path}: s3:// datasets need the s3 provider (not yet available)")
    return spec.repo / dataset.path


class ProviderReality:
    """Implements :class:`mlctl.plan.refresh.Reality` for one environment."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self._store = artifact_store(spec)

    def dataset_fingerprint(self, name: str, dataset: Dataset) -> str | None:
        path = dataset_path(self.spec, dataset)
        return fingerprint_file(path) if path.is_file() else None

    def artifact_health(self, artifact: Artifact) -> ArtifactHealth:
        return self._store.health(artifact)

    def endpoint_live(self, name: str, endpoint: Endpoint) -> dict[str, Any] | None:
        return None
