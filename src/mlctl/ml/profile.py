"""The reference profile of training data, against which drift is measured later.

Contract: :func:`reference_profile` returns a JSON-able dict (plain ``int``/``float``/``str``/
``None``, never NaN)::

    {"n_rows": 4000, "features": {
        "avg_order_value": {"type": "float", "kind": "numeric", "count": 3980,
                            "null_ratio": 0.005, "mean": ..., "std": ..., "min": ..., "max": ...,
                            "quantiles": {"p1": ..., ..., "p99": ...},
                            "histogram": {"edges": [21 floats], "counts": [20 ints]}},
        "plan": {"type": "category", "kind": "categorical", "count": 4000, "null_ratio": 0.0,
                 "n_unique": 3, "top": {"gold": 0.5, "silver": 0.3, "bronze": 0.2}}}}

``count`` is the number of non-null values; ``top`` holds the frequencies (share of non-null
values) of the 20 most common values, as text. Numeric stats of a column without values are
None. Datetime features are profiled as numbers of seconds since the epoch. Bool features are
categorical (``"True"``/``"False"``). :func:`reference_sample` is a deterministic sample of
rows kept (as Parquet) for distribution tests such as Kolmogorov-Smirnov.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["HISTOGRAM_BINS", "QUANTILES", "TOP_CATEGORIES", "reference_profile", "reference_sample"]

QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20


def reference_profile(X: pd.DataFrame, feature_types: Mapping[str, str]) -> dict[str, Any]:
    """Per-feature statistics of ``X`` (see module contract); types missing are inferred."""
    features: dict[str, Any] = {}
    for column in X.columns:
        name = str(column)
        series = X[column]
        kind = feature_types.get(name) or _infer(series)
        entry: dict[str, Any] = {
            "type": kind,
            "count": int(series.notna().sum()),
            "null_ratio": float(series.isna().mean()) if len(series) else 0.0,
        }
        if kind in ("int", "float", "datetime"):
            entry["kind"] = "numeric"
            entry.update(_numeric(_as_numbers(series, kind)))
        else:
            entry["kind"] = "categorical"
            entry.update(_categorical(series))
        features[name] = entry
    return {"n_rows": len(X), "features": features}


def reference_sample(X: pd.DataFrame, n: int = 5000, seed: int = 42) -> pd.DataFrame:
    """Up to ``n`` rows of ``X`` chosen with ``seed`` (all rows when fewer), index reset."""
    sample = X if len(X) <= n else X.sample(n=n, random_state=seed)
    return sample.reset_index(drop=True)


def _infer(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def _as_numbers(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        from mlctl.ml.tables import to_utc_datetime

        stamps = to_utc_datetime(series).astype("datetime64[ns, UTC]")
        seconds = stamps.astype("int64").astype("float64") / 1e9
        values = seconds.where(stamps.notna()).to_numpy()
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def _numeric(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "quantiles": dict.fromkeys(QUANTILES),
            "histogram": {"edges": [], "counts": []},
        }
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    quantiles = np.quantile(values, list(QUANTILES.values()))
    return {
        "mean": _float(values.mean()),
        "std": _float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": _float(values.min()),
        "max": _float(values.max()),
        "quantiles": {k: _float(q) for k, q in zip(QUANTILES, quantiles, strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _categorical(series: pd.Series) -> dict[str, Any]:
    values = series.dropna()
    text = values.map(lambda v: str(v.item() if isinstance(v, np.generic) else v))
    frequencies = text.value_counts(normalize=True, sort=True)
    top = {str(k): float(v) for k, v in frequencies.head(TOP_CATEGORIES).items()}
    return {"n_unique": int(text.nunique()), "top": top}


def _float(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
