"""Metrics of a trained candidate on its held-out split.

Contract: :func:`evaluate` returns plain floats (nothing rounded) keyed by metric name:

* classifiers: ``accuracy``, ``precision``, ``recall``, ``f1`` (of the positive class — the
  last of ``classes`` — when binary, macro averages otherwise), ``auc`` (ROC AUC; one-vs-rest
  macro for several classes) and ``log_loss``;
* regressors: ``rmse``, ``mae``, ``r2``;
* both: ``latency_p50_ms`` and ``latency_p95_ms`` of *single-row* prediction (one-row
  DataFrame through the whole pipeline, ``predict_proba`` for classifiers), and ``n_train``,
  ``n_test``.

A metric that is undefined on this split (AUC when the test split holds one class, r2 on a
single row) is left out rather than stored as NaN; a gate on it then fails as missing.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlctl.ml.train import TrainResult

__all__ = ["LATENCY_SAMPLES", "evaluate", "latency_ms", "predict_proba_full"]

LATENCY_SAMPLES = 200


def evaluate(result: TrainResult, latency_samples: int = LATENCY_SAMPLES) -> dict[str, float]:
    """Metrics of ``result.pipeline`` on ``result.X_test``/``y_test`` (see module contract)."""
    X_test, y_test = result.X_test, result.y_test
    values: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if result.task == "classification":
            values.update(_classification(result, X_test, y_test))
        else:
            values.update(_regression(result, X_test, y_test))
    p50, p95 = latency_ms(result, latency_samples)
    values["latency_p50_ms"] = p50
    values["latency_p95_ms"] = p95
    values["n_train"] = float(len(result.X_train))
    values["n_test"] = float(len(X_test))
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def predict_proba_full(result: TrainResult, X: pd.DataFrame) -> np.ndarray:
    """Class probabilities with one column per entry of ``result.classes`` (absent ones 0)."""
    proba = result.pipeline.predict_proba(X)
    seen = result.pipeline.classes_
    full = np.zeros((len(X), len(result.classes)))
    full[:, np.asarray(seen, dtype=int)] = proba
    return full


def _classification(result: TrainResult, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    k = len(result.classes)
    labels = list(range(k))
    proba = predict_proba_full(result, X)
    pred = result.pipeline.predict(X)
    values = {"accuracy": float(skm.accuracy_score(y, pred))}
    if k == 2:
        kwargs: dict = {"average": "binary", "pos_label": 1, "zero_division": 0}
    else:
        kwargs = {"average": "macro", "labels": labels, "zero_division": 0}
    values["precision"] = float(skm.precision_score(y, pred, **kwargs))
    values["recall"] = float(skm.recall_score(y, pred, **kwargs))
    values["f1"] = float(skm.f1_score(y, pred, **kwargs))
    if len(np.unique(y)) >= 2:
        try:
            if k == 2:
                values["auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
            else:
                values["auc"] = float(
                    skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
                )
        except ValueError:
            pass
    values["log_loss"] = float(skm.log_loss(y, np.clip(proba, 1e-15, 1.0), labels=labels))
    return values


def _regression(result: TrainResult, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    pred = result.pipeline.predict(X)
    values = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
    }
    if len(y) >= 2:
        values["r2"] = float(skm.r2_score(y, pred))
    return values


def latency_ms(result: TrainResult, samples: int = LATENCY_SAMPLES) -> tuple[float, float]:
    """(p50, p95) milliseconds of one-row predictions over up to ``samples`` test rows."""
    X = result.X_test if len(result.X_test) else result.X_train
    predict = result.pipeline.predict_proba if result.task == "classification" else result.pipeline.predict
    rows = [X.iloc[[i]] for i in range(min(samples, len(X)))]
    if not rows:
        return 0.0, 0.0
    predict(rows[0])  # warm-up: first call pays for lazy imports and caches
    timings = []
    for row in rows:
        start = time.perf_counter()
        predict(row)
        timings.append((time.perf_counter() - start) * 1000.0)
    p50, p95 = np.percentile(timings, [50, 95])
    return float(p50), float(p95)
