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

Cost: per view, one factorization of the join keys, one stable sort of the source by (key, event
time) and one binary search per entity row, all in numpy: O(n log n) in the rows involved.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlctl.errors import MlctlError

__all__ = ["PointInTimeFrame", "ViewRequest", "as_utc", "feature_columns", "training_frame"]

_ROW = "__mlctl_row"
_LABEL_TS = "__mlctl_label_ts"


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
    left[_LABEL_TS] = as_utc(labels[label_ts], f"timestamp column '{label_ts}' of the entity rows")
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
    columns = list(renamed.values())
    n_rows = len(labels)
    label_ns, label_ok = _ns(left[_LABEL_TS])
    event_ns, event_ok = _ns(as_utc(source[request.source_ts], f"'{view}' event time"))
    label_code, event_code = _key_codes(
        [_aligned_keys(labels[key], source[key]) for key in request.join_keys]
    )
    label_ok &= label_code >= 0
    event_ok &= event_code >= 0

    # Rank source rows by event time (ties in source order), so rank order is the tie-break
    # "last in source order wins". A label sees exactly the source rows whose rank is below the
    # number of source events at or before its time; (key code, rank) packs into one int64,
    # and a label's match is the last packed source value at or below its own.
    ttl_ns = None if request.ttl_seconds is None else np.int64(request.ttl_seconds) * 1_000_000_000
    wanted = np.flatnonzero(label_ok)
    wanted = wanted[np.argsort(label_ns[wanted], kind="stable")]  # sorted queries search faster
    rows = np.flatnonzero(event_ok)
    if len(wanted) and len(rows):
        # Rows no label can use: later than every label; keyed by no label; or expired for
        # every label (then every older row is too, so dropping them changes no answer).
        keep = event_ns[rows] <= label_ns[wanted[-1]]
        if ttl_ns is not None:
            keep &= event_ns[rows] > label_ns[wanted[0]] - ttl_ns
        rows = rows[keep]
        top = int(max(event_code[rows].max(initial=0), label_code[wanted].max()))
        if top < 8 * (len(source) + len(labels)):
            present = np.zeros(top + 1, dtype=bool)
            present[label_code[wanted]] = True
            rows = rows[present[event_code[rows]]]
    order, packed_events, target = _pack(rows, wanted, event_code, event_ns, label_code, label_ns)
    by_target = np.argsort(target)
    at = np.empty(len(wanted), dtype="int64")
    at[by_target] = np.searchsorted(packed_events, target[by_target], side="right") - 1
    safe = np.clip(at, 0, None)
    hit = (at >= 0) & (event_code[order][safe] == label_code[wanted]) if len(order) else at >= 0
    if ttl_ns is not None and len(order):
        hit &= event_ns[order][safe] > label_ns[wanted] - ttl_ns
    take = np.full(n_rows, -1, dtype="int64")
    take[wanted[hit]] = order[safe[hit]]
    result = pd.DataFrame(index=range(n_rows))
    for feature, column in renamed.items():
        values = source[feature].array
        result[column] = pd.api.extensions.take(values, take, allow_fill=True)
    for column in columns:  # keep the source dtype where the join allows it
        dtype = source[next(f for f, c in renamed.items() if c == column)].dtype
        if result[column].notna().all():
            with contextlib.suppress(TypeError, ValueError):
                result[column] = result[column].astype(dtype)
    return result


def _pack(
    rows: np.ndarray,
    wanted: np.ndarray,
    event_code: np.ndarray,
    event_ns: np.ndarray,
    label_code: np.ndarray,
    label_ns: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows sorted by (key, event time, source order) with their int64 packs, and each
    wanted label's pack: a label's match is the last source pack at or below its own.

    When key codes times the time span fit in an int64 (times in the coarsest unit that
    divides them all: s, ms, us or ns), (key, time) packs directly and one stable sort
    suffices; otherwise times are replaced by their rank in a stable sort by time.
    """
    if len(rows) == 0:
        empty = np.empty(0, dtype="int64")
        return empty, empty, np.full(len(wanted), -1, dtype="int64")
    times = event_ns[rows]
    low = int(times.min())
    rel = times - low
    for unit in (1_000_000_000, 1_000_000, 1_000, 1):
        if not (rel % unit).any():
            break
    span = int(rel.max()) // unit + 2
    top = int(max(event_code[rows].max(), label_code[wanted].max(initial=0))) + 1
    if top * span < 2**62:
        packed = event_code[rows] * span + rel // unit
        sorter = np.argsort(packed)  # unstable is faster; only equal packs need source order
        if (np.diff(packed[sorter]) == 0).any():
            sorter = np.argsort(packed, kind="stable")
        offset = np.clip((label_ns[wanted] - low) // unit, -1, span - 2)
        return rows[sorter], packed[sorter], label_code[wanted] * span + offset
    by_time = rows[np.argsort(times, kind="stable")]
    rank = np.empty(len(event_ns), dtype="int64")
    rank[by_time] = np.arange(len(by_time), dtype="int64")
    width = np.int64(len(by_time) + 1)
    packed = event_code[rows] * width + rank[rows]
    sorter = np.argsort(packed)
    seen = np.searchsorted(event_ns[by_time], label_ns[wanted], side="right")
    return rows[sorter], packed[sorter], label_code[wanted] * width + seen - 1


def _ns(times: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTC datetimes as int64 nanoseconds, and where they are not NaT."""
    return np.asarray(times.array.asi8, dtype="int64"), times.notna().to_numpy().copy()


def _key_codes(pairs: list[tuple[pd.Series, pd.Series]]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the (composite) join key on both sides; -1 where a key is null."""
    n_left = len(pairs[0][0]) if pairs else 0
    if len(pairs) == 1 and all(pd.api.types.is_integer_dtype(s) for s in pairs[0]):
        # one integer key: codes are offsets from the source's smallest key (no hashing)
        left, right = (s.to_numpy(dtype="int64") for s in pairs[0])
        if len(right) == 0:
            return np.full(len(left), -1, dtype="int64"), right
        low, high = int(right.min()), int(right.max())
        if high - low < 2**40:
            inside = (left >= low) & (left <= high)
            return np.where(inside, left - low, -1), right - low
    combined: np.ndarray | None = None
    for left_key, right_key in pairs:
        codes, uniques = pd.factorize(pd.concat([left_key, right_key], ignore_index=True), sort=False)
        codes = codes.astype("int64")
        if combined is None:
            combined = codes
        else:
            bad = (combined < 0) | (codes < 0)
            combined, _ = pd.factorize(combined * np.int64(len(uniques) + 1) + codes)
            combined = np.where(bad, -1, combined).astype("int64")
    assert combined is not None
    return combined[:n_left], combined[n_left:]


def as_utc(series: pd.Series, what: str) -> pd.Series:
    """``series`` as ``datetime64[ns, UTC]``; naive values are UTC; strings are parsed.
    MlctlError naming ``what`` (the column, for the message) when the values are not times."""
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
