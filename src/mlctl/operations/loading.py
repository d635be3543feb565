"""``load_model``: a registered model version as a predictor, for code that is not a server.

Contract: :func:`load_model` reads the environment's state (any backend: a local file, S3),
resolves ``stage`` (or ``version``) of ``model`` to a version, fetches its bytes through the
environment's artifact store and hashes the bytes it read against the sha256 the trusted
apply recorded in state (tampered or missing bytes: :class:`~mlctl.errors.MlctlError`,
nothing loaded). A version with a compiled form (``ModelVersion.compiled``: tree models
trained by this mlctl, verified bitwise against their pipeline at training) is loaded from
it with ``numpy.load(allow_pickle=False)``: nothing is unpickled and scikit-learn and pandas
are not imported (the pickle is not read, but a version whose stored pickle no longer
matches its sha256, as far as the store can tell cheaply, is refused too). Any other
version is unpickled (the bytes verified first), which imports scikit-learn. Either way the
answers are the fitted pipeline's, bit for bit.

Importing this module is cheap (no numpy, pandas, scikit-learn, fastapi; boto3 only when an
S3 store is used). No lock is taken: loading only reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

    from mlctl.ml.compiled import Prediction, Predictor
    from mlctl.state.document import ModelVersion

__all__ = ["LoadedVersion", "load_model"]


@dataclass
class LoadedVersion:
    """One verified model version, ready to predict.

    ``features``: the input names, in the order a row's values are given; ``labels``: the
    class labels in index order when recorded with the compiled form (else None);
    ``loaded_from``: "compiled" or "pickle"; ``kind``: the predictor's kind
    ("compiled-forest", "compiled-tree" or "pipeline").
    """

    model: str
    version: int
    stage: str | None
    record: ModelVersion
    predictor: Predictor
    loaded_from: str

    @property
    def features(self) -> list[str]:
        return list(self.predictor.features)

    @property
    def kind(self) -> str:
        return self.predictor.kind

    @property
    def labels(self) -> list[Any] | None:
        labels = getattr(self.predictor, "labels", None)
        return list(labels) if labels is not None else None

    def _rows(self, rows: Any) -> list[Sequence[Any]]:
        features = self.predictor.features
        if hasattr(rows, "itertuples") and hasattr(rows, "columns"):  # a DataFrame, by name
            missing = [f for f in features if f not in rows.columns]
            if missing:
                raise MlctlError(f"rows lack the feature(s) {', '.join(missing)}")
            return [list(r) for r in rows[features].astype(object).itertuples(index=False, name=None)]
        out: list[Sequence[Any]] = []
        for row in rows:
            if isinstance(row, Mapping):
                out.append([row.get(f) for f in features])
            elif len(row) != len(features):
                raise MlctlError(f"a row has {len(row)} values; {self.model} takes {len(features)}")
            else:
                out.append(row)
        return out

    def raw(self, rows: Any) -> Prediction:
        """The predictor's whole answer for ``rows`` (class indices, probabilities, values)."""
        return self.predictor.predict(self._rows(rows))

    def predict(self, rows: Any) -> np.ndarray:
        """What the fitted pipeline's ``predict`` gives for ``rows``: class indices (labels in
        :attr:`labels`) for a classifier, float64 values for a regressor. ``rows``: sequences
        of values in :attr:`features` order, mappings by feature name, or a DataFrame."""
        answer = self.raw(rows)
        result = answer.index if answer.index is not None else answer.value
        assert result is not None
        return result

    def predict_proba(self, rows: Any) -> np.ndarray:
        """The fitted pipeline's ``predict_proba`` for ``rows``: (n, classes) float64."""
        answer = self.raw(rows)
        if answer.proba is None:
            raise MlctlError(f"{self.model} v{self.version} is a regressor: no class probabilities")
        return answer.proba


def load_model(
    where: Workspace | Path | str,
    model: str,
    *,
    stage: str = "production",
    env: str | None = None,
    version: int | None = None,
) -> LoadedVersion:
    """The version of ``model`` that ``stage`` holds (or the one numbered ``version``) in the
    environment ``where`` names: a :class:`~mlctl.workspace.Workspace`, or a repository root
    with ``env``. See the module contract. Raises :class:`~mlctl.errors.MlctlError` for an
    unknown model, an empty stage, an unknown version, or bytes that do not verify."""
    from mlctl.providers import artifact_store
    from mlctl.providers.base import read_verified, refuse_unless_intact

    if isinstance(where, Workspace):
        workspace = where
    else:
        if env is None:
            raise MlctlError("load_model: give env= with a repository path (or pass a Workspace)")
        from mlctl.workspace import open_workspace

        workspace = open_workspace(Path(where), env)
    state = workspace.backend.read()
    registry = state.models.get(model) if state is not None else None
    if registry is None:
        raise MlctlError(f"model '{model}' has no registered versions in environment '{workspace.env}'")
    if version is None:
        if stage not in registry.stages:
            raise MlctlError(f"stage must be one of {', '.join(registry.stages)}, not '{stage}'")
        number = registry.stages.get(stage)
        if number is None:
            raise MlctlError(f"no version of '{model}' is in {stage} in environment '{workspace.env}'")
    else:
        number = version
    record = registry.get(number)
    if record is None or record.artifact is None:
        raise MlctlError(f"'{model}' has no version {number} with an artifact in '{workspace.env}'")
    store = artifact_store(workspace.spec)
    if record.compiled is not None:
        from mlctl.ml.compiled_artifact import load_compiled

        # the pickle is not read; a version whose stored pickle no longer matches is refused
        refuse_unless_intact(record.artifact, store.health(record.artifact))
        data = read_verified(store, record.compiled)
        try:
            predictor: Predictor = load_compiled(data)
        except ValueError as error:
            raise MlctlError(f"cannot load {record.compiled.uri}: {error}") from None
        loaded_from = "compiled"
    else:
        import io

        import joblib

        from mlctl.ml.compiled import PipelinePredictor

        data = read_verified(store, record.artifact)
        try:
            pipeline = joblib.load(io.BytesIO(data))
        except Exception as error:
            raise MlctlError(f"cannot load {record.artifact.uri}: {type(error).__name__}: {error}") from None
        predictor = PipelinePredictor(pipeline, [str(c) for c in getattr(pipeline, "feature_names_in_", [])])
        loaded_from = "pickle"
    return LoadedVersion(
        model=model,
        version=record.version,
        stage=stage if version is None else None,
        record=record,
        predictor=predictor,
        loaded_from=loaded_from,
    )
