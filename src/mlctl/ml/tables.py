"""Reading datasets into DataFrames with their declared types.

Contract: :func:`read_table` never drops or reorders rows. It converts a declared column only
when *every* non-null value converts (a lossless, "safe" coercion); a column that does not
convert is left as read, and :func:`mlctl.ml.datachecks.run_checks` reports it under ``schema``.
Declared ``datetime`` columns and the timestamp column become UTC-aware datetimes (naive
values are taken to be UTC). ``string`` and ``category`` columns hold Python strings (CSV
reads them as text, so ``"00123"`` keeps its zeros); ``int`` columns are ``int64``, or
``float64`` when they hold nulls; ``bool`` columns are ``bool``, or ``object`` with nulls.
Every failure to read is an :class:`MlctlError` naming the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mlctl.errors import MlctlError
from mlctl.ml.fingerprint import fingerprint_file
from mlctl.ml.values import to_bool

__all__ = ["coerce_series", "fingerprint_file", "read_table"]


def read_table(
    path: Path,
    fmt: Literal["csv", "parquet"],
    schema: Mapping[str, str] | None = None,
    timestamp: str | None = None,
) -> pd.DataFrame:
    """Read a CSV or Parquet file and coerce its declared columns (see module contract).

    ``schema`` maps column -> ``string|int|float|bool|datetime|category``; ``timestamp``
    names the event-time column, parsed as a datetime whether or not it is declared.
    Raises :class:`MlctlError` when the file is missing, unreadable or not ``fmt``.
    """
    path = Path(path)
    if not path.is_file():
        raise MlctlError(f"data file not found: {path}")
    types = dict(schema or {})
    if timestamp:
        types[timestamp] = "datetime"
    try:
        if fmt == "csv":
            text_columns = {c: "str" for c, t in types.items() if t in ("string", "category")}
            frame = pd.read_csv(path, dtype=text_columns or None)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            raise MlctlError(f"{path}: unknown format '{fmt}' (expected csv or parquet)")
    except MlctlError:
        raise
    except Exception as error:  # pandas/pyarrow raise many kinds; all mean "unreadable"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise MlctlError(f"cannot read {fmt} file {path}: {type(error).__name__}: {first_line}") from None
    for column, kind in types.items():
        if column in frame.columns:
            converted, bad = coerce_series(frame[column], kind)
            if not bad.any():
                frame[column] = converted
    return frame


def coerce_series(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Convert ``series`` to the declared ``kind``; return (converted, bad).

    ``bad`` is a boolean mask of values that were not null but did not convert; where it is
    set, ``converted`` holds a null. Shared by :func:`read_table` (which applies a conversion
    only when ``bad`` is all False) and the ``schema`` data check (which reports ``bad``).
    """
    notnull = series.notna()
    converted: pd.Series
    if kind == "datetime":
        converted = to_utc_datetime(series)
    elif kind in ("int", "float"):
        if pd.api.types.is_bool_dtype(series):
            converted = series.astype("float64")
        else:
            converted = pd.to_numeric(series, errors="coerce").astype("float64")
        if kind == "int":
            fractional = converted.notna() & (converted != np.floor(converted))
            converted = converted.mask(fractional)
            if converted.notna().all() and not (notnull & converted.isna()).any():
                converted = converted.astype("int64")
    elif kind == "bool":
        converted = series.map(to_bool, na_action="ignore")
        converted = converted.astype(bool) if converted.notna().all() else converted.astype(object)
    elif kind in ("string", "category"):
        converted = series.map(_to_text, na_action="ignore").astype(object)
    else:
        raise MlctlError(f"unknown column type '{kind}'")
    bad = notnull & converted.isna()
    return converted, bad


def to_utc_datetime(series: pd.Series) -> pd.Series:
    """UTC-aware datetimes (naive values are UTC); unparseable values become NaT."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(series):
        return series.dt.tz_localize("UTC")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        # Bare numbers are not dates here: guessing a unit would silently invent times.
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    text = series.map(_to_text, na_action="ignore").astype(object)
    for fmt in ("ISO8601", "mixed"):
        try:
            return pd.to_datetime(text, utc=True, format=fmt)
        except (ValueError, TypeError, OverflowError):
            continue
    return pd.to_datetime(text, utc=True, format="mixed", errors="coerce")


def _to_text(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
