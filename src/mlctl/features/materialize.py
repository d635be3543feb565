"""Materialization: copy the latest feature values of a view's source into the online store.

Contract of :func:`materialize_view`:

* Incremental by event time. The state records, per view, a *watermark* (the latest event
  time materialized so far, inclusive) and a digest of the source rows at or before it. The
  next run writes only rows with ``watermark < event time <= end`` (``end`` is the time of
  the run by default, so rows stamped in the future are never served early) and moves the
  watermark to the latest event written; for each entity only its latest row in the window
  is written, and the store keeps a record only when it is newer.
* A window already materialized is never written again: when the source rows at or before the
  watermark are unchanged (same digest), they are not re-read into the store. When they did
  change (a backfill or a correction), when the view's schema changed (source, join keys,
  timestamp column or features), when the online store is another one or lost the view, or
  when a rebuild is asked for, the view is dropped from the store and rebuilt from scratch;
  the result says why.
* The returned status is what the executor records in state (``feature_view.NAME`` status):
  ``schema``, ``store``, ``fingerprint``, ``watermark`` / ``watermark_ns``, ``digest``,
  ``next_event`` (earliest source event after the watermark, so ``plan`` knows when rows
  become due), ``entities`` (records in the store) and ``windows`` (the last 100).

Reads the source through :func:`mlctl.ml.tables.read_table`. Imports pandas only when called.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.features.online import OnlineStore, entity_key, key_part, online_store
from mlctl.spec.views import schema_hash, view_schema

if TYPE_CHECKING:
    import pandas as pd

    from mlctl.spec.envspec import EnvSpec

__all__ = [
    "MaterializeResult",
    "materialize_view",
    "source_frame",
]

MAX_WINDOWS = 100


def iso(ns: int | None) -> str | None:
    """ISO-8601 UTC text of an epoch-nanosecond time (microsecond precision)."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def to_ns(value: datetime | str) -> int:
    """Epoch nanoseconds of a datetime or ISO text (naive means UTC)."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise MlctlError(f"'{value}' is not an ISO-8601 time (e.g. 2024-06-30T12:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass
class MaterializeResult:
    """What one materialization did, and the status to record in state."""

    view: str
    status: dict[str, Any]
    candidates: int = 0
    written: int = 0
    rebuilt: bool = False
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        window = self.status["windows"][-1]
        start = window["start"] or "beginning"
        end = window["end"] or "no events yet"
        text = (
            f"{self.written:,} of {self.candidates:,} entity rows written, window ({start}, {end}]"
            f", {self.status['entities']:,} entities online"
        )
        if self.rebuilt:
            text += f" (rebuilt: {'; '.join(self.reasons)})"
        return text


def source_frame(spec: EnvSpec, name: str) -> pd.DataFrame:
    """The source table of a feature view, read with its declared types."""
    from mlctl.ml.tables import read_table
    from mlctl.providers.datasets import dataset_path

    env = spec.config
    view = env.feature_views[name]
    dataset = env.datasets[view.source]
    if not dataset.timestamp:
        raise MlctlError(
            f"feature view '{name}': dataset '{view.source}' declares no timestamp column; "
            "point-in-time features need event times"
        )
    path = dataset_path(spec, dataset)
    if dataset.file_format != "parquet" or not path.is_file():
        return read_table(path, dataset.file_format, dataset.schema_ or None, dataset.timestamp)
    # Parquet is columnar: read only the view's columns, then coerce as read_table does.
    import pandas as pd

    from mlctl.ml.tables import coerce_series

    schema = view_schema(env, name)
    wanted = list(dict.fromkeys([*schema["join_keys"], dataset.timestamp, *view.features]))
    try:
        frame = pd.read_parquet(path, columns=wanted)
    except Exception as error:  # pyarrow raises many kinds; all mean "unreadable" here
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise MlctlError(f"cannot read parquet file {path}: {type(error).__name__}: {first}") from None
    types = {c: k for c, k in dataset.schema_.items() if c in frame.columns}
    types[dataset.timestamp] = "datetime"
    api = pd.api.types
    for column, kind in types.items():
        series = frame[column]
        if (
            (kind == "int" and api.is_integer_dtype(series))
            or (kind == "float" and api.is_float_dtype(series))
            or (kind == "datetime" and isinstance(series.dtype, pd.DatetimeTZDtype))
        ):
            continue  # already the declared type (Parquet keeps types)
        converted, bad = coerce_series(series, kind)
        if not bad.any():
            frame[column] = converted
    return frame


def _event_ns(frame: pd.DataFrame, column: str, view: str) -> Any:
    from mlctl.features.offline import as_utc

    times = as_utc(frame[column], f"'{view}' event time")
    return times.astype("int64").where(times.notna(), other=None)


def _digest(frame: pd.DataFrame, columns: list[str]) -> str:
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return f"{len(frame)}:" + hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


def _key_column(series: pd.Series) -> list[str]:
    """Join key values as store key text (see :func:`mlctl.features.online.key_part`)."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(series):
        return [str(v) for v in series.tolist()]
    return [key_part(v) for v in series.tolist()]


def _json_column(series: pd.Series) -> list[str]:
    """Each value of a column as JSON text (nulls, NaN and NaT are ``null``).

    Numeric columns are encoded in one call of the C encoder and split, which is an order
    of magnitude faster than encoding value by value; text goes through the C string escaper.
    """
    import json

    import pandas as pd

    api = pd.api.types
    notna = series.notna().to_numpy()
    if api.is_bool_dtype(series):
        return ["true" if v else "false" for v in series.tolist()]
    if api.is_integer_dtype(series) or (api.is_float_dtype(series) and bool(notna.all())):
        text = json.dumps(series.tolist())
        return text[1:-1].split(", ") if len(series) else []
    if api.is_float_dtype(series):
        values = [v if ok else None for v, ok in zip(series.tolist(), notna, strict=True)]
        text = json.dumps(values)
        return text[1:-1].split(", ") if values else []
    if api.is_datetime64_any_dtype(series):
        return ["null" if pd.isna(v) else f'"{v.isoformat()}"' for v in series]
    escape = json.encoder.encode_basestring
    out = []
    for value, ok in zip(series.tolist(), notna, strict=True):
        if not ok:
            out.append("null")
        elif isinstance(value, str):
            out.append(escape(value))
        else:
            out.append(json.dumps(value.item() if hasattr(value, "item") else value, default=str))
    return out


def materialize_view(
    spec: EnvSpec,
    name: str,
    previous: dict[str, Any] | None,
    *,
    store: OnlineStore | None = None,
    end: datetime | str | None = None,
    rebuild: str | None = None,
    fingerprint: str | None = None,
) -> MaterializeResult:
    """Bring the online records of view ``name`` up to ``end`` (see the module contract).

    ``previous`` is the view's recorded status (None or {} when never materialized);
    ``rebuild`` forces a rebuild and says why; ``fingerprint`` is the source's, if known.
    """
    env = spec.config
    view = env.feature_views[name]
    schema = view_schema(env, name)
    digest_of_schema = schema_hash(schema)
    own_store = store is None
    store = store or online_store(spec)
    try:
        frame = source_frame(spec, name)
        keys, ts, features = schema["join_keys"], schema["timestamp"], list(view.features)
        missing = [c for c in [*keys, ts, *features] if c not in frame.columns]
        if missing:
            raise MlctlError(
                f"feature view '{name}': source '{view.source}' has no column(s) {', '.join(missing)}"
            )
        frame = frame[[*keys, ts, *features]].copy()
        frame["__ns"] = _event_ns(frame, ts, name)
        frame = frame.dropna(subset=["__ns", *keys])
        frame["__ns"] = frame["__ns"].astype("int64")
        end_ns = to_ns(end) if end is not None else to_ns(datetime.now(UTC))

        prev = dict(previous or {})
        reasons: list[str] = []
        if rebuild:
            reasons.append(rebuild)
        if prev.get("schema") and prev["schema"] != digest_of_schema:
            reasons.append("the view's schema changed")
        if prev.get("store") and prev["store"] != store.describe():
            reasons.append(f"the online store changed (was {prev['store']})")
        stored = store.view_schema(name)
        if prev.get("online") and (stored or {}).get("hash") != digest_of_schema:
            reasons.append("the online store holds no current records of the view")
        watermark = prev.get("watermark_ns") if not reasons else None
        hashed = [*keys, "__ns", *features]
        if watermark is not None:
            if end_ns < watermark:
                raise MlctlError(
                    f"feature view '{name}': end {iso(end_ns)} is before the materialized watermark "
                    f"{iso(watermark)} (use a rebuild to go back)"
                )
            if _digest(frame[frame["__ns"] <= watermark], hashed) != prev.get("digest"):
                reasons.append(f"source rows at or before {iso(watermark)} changed")
                watermark = None
        rebuilt = bool(reasons)
        if watermark is None:
            store.drop_view(name)
            window = frame[frame["__ns"] <= end_ns]
        else:
            window = frame[(frame["__ns"] > watermark) & (frame["__ns"] <= end_ns)]
        # the latest row per entity (ties: the last in source order, as offline)
        latest = window.sort_values("__ns", kind="stable").drop_duplicates(subset=keys, keep="last")
        if len(keys) == 1:
            entity = _key_column(latest[keys[0]])
        else:
            entity = [entity_key(row) for row in zip(*(latest[k].tolist() for k in keys), strict=True)]
        columns = [_json_column(latest[f]) for f in features]
        values = ["[" + ",".join(parts) + "]" for parts in zip(*columns, strict=True)]
        store.set_view_schema(name, {"hash": digest_of_schema, "features": features})
        written = store.write(name, zip(entity, latest["__ns"].tolist(), values, strict=True))

        upto = frame[frame["__ns"] <= end_ns]
        later = frame.loc[frame["__ns"] > end_ns, "__ns"]
        new_watermark = int(upto["__ns"].max()) if len(upto) else watermark
        windows = list(prev.get("windows", [])) if watermark is not None else []
        windows.append(
            {
                "start": iso(watermark),
                "end": iso(new_watermark),
                "until": iso(end_ns),
                "rows": len(window),
                "written": int(written),
                "at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
        )
        status = {
            "online": True,
            "schema": digest_of_schema,
            "store": store.describe(),
            "fingerprint": fingerprint or prev.get("fingerprint"),
            "watermark": iso(new_watermark),
            "watermark_ns": new_watermark,
            "digest": _digest(upto, hashed),
            "materialized_at": iso(end_ns),
            "next_event": iso(int(later.min())) if len(later) else None,
            "next_event_ns": int(later.min()) if len(later) else None,
            "entities": store.count(name),
            "windows": windows[-MAX_WINDOWS:],
        }
        return MaterializeResult(name, status, len(latest), int(written), rebuilt, reasons)
    finally:
        if own_store:
            store.close()


def drop_view(spec: EnvSpec, name: str) -> int:
    """Remove a view's records from the environment's online store; how many were removed."""
    store = online_store(spec)
    try:
        return store.drop_view(name)
    finally:
        store.close()
