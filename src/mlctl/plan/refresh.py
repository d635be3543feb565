"""What the planner may ask of the world: the Reality protocol.

The planner never talks to providers directly (it knows no provider implementation); the
caller hands it a :class:`Reality`, or None for ``--refresh=false`` (then state is trusted).
Every method is read-only and must be cheap: fingerprints of local files hash bytes, S3 uses
HEAD, row counts read a CSV's newlines or a Parquet footer; nothing is trained or downloaded.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from mlctl.spec.models import Dataset, Endpoint
from mlctl.state.document import Artifact

ArtifactHealth = Literal["ok", "missing", "tampered"]


class Reality(Protocol):
    def dataset_fingerprint(self, name: str, dataset: Dataset) -> str | None:
        """Content fingerprint of the dataset's data, or None when it does not exist."""
        ...

    def dataset_rows(self, name: str, dataset: Dataset) -> int | None:
        """Rows of the dataset's data now (``retrain.min_new_rows`` counts them), or None when
        they cannot be known cheaply (an object in S3 is never downloaded for this)."""
        ...

    def artifact_health(self, artifact: Artifact) -> ArtifactHealth:
        """Whether the artifact is present and matches its recorded sha256."""
        ...

    def endpoint_live(self, name: str, endpoint: Endpoint) -> dict[str, Any] | None:
        """What the endpoint serves now, or None when the provider cannot tell."""
        ...

    def endpoint_manifests(
        self, name: str, endpoint: Endpoint, version: int | str, artifact: Artifact
    ) -> str | None:
        """The manifests the endpoint's provider would apply for ``version`` (deterministic
        text), or None when its provider has none (local serving). Pure: no I/O."""
        ...


@runtime_checkable
class MirrorReality(Protocol):
    """A :class:`Reality` that also sees a registry mirror (an MLflow provider named by
    ``providers.tracking``): the planner shows an alias moved there by hand as drift."""

    def registry_aliases(self, model: str) -> dict[str, int | str | None] | None:
        """``staging``/``production`` -> the mlctl version the mirror's alias points at (None:
        no alias; ``"mlflow vN"``: a version mlctl did not register), or None when the
        environment has no mirror. Read-only: a couple of HTTP GETs."""
        ...
