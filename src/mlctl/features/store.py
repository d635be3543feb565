"""The feature store API, in the shape a Feast user knows.

``FeatureStore(repo_path, env)`` reads ``environments/<env>`` once. Then:

* ``get_online_features(features=["view:feature", ...], entity_rows=[{"customer_id": "C1"}])``
  reads the online store (one query per view) and returns an :class:`OnlineResponse`;
  ``.to_dict()`` is ``{join key: [...], feature: [...]}`` like Feast's. Every value carries a
  status and its event time: ``PRESENT``; ``NULL_VALUE`` (stored, but null);
  ``NOT_FOUND`` (no record for the entity); ``OUTSIDE_MAX_AGE`` (older than the view's ttl
  at request time: the value is withheld, never silently served); ``AFTER_REQUEST_TIME``
  (the record is newer than an explicit ``at``, so the value as of ``at`` is unknown online).
* ``get_historical_features(entity_df, features).to_df()`` joins the view sources to each
  entity row as of its timestamp (:func:`mlctl.features.offline.training_frame`).

Both use the same rule, so online and offline agree for the same entity and time: a value is
valid at time T iff ``T - ttl < event time <= T``. Output columns are named as in training
(the plain feature name, ``view__feature`` when two views share a name or with
``full_feature_names=True``), which are the names in a model's signature.

Cost: constructing parses the YAML (milliseconds, no pandas). An online call for N
entities is one indexed lookup per view plus JSON decoding of N small records; the plan of a
feature list is cached, and the stored schema is re-checked at most once a second. Safe to
share between threads. Online calls import no pandas; historical calls do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError
from mlctl.features.online import OnlineStore, entity_key, online_store
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.loader import load_environment
from mlctl.spec.names import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AFTER_REQUEST_TIME",
    "NOT_FOUND",
    "NULL_VALUE",
    "OUTSIDE_MAX_AGE",
    "PRESENT",
    "FeatureStore",
    "OnlineResponse",
    "RetrievalJob",
]

PRESENT = "PRESENT"
NULL_VALUE = "NULL_VALUE"
NOT_FOUND = "NOT_FOUND"
OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"
AFTER_REQUEST_TIME = "AFTER_REQUEST_TIME"

_SCHEMA_RECHECK_S = 1.0


def _iso(ns: int | None) -> str | None:
    from mlctl.features.materialize import iso

    return iso(ns)


@dataclass
class OnlineResponse:
    """Online feature values for a list of entity rows, with statuses and event times."""

    entity_rows: list[dict[str, Any]]
    join_keys: list[str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    event_ns: dict[str, list[int | None]]
    refs: dict[str, str] = field(default_factory=dict)  # output name -> 'view:feature'

    @property
    def event_timestamps(self) -> dict[str, list[str | None]]:
        """ISO-8601 UTC event time of each value (None when there is no record)."""
        return {name: [_iso(ns) for ns in times] for name, times in self.event_ns.items()}

    def to_dict(
        self, include_event_timestamps: bool = False, include_status: bool = False
    ) -> dict[str, list[Any]]:
        """``{join key: [...], feature: [...]}``; optional ``<feature>__event_timestamp`` and
        ``<feature>__status`` lists. Withheld values (expired, missing) are None."""
        out: dict[str, list[Any]] = {k: [row.get(k) for row in self.entity_rows] for k in self.join_keys}
        stamps = self.event_timestamps if include_event_timestamps else {}
        for name, values in self.values.items():
            out[name] = list(values)
            if include_event_timestamps:
                out[f"{name}__event_timestamp"] = stamps[name]
            if include_status:
                out[f"{name}__status"] = list(self.statuses[name])
        return out

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per entity row: its keys and, per feature, value, status and event time."""
        stamps = self.event_timestamps
        return [
            {
                "entity": {k: row.get(k) for k in self.join_keys},
                "features": {
                    name: {
                        "value": self.values[name][i],
                        "status": self.statuses[name][i],
                        "event_timestamp": stamps[name][i],
                    }
                    for name in self.values
                },
            }
            for i, row in enumerate(self.entity_rows)
        ]

    def to_df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.to_dict())


@dataclass
class RetrievalJob:
    """A point-in-time join, computed when :meth:`to_df` is called."""

    store: FeatureStore
    entity_df: pd.DataFrame
    refs: list[str]
    timestamp_column: str
    full_feature_names: bool = False

    def to_df(self) -> pd.DataFrame:
        return self.store._historical(
            self.entity_df, self.refs, self.timestamp_column, self.full_feature_names
        )


@dataclass
class _ViewPlan:
    view: str
    join_keys: list[str]
    ttl_ns: int | None
    wanted: list[tuple[str, str]]  # (output name, feature)
    index: list[int] = field(default_factory=list)  # position of each wanted feature in records
    checked: float = 0.0


class FeatureStore:
    """Features of one environment: online (materialized) and historical (from sources)."""

    def __init__(self, repo_path: str | Path = ".", env: str = "dev", *, spec: EnvSpec | None = None) -> None:
        self.spec = spec or load_environment(Path(repo_path).resolve(), env)
        self.env = self.spec.config
        self._store: OnlineStore | None = None
        self._plans: dict[tuple[tuple[str, ...], bool], tuple[list[_ViewPlan], dict[str, str]]] = {}
        self._sources: dict[str, tuple[tuple[float, int], Any]] = {}

    # -- definitions ---------------------------------------------------------------------
    @property
    def online(self) -> OnlineStore:
        """The environment's online store (opened on first use)."""
        if self._store is None:
            self._store = online_store(self.spec)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def list_feature_views(self) -> list[dict[str, Any]]:
        """Every feature view: entities, join keys, source, ttl, online, features."""
        out = []
        for name, view in self.env.feature_views.items():
            out.append(
                {
                    "name": name,
                    "entities": list(view.entities),
                    "join_keys": self._join_keys(name),
                    "source": view.source,
                    "ttl": view.ttl,
                    "online": view.online,
                    "features": dict(view.features),
                }
            )
        return out

    def _join_keys(self, view: str) -> list[str]:
        return [self.env.entities[e].join_key for e in self.env.feature_views[view].entities]

    def resolve(self, features: Sequence[str]) -> list[tuple[str, str]]:
        """``(view, feature)`` pairs of ``view:feature`` refs (a bare ``view`` means all)."""
        if isinstance(features, str):
            features = [features]
        pairs: list[tuple[str, str]] = []
        for ref in features:
            view_name, sep, feature = ref.partition(":")
            view = self.env.feature_views.get(view_name)
            if view is None:
                hint = did_you_mean(view_name, self.env.feature_views)
                raise MlctlError(
                    f"no feature view '{view_name}' in environment '{self.spec.name}'"
                    + (f" ({hint})" if hint else "")
                )
            if not sep or feature in ("", "*"):
                pairs.extend((view_name, f) for f in view.features)
                continue
            if feature not in view.features:
                hint = did_you_mean(feature, view.features)
                raise MlctlError(
                    f"feature view '{view_name}' has no feature '{feature}'" + (f" ({hint})" if hint else "")
                )
            pairs.append((view_name, feature))
        if not pairs:
            raise MlctlError("no features requested")
        return list(dict.fromkeys(pairs))

    def _names(self, pairs: list[tuple[str, str]], reserved: Sequence[str], full: bool) -> dict[str, str]:
        from mlctl.features.offline import feature_columns

        if full:
            return {f"{v}:{f}": f"{v}__{f}" for v, f in pairs}
        return feature_columns(pairs, reserved=reserved)

    # -- online --------------------------------------------------------------------------
    def _online_plan(self, features: Sequence[str], full: bool) -> tuple[list[_ViewPlan], dict[str, str]]:
        key = (tuple(features), full)
        cached = self._plans.get(key)
        if cached is None:
            pairs = self.resolve(features)
            keys = list(dict.fromkeys(k for v, _ in pairs for k in self._join_keys(v)))
            names = self._names(pairs, keys, full)
            plans: dict[str, _ViewPlan] = {}
            for view, feature in pairs:
                spec = self.env.feature_views[view]
                if not spec.online:
                    raise MlctlError(
                        f"feature view '{view}' is not online: set 'online: true' and run mlctl apply"
                    )
                ttl = spec.ttl_seconds
                plan = plans.setdefault(
                    view, _ViewPlan(view, self._join_keys(view), None if ttl is None else ttl * 10**9, [])
                )
                plan.wanted.append((names[f"{view}:{feature}"], feature))
            cached = (list(plans.values()), {n: r for r, n in names.items()})
            self._plans[key] = cached
        now = time.monotonic()
        for plan in cached[0]:
            if now - plan.checked > _SCHEMA_RECHECK_S:
                self._index(plan)
                plan.checked = now
        return cached

    def _index(self, plan: _ViewPlan) -> None:
        stored = self.online.view_schema(plan.view)
        if stored is None:
            raise MlctlError(
                f"feature view '{plan.view}' has not been materialized in environment "
                f"'{self.spec.name}': run mlctl apply -e {self.spec.name} (or mlctl features materialize)"
            )
        order = {f: i for i, f in enumerate(stored.get("features", []))}
        absent = [f for _, f in plan.wanted if f not in order]
        if absent:
            raise MlctlError(
                f"feature view '{plan.view}': {', '.join(absent)} not materialized yet: run mlctl apply -e "
                f"{self.spec.name}"
            )
        plan.index = [order[f] for _, f in plan.wanted]

    def get_online_features(
        self,
        features: Sequence[str],
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        at: datetime | str | None = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Latest materialized values for each entity row, ttl applied at request time.

        ``at`` (default: now) is the request time the ttl is measured against.
        """
        plans, refs = self._online_plan(features, full_feature_names)
        if at is None:
            now = time.time_ns()
        else:
            from mlctl.features.materialize import to_ns

            now = to_ns(at)
        rows = [dict(r) for r in entity_rows]
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        stamps: dict[str, list[int | None]] = {}
        join_keys: list[str] = []
        for plan in plans:
            keys = []
            for i, row in enumerate(rows):
                try:
                    parts = [row[k] for k in plan.join_keys]
                except KeyError as missing:
                    raise MlctlError(
                        f"entity row {i} has no {missing} (feature view '{plan.view}' is keyed by "
                        f"{', '.join(plan.join_keys)})"
                    ) from None
                keys.append(entity_key(parts))
            for k in plan.join_keys:
                if k not in join_keys:
                    join_keys.append(k)
            found = self.online.read(plan.view, keys)
            oldest = None if plan.ttl_ns is None else now - plan.ttl_ns
            for (name, _), index in zip(plan.wanted, plan.index, strict=True):
                column: list[Any] = []
                status: list[str] = []
                times: list[int | None] = []
                for record in found:
                    if record is None:
                        column.append(None)
                        status.append(NOT_FOUND)
                        times.append(None)
                        continue
                    ns, payload = record
                    times.append(ns)
                    if ns > now:
                        column.append(None)
                        status.append(AFTER_REQUEST_TIME)
                    elif oldest is not None and ns <= oldest:
                        column.append(None)
                        status.append(OUTSIDE_MAX_AGE)
                    else:
                        value = payload[index]
                        column.append(value)
                        status.append(PRESENT if value is not None else NULL_VALUE)
                values[name], statuses[name], stamps[name] = column, status, times
        return OnlineResponse(rows, join_keys, values, statuses, stamps, refs)

    # -- historical ----------------------------------------------------------------------
    def get_historical_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        timestamp_column: str | None = None,
        full_feature_names: bool = False,
    ) -> RetrievalJob:
        """Point-in-time join of ``features`` onto ``entity_df`` (its rows, order and index).

        ``entity_df`` holds the join keys and a timestamp column: ``timestamp_column``, else
        ``event_timestamp``, else its only datetime column.
        """
        self.resolve(features)  # fail early on unknown refs
        column = timestamp_column or self._timestamp_column(entity_df)
        return RetrievalJob(self, entity_df, list(features), column, full_feature_names)

    @staticmethod
    def _timestamp_column(entity_df: pd.DataFrame) -> str:
        import pandas as pd

        if "event_timestamp" in entity_df.columns:
            return "event_timestamp"
        dated = [c for c in entity_df.columns if pd.api.types.is_datetime64_any_dtype(entity_df[c])]
        if len(dated) == 1:
            return str(dated[0])
        raise MlctlError(
            "entity_df needs a timestamp column: name it event_timestamp or pass timestamp_column="
        )

    def _source(self, view: str) -> pd.DataFrame:
        from mlctl.features.materialize import source_frame
        from mlctl.providers.datasets import dataset_path

        dataset = self.env.datasets[self.env.feature_views[view].source]
        path = dataset_path(self.spec, dataset)
        try:
            stat = path.stat()
            mark = (stat.st_mtime, stat.st_size)
        except OSError:
            raise MlctlError(f"feature view '{view}': source {dataset.path} not found") from None
        cached = self._sources.get(str(path))
        if cached is None or cached[0] != mark:
            cached = (mark, source_frame(self.spec, view))
            self._sources[str(path)] = cached
        frame: pd.DataFrame = cached[1]
        return frame

    def _historical(
        self, entity_df: pd.DataFrame, features: Sequence[str], ts: str, full: bool
    ) -> pd.DataFrame:
        from mlctl.features.offline import ViewRequest, training_frame

        pairs = self.resolve(features)
        by_view: dict[str, list[str]] = {}
        for view, feature in pairs:
            by_view.setdefault(view, []).append(feature)
        requests = []
        for view, wanted in by_view.items():
            spec = self.env.feature_views[view]
            timestamp = self.env.datasets[spec.source].timestamp
            if not timestamp:
                raise MlctlError(f"feature view '{view}': its source declares no timestamp column")
            requests.append(
                ViewRequest(
                    view, self._join_keys(view), self._source(view), timestamp, wanted, spec.ttl_seconds
                )
            )
        result = training_frame(entity_df, ts, requests)
        if not full:
            return result.frame
        rename = {column: ref.replace(":", "__") for ref, column in result.columns.items()}
        return result.frame.rename(columns=rename)
