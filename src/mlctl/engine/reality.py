"""The planner's view of the world, answered by the environment's providers."""

from __future__ import annotations

from typing import Any

from mlctl.plan.refresh import ArtifactHealth
from mlctl.providers import artifact_store
from mlctl.providers.datasets import dataset_fingerprint, dataset_rows
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import Dataset, Endpoint
from mlctl.state.document import Artifact


class ProviderReality:
    """Implements :class:`mlctl.plan.refresh.Reality` for one environment."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self._store = artifact_store(spec)
        self._mirror: Any | None = None

    def registry_aliases(self, model: str) -> dict[str, int | str | None] | None:
        """Implements :class:`mlctl.plan.refresh.MirrorReality`: the MLflow mirror's aliases of
        ``model`` in mlctl versions (both None when the registered model does not exist yet),
        or None without a mirror. Raises MlctlError when the server cannot be reached."""
        if self.spec.config.providers.tracking is None:
            return None
        from mlctl.engine.mirror import client_for, mlctl_aliases

        if self._mirror is None:
            self._mirror = client_for(self.spec)
        found = mlctl_aliases(self._mirror, model)
        return found if found is not None else {"staging": None, "production": None}

    def dataset_fingerprint(self, name: str, dataset: Dataset) -> str | None:
        return dataset_fingerprint(self.spec, dataset)

    def dataset_rows(self, name: str, dataset: Dataset) -> int | None:
        return dataset_rows(self.spec, dataset)

    def artifact_health(self, artifact: Artifact) -> ArtifactHealth:
        return self._store.health(artifact)

    def endpoint_manifests(
        self, name: str, endpoint: Endpoint, version: int | str, artifact: Artifact
    ) -> str | None:
        from mlctl.spec.models import K8sProvider

        provider = self.spec.providers.get(endpoint.provider)
        if not isinstance(provider, K8sProvider):
            return None
        from mlctl.providers.k8s_manifests import endpoint_manifests, to_yaml

        return to_yaml(
            endpoint_manifests(self.spec.name, name, endpoint, provider, version=version, artifact=artifact)
        )

    def endpoint_live(self, name: str, endpoint: Endpoint) -> dict[str, Any] | None:
        from mlctl.providers import serving

        live: dict[str, Any] | None = serving(self.spec, endpoint.provider).live(name)
        return live
