"""Offline point-in-time retrieval: attach feature values to entity rows without leakage.

Contract of :func:`training_frame` (the building block of the offline feature store):

* For every entity row (e.g. a label) and every requested view, the feature values come from
  the latest source row with the same join key(s) whose event time ``t`` satisfies
  ``label_time - ttl < t <= label_time``. Without a ttl the lower bound is absent. So a value
  exactly ``ttl`` old is expired, and a value stamped at the label time itself is visible.
* Among source rows with equal keys and equal event times, the last one in source order wins.
* No match (unknown entity, only future rows, expired rows, a null key or a null entity
  time) gives missing values (NaN/None), never an error and never a future value.
* The output has exactly the rows of ``labels`` in their order and with their index, all of
  its columns, then one column per requested feature. A feature's column is its plain name,
  or ``<view>__<feature>`` when that name is requested from two views or is already a column
  of ``labels``; :func:`feature_columns` computes these names without data (serving uses
  them to build the model's input), and the result's ``columns`` maps ``view:feature`` to them.
* Event times are compared as UTC instants: naive datetimes are taken as UTC; a time column
  that holds non-datetimes is an :class:`MlctlError`, as are missing key or feature columns.

Cost: one sort and one ``pandas.merge_asof`` per view, O(n log n) in the rows involved.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mlctl.errors import MlctlError

__all__ = ["PointInTimeFrame", "ViewRequest", "feature_columns", "training_frame"]

_ROW = "__mlctl_row"
_LABEL_TS = "__mlctl_label_ts"
_EVENT_TS = "__mlctl_event_ts"


@dataclass(frozen=True)
class ViewRequest:
    """Features wanted from one feature view's source data.

    ``join_keys`` are columns present, with the same names, in both the entity rows and
    ``source``; ``source_ts`` is the event-time column of ``source``; ``ttl_seconds`` of
    ``None`` means values never expire.
    """

    view: str
    join_keys: list[str]
    source: pd.DataFrame = field(repr=False)
    source_ts: str
    features: list[str]
    ttl_seconds: int | None = None


@dataclass(frozen=True)
class PointInTimeFrame:
    """The joined frame and the name of the column holding each ``view:feature``."""

    frame: pd.DataFrame
    columns: dict[str, str]

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in request order (the model's input columns)."""
        return list(self.columns.values())


def feature_columns(refs: Iterable[tuple[str, str]], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Map each ``(view, feature)`` to its output column name, keyed ``'view:feature'``.

    A feature keeps its plain name unless two views provide that name or it is in
    ``reserved`` (columns already present, e.g. the label frame's); then it is
    ``<view>__<feature>``.
    """
    pairs = list(dict.fromkeys(refs))
    counts = Counter(feature for _, feature in pairs)
    taken = set(reserved)
    names: dict[str, str] = {}
    for view, feature in pairs:
        plain = counts[feature] == 1 and feature not in taken
        names[f"{view}:{feature}"] = feature if plain else f"{view}__{feature}"
    return names


def training_frame(labels: pd.DataFrame, label_ts: str, requests: Sequence[ViewRequest]) -> PointInTimeFrame:
    """Join each view's features onto ``labels`` as of each row's ``label_ts`` (see module)."""
    if label_ts not in labels.columns:
        raise MlctlError(f"entity rows have no timestamp column '{label_ts}'")
    names = feature_columns(((r.view, f) for r in requests for f in r.features), reserved=labels.columns)
    out = labels.copy()
    left = pd.DataFrame({_ROW: range(len(labels))})
    left[_LABEL_TS] = _utc(labels[label_ts], f"timestamp column '{label_ts}' of the entity rows")
    for request in requests:
        values = _join_view(labels, left, request, names)
        for column in values.columns:
            out[column] = values[column].to_numpy()
    return PointInTimeFrame(out, names)


def _join_view(
    labels: pd.DataFrame, left: pd.DataFrame, request: ViewRequest, names: dict[str, str]
) -> pd.DataFrame:
    """Feature values of one view for every label row, in label row order."""
    view, source = request.view, request.source
    for key in request.join_keys:
        if key not in labels.columns:
            raise MlctlError(f"feature view '{view}': entity rows have no join key '{key}'")
        if key not in source.columns:
            raise MlctlError(f"feature view '{view}': source has no join key '{key}'")
    if request.source_ts not in source.columns:
        raise MlctlError(f"feature view '{view}': source has no timestamp '{request.source_ts}'")
    absent = [f for f in request.features if f not in source.columns]
    if absent:
        raise MlctlError(f"feature view '{view}': source has no feature(s) {', '.join(absent)}")
    renamed = {f: names[f"{view}:{f}"] for f in request.features}
    keys = [f"__mlctl_key{i}" for i in range(len(request.join_keys))]

    right = pd.DataFrame({_EVENT_TS: _utc(source[request.source_ts], f"'{view}' event time")})
    lhs = left.copy()
    for alias, key in zip(keys, request.join_keys, strict=True):
        lhs[alias], right[alias] = _aligned_keys(labels[key], source[key])
    for feature, column in renamed.items():
        right[column] = source[feature].to_numpy()
    right = right.dropna(subset=[_EVENT_TS, *keys])
    right = right.sort_values(_EVENT_TS, kind="stable")  # ties keep source order: last wins
    usable = lhs[_LABEL_TS].notna() & lhs[keys].notna().all(axis=1)
    lhs = lhs[usable].sort_values(_LABEL_TS, kind="stable")

    merged = pd.merge_asof(
        lhs,
        right,
        left_on=_LABEL_TS,
        right_on=_EVENT_TS,
        by=keys,
        direction="backward",
        allow_exact_matches=True,
    )
    columns = list(renamed.values())
    if request.ttl_seconds is not None:
        oldest = merged[_LABEL_TS] - pd.Timedelta(seconds=request.ttl_seconds)
        expired = merged[_EVENT_TS].notna() & (merged[_EVENT_TS] <= oldest)
        merged.loc[expired, columns] = None
    result = merged.set_index(_ROW)[columns].reindex(range(len(labels)))
    for column in columns:  # keep the source dtype where the join allows it
        dtype = source[next(f for f, c in renamed.items() if c == column)].dtype
        if result[column].notna().all():
            with contextlib.suppress(TypeError, ValueError):
                result[column] = result[column].astype(dtype)
    return result


def _utc(series: pd.Series, what: str) -> pd.Series:
    """``series`` as ``datetime64[ns, UTC]``; naive values are UTC; strings are parsed."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series):
        values = series.dt.tz_localize("UTC")
    elif series.isna().all() or pd.api.types.is_string_dtype(series) or series.dtype == object:
        try:
            values = pd.to_datetime(series, utc=True, format="ISO8601")
        except (ValueError, TypeError) as error:
            raise MlctlError(f"{what} holds values that are not datetimes ({error})") from None
    else:
        raise MlctlError(f"{what} is {series.dtype}, not a datetime")
    return values.astype("datetime64[ns, UTC]").reset_index(drop=True)


def _aligned_keys(left: pd.Series, right: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Join key values of both sides in one dtype (numbers as float64, anything else text)."""
    api = pd.api.types
    if api.is_integer_dtype(left) and api.is_integer_dtype(right):
        return left.astype("int64").reset_index(drop=True), right.astype("int64").reset_index(drop=True)
    numeric = api.is_numeric_dtype
    if numeric(left) and numeric(right) and not (api.is_bool_dtype(left) or api.is_bool_dtype(right)):
        return (
            left.astype("float64").reset_index(drop=True),
            right.astype("float64").reset_index(drop=True),
        )
    return _text(left), _text(right)


def _text(series: pd.Series) -> pd.Series:
    def one(value: object) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return series.map(one, na_action="ignore").astype(object).reset_index(drop=True)
