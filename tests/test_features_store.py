"""FeatureStore API: point-in-time historical retrieval, online statuses and ttl, and the
agreement of online and offline values for the same entity and time (SQLite and Redis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import local_redis
from feature_repo import ROWS, write_repo
from mlctl.errors import MlctlError
from mlctl.features.materialize import materialize_view
from mlctl.features.store import (
    AFTER_REQUEST_TIME,
    NOT_FOUND,
    NULL_VALUE,
    OUTSIDE_MAX_AGE,
    PRESENT,
    FeatureStore,
)

redis_server = local_redis.redis_server  # a session fixture: the port of a throwaway redis-server


def materialized(root: Path, **kw: Any) -> FeatureStore:
    store = FeatureStore(root, "dev")
    materialize_view(store.spec, "cf", None, **kw)
    return store


def entity_df(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True),
        }
    )


# -- historical --------------------------------------------------------------------------
def test_historical_is_point_in_time_correct(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path, ROWS), "dev")
    df = entity_df(
        ("a", "2024-01-01T23:59:59Z"),  # before the 2nd event: no leakage
        ("a", "2024-01-02T00:00:00Z"),  # exactly at an event: visible
        ("a", "2024-01-06T00:00:00Z"),
        ("a", "2024-01-07T00:00:00Z"),  # exactly ttl (2d) after the last event: expired
        ("a", "2023-12-31T00:00:00Z"),  # before any event
        ("zz", "2024-01-02T00:00:00Z"),  # unknown entity
        ("b", "2024-01-02T00:00:00Z"),  # duplicate timestamps: the later source row wins
    )
    df.index = [10, 11, 12, 13, 14, 15, 16]
    out = store.get_historical_features(df, ["cf:orders", "cf:value"]).to_df()
    assert list(out.index) == [10, 11, 12, 13, 14, 15, 16]
    assert list(out.columns) == ["customer_id", "event_timestamp", "orders", "value"]
    orders = [None if pd.isna(v) else int(v) for v in out["orders"]]
    assert orders == [1, 2, 3, None, None, None, 11]
    assert pd.isna(out["value"].iloc[6])  # the winning row's value is null, not the earlier one's


def test_historical_full_names_bare_view_and_timestamp_column(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path, ROWS), "dev")
    df = entity_df(("c", "2024-01-04T00:00:00Z")).rename(columns={"event_timestamp": "asof"})
    out = store.get_historical_features(df, ["cf"], full_feature_names=True).to_df()
    assert list(out.columns) == ["customer_id", "asof", "cf__orders", "cf__value"]
    assert out["cf__orders"].tolist() == [7]


def test_historical_without_ttl_never_expires(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path, ROWS, ttl=None), "dev")
    out = store.get_historical_features(entity_df(("a", "2030-01-01T00:00:00Z")), ["cf:orders"]).to_df()
    assert out["orders"].tolist() == [3]


def test_historical_errors_are_user_errors(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path, ROWS), "dev")
    with pytest.raises(MlctlError, match="did you mean 'cf'"):
        store.get_historical_features(entity_df(("a", "2024-01-01")), ["cff:orders"])
    with pytest.raises(MlctlError, match=r"has no feature 'order' .did you mean 'orders'"):
        store.get_historical_features(entity_df(("a", "2024-01-01")), ["cf:order"])
    no_key = pd.DataFrame({"id": ["a"], "event_timestamp": pd.to_datetime(["2024-01-01"], utc=True)})
    with pytest.raises(MlctlError, match="no join key 'customer_id'"):
        store.get_historical_features(no_key, ["cf:orders"]).to_df()
    with pytest.raises(MlctlError, match="timestamp column"):
        store.get_historical_features(pd.DataFrame({"customer_id": ["a"]}), ["cf:orders"])


# -- online ------------------------------------------------------------------------------
def test_online_statuses_event_times_and_ttl_boundary(tmp_path: Path) -> None:
    store = materialized(write_repo(tmp_path, ROWS))
    rows = [{"customer_id": "a"}, {"customer_id": "b"}, {"customer_id": "zz"}]
    # a's latest is 2024-01-05; ttl 2d: valid while at < 2024-01-07
    response = store.get_online_features(["cf:orders", "cf:value"], rows, at="2024-01-06T23:59:59Z")
    assert response.to_dict() == {
        "customer_id": ["a", "b", "zz"],
        "orders": [3, None, None],
        "value": [3.5, None, None],
    }
    assert response.statuses["orders"] == [PRESENT, OUTSIDE_MAX_AGE, NOT_FOUND]
    assert response.event_timestamps["orders"] == ["2024-01-05T00:00:00Z", "2024-01-01T00:00:00Z", None]
    exactly = store.get_online_features(["cf:orders"], rows[:1], at="2024-01-07T00:00:00Z")
    assert exactly.statuses["orders"] == [OUTSIDE_MAX_AGE]
    assert exactly.to_dict()["orders"] == [None]
    b = store.get_online_features(["cf:orders", "cf:value"], [{"customer_id": "b"}], at="2024-01-02")
    assert b.statuses == {"orders": [PRESENT], "value": [NULL_VALUE]}
    assert b.to_dict()["orders"] == [11]  # duplicate event time: the later source row wins
    early = store.get_online_features(["cf:orders"], rows[:1], at="2024-01-04T00:00:00Z")
    assert early.statuses["orders"] == [AFTER_REQUEST_TIME]


def test_online_default_time_is_now_so_old_values_expire(tmp_path: Path) -> None:
    store = materialized(write_repo(tmp_path, ROWS))
    response = store.get_online_features(["cf:orders"], [{"customer_id": "a"}])
    assert response.statuses["orders"] == [OUTSIDE_MAX_AGE]
    assert response.to_dict(include_event_timestamps=True, include_status=True) == {
        "customer_id": ["a"],
        "orders": [None],
        "orders__event_timestamp": ["2024-01-05T00:00:00Z"],
        "orders__status": [OUTSIDE_MAX_AGE],
    }


def test_online_records_and_dataframe_shapes(tmp_path: Path) -> None:
    store = materialized(write_repo(tmp_path, ROWS, ttl=None))
    response = store.get_online_features(["cf"], [{"customer_id": "c", "other": 1}], full_feature_names=True)
    assert response.to_records() == [
        {
            "entity": {"customer_id": "c"},
            "features": {
                "cf__orders": {"value": 7, "status": PRESENT, "event_timestamp": "2024-01-03T00:00:00Z"},
                "cf__value": {"value": 7.5, "status": PRESENT, "event_timestamp": "2024-01-03T00:00:00Z"},
            },
        }
    ]
    assert list(response.to_df().columns) == ["customer_id", "cf__orders", "cf__value"]


def test_online_errors(tmp_path: Path) -> None:
    root = write_repo(tmp_path, ROWS)
    store = FeatureStore(root, "dev")
    with pytest.raises(MlctlError, match="has not been materialized in environment 'dev'"):
        store.get_online_features(["cf:orders"], [{"customer_id": "a"}])
    materialize_view(store.spec, "cf", None)
    with pytest.raises(MlctlError, match=r"entity row 1 has no 'customer_id'"):
        store.get_online_features(["cf:orders"], [{"customer_id": "a"}, {"id": "b"}])
    offline = FeatureStore(write_repo(tmp_path / "off", ROWS, online=False), "dev")
    with pytest.raises(MlctlError, match="'cf' is not online"):
        offline.get_online_features(["cf:orders"], [{"customer_id": "a"}])


def test_integer_keys_match_text_requests(tmp_path: Path) -> None:
    rows = [(101, "2024-01-01T00:00:00Z", 1, 1.0), (202, "2024-01-01T00:00:00Z", 2, 2.0)]
    root = write_repo(tmp_path, rows, ttl=None)
    data = root / "environments" / "dev" / "data.yaml"
    data.write_text(data.read_text().replace("customer_id: string", "customer_id: int"))
    store = materialized(root)
    got = store.get_online_features(["cf:orders"], [{"customer_id": 202}, {"customer_id": "101"}])
    assert got.to_dict()["orders"] == [2, 1]


# -- online/offline agreement ------------------------------------------------------------
def random_rows(seed: int, entities: int = 60, events: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = entities * events
    base = pd.Timestamp("2024-01-01", tz="UTC")
    # coarse times (whole hours) so duplicate timestamps per entity occur
    times = base + pd.to_timedelta(rng.integers(0, 24 * 20, n), unit="h")
    values = rng.normal(50, 20, n).round(2)
    values[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"c{i % entities}" for i in range(n)],
            "event_timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "orders": rng.integers(0, 9, n),
            "value": values,
        }
    )


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_online_and_offline_agree_for_the_same_entity_and_time(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    extra = None
    provider = None
    if backend == "redis":
        port = request.getfixturevalue("redis_server")
        extra = {"team": f"type: redis\nport: {port}\nkey_prefix: 'agree-{tmp_path.name}:'\n"}
        provider = "team"
    frame = random_rows(7)
    root = write_repo(tmp_path, frame, ttl="3d", online_provider=provider, extra_providers=extra)
    store = materialized(root)
    assert store.online.describe().startswith(backend)
    entities = [f"c{i}" for i in range(60)] + ["nobody"]
    last = pd.to_datetime(frame["event_timestamp"], utc=True).max()
    for at in (last, last + pd.Timedelta("1d"), last + pd.Timedelta("2d 23h"), last + pd.Timedelta("5d")):
        online = store.get_online_features(
            ["cf:orders", "cf:value"], [{"customer_id": e} for e in entities], at=at.to_pydatetime()
        ).to_dict()
        offline = store.get_historical_features(
            pd.DataFrame({"customer_id": entities, "event_timestamp": [at] * len(entities)}),
            ["cf:orders", "cf:value"],
        ).to_df()
        for column in ("orders", "value"):
            expected = [None if pd.isna(v) else float(v) for v in offline[column]]
            got = [None if v is None else float(v) for v in online[column]]
            assert got == expected, (at, column)
    # the checks above are not vacuous: some values are present and some expired
    mid = store.get_online_features(
        ["cf:orders"], [{"customer_id": e} for e in entities], at=(last + pd.Timedelta("1d")).to_pydatetime()
    )
    assert {PRESENT, OUTSIDE_MAX_AGE, NOT_FOUND} <= set(mid.statuses["orders"])
