"""PNG charts stored with a model version: feature importance and confusion matrix.

Contract: figures are drawn on matplotlib's Agg canvas through :class:`~matplotlib.figure.Figure`
objects (never ``pyplot``: no global state, no window, safe in threads); each function
writes one PNG at ``path`` (parent directories created) and returns ``path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

__all__ = ["confusion_matrix_png", "feature_importance_png", "feature_importances"]

PERMUTATION_ROWS = 500


def feature_importances(
    pipeline: Pipeline,
    feature_names: Sequence[str],
    X: pd.DataFrame | None = None,
    y: Any = None,
    seed: int = 0,
) -> dict[str, float]:
    """Importance of each raw feature, normalized to sum to 1 (when any is positive).

    Uses the estimator's ``feature_importances_`` or ``|coef_|`` summed over the one-hot
    columns of each raw feature; otherwise permutation importance on up to 500 rows of
    ``X``/``y`` (all zeros when those are not given).
    """
    from mlctl.ml.train import feature_origins

    model = pipeline.steps[-1][1]
    raw: np.ndarray | None = None
    if hasattr(model, "feature_importances_"):
        raw = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.abs(np.asarray(model.coef_, dtype=float))
        raw = coef.reshape(-1, coef.shape[-1]).sum(axis=0) if coef.ndim > 1 else coef
    scores = dict.fromkeys(feature_names, 0.0)
    if raw is not None:
        for origin, value in zip(feature_origins(pipeline), raw, strict=True):
            scores[origin] = scores.get(origin, 0.0) + float(value)
    elif X is not None and y is not None and len(X):
        from sklearn.inspection import permutation_importance

        rows = min(PERMUTATION_ROWS, len(X))
        chosen = np.random.default_rng(seed).choice(len(X), size=rows, replace=False)
        sample = X.iloc[chosen][list(feature_names)]
        target = np.asarray(y)[chosen]
        found = permutation_importance(pipeline, sample, target, n_repeats=3, random_state=seed)
        for name, value in zip(feature_names, found.importances_mean, strict=True):
            scores[name] = max(float(value), 0.0)
    total = sum(scores.values())
    return {k: v / total for k, v in scores.items()} if total > 0 else scores


def feature_importance_png(
    pipeline: Pipeline,
    feature_names: Sequence[str],
    path: Path,
    X: pd.DataFrame | None = None,
    y: Any = None,
    top: int = 20,
) -> Path:
    """Horizontal bar chart of the ``top`` most important raw features (see above)."""
    scores = feature_importances(pipeline, feature_names, X, y)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:top]
    ranked.reverse()  # largest at the top of a barh chart
    figure = Figure(figsize=(7, 0.35 * max(len(ranked), 3) + 1.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.barh([name for name, _ in ranked], [value for _, value in ranked], color="#4c72b0")
    axes.set_xlabel("relative importance")
    axes.set_title("Feature importance")
    figure.tight_layout()
    return _save(figure, path)


def confusion_matrix_png(y_true: Any, y_pred: Any, classes: Sequence[Any], path: Path) -> Path:
    """Confusion matrix (counts; rows true, columns predicted) labelled with ``classes``.

    ``y_true``/``y_pred`` may hold class indices (as in
    :class:`~mlctl.ml.train.TrainResult`) or the labels themselves.
    """
    from sklearn.metrics import confusion_matrix

    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    indices = all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < k
        for v in np.concatenate([truth, predicted]).tolist()
    )
    labels: list[Any] = list(range(k)) if indices else list(classes)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    size = max(4.0, 0.6 * k + 2.5)
    figure = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    names = [str(c) for c in classes]
    axes.set_xticks(range(k), labels=names, rotation=45, ha="right")
    axes.set_yticks(range(k), labels=names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    limit = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            color = "white" if matrix[i, j] > limit else "black"
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    figure.tight_layout()
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
