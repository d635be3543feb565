"""The prediction log contract monitors read: objects written whole, one per flush per replica,
never rewritten; one record per request; reading back from a directory or from S3."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import seaweed
from mlctl.providers.predlog import (
    LocalLogStore,
    PredictionLogWriter,
    S3LogStore,
    prediction_log_dir,
    read_predictions,
    read_requests,
    replica_id,
)
from seaweed import Seaweed, fresh_bucket

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)


def _record(i: int, ts: datetime, rows: int = 1, status: int = 200) -> dict:
    return {
        "ts": ts.isoformat(),
        "request_id": f"r{i}",
        "endpoint": "churn-api",
        "model": "churn-predictor",
        "version": 1 + i % 2,
        "route": "/predict" if rows == 1 else "/predict/batch",
        "status": status,
        "latency_ms": 0.5 + i,
        "rows": rows if status == 200 else 0,
        "predictions": [
            {
                "entity": {"customer_id": f"C{i}-{k}"},
                "inputs": {"total_orders_30d": i, "avg_order_value": 1.5 * i},
                "prediction": "Yes" if i % 3 else "No",
                "probability": i / 100,
            }
            for k in range(rows if status == 200 else 0)
        ],
    }


def _objects(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout(tmp_path: Path) -> None:
    assert (
        prediction_log_dir(tmp_path, ".mlctl", "prod", "m")
        == tmp_path / ".mlctl" / "predictions" / "prod" / "m"
    )


def test_one_object_per_flush_named_by_replica_and_never_rewritten(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, flush_interval=3600)
    now = datetime.now(UTC)
    writer.log(_record(0, now))
    writer.log(_record(1, now))
    assert writer.pending == 2 and not _objects(tmp_path)  # nothing written on the caller's thread
    assert writer.flush() == 2
    first = _objects(tmp_path)
    assert len(first) == 1
    writer.log(_record(2, now))
    writer.flush()
    assert writer.flush() == 0  # nothing buffered: no empty object
    second = _objects(tmp_path)
    assert len(second) == 2 and {k: second[k] for k in first} == first  # the first object is untouched
    for key in second:
        folder, name = key.split("/")
        assert folder == f"date={now.date().isoformat()}"
        assert name.startswith("part-") and name.endswith(".jsonl") and f"-{replica_id()}-" in name
    assert replica_id().endswith(f"-{os.getpid()}")


def test_partitioned_by_date_and_read_back_in_time_order(tmp_path: Path) -> None:
    day1 = datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)
    day2 = day1 + timedelta(seconds=2)
    with PredictionLogWriter(tmp_path, flush_interval=10) as writer:
        writer.log(_record(1, day2, rows=3))
        writer.log(_record(0, day1))
    files = sorted(_objects(tmp_path))
    assert [f.split("/")[0] for f in files] == ["date=2026-01-01", "date=2026-01-02"]
    requests = read_requests(tmp_path)
    assert list(requests["request_id"]) == ["r0", "r1"] and list(requests["rows"]) == [1, 3]
    assert list(requests["latency_ms"]) == [0.5, 1.5]  # the batch's latency, once
    frame = read_predictions(tmp_path)
    assert list(frame["request_id"]) == ["r0", "r1", "r1", "r1"] and list(frame["row"]) == [0, 0, 1, 2]
    assert list(frame["customer_id"]) == ["C0-0", "C1-0", "C1-1", "C1-2"]
    assert frame["ts"].iloc[0] == day1
    assert list(read_requests(tmp_path, since=day1 + timedelta(seconds=1))["request_id"]) == ["r1"]
    assert list(read_requests(tmp_path, until=day2)["request_id"]) == ["r0"]


def test_epoch_timestamps_are_formatted_by_the_shipper(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path) as writer:
        record = _record(0, datetime.now(UTC))
        record["ts"] = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()
        writer.log(record)
    (line,) = b"".join(_objects(tmp_path).values()).decode().splitlines()
    assert json.loads(line)["ts"] == "2026-03-04T05:06:07+00:00"
    assert next(iter(_objects(tmp_path))).startswith("date=2026-03-04/")


def test_background_flush_from_many_threads(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, flush_interval=0.02, batch_size=100).start()
    now = datetime.now(UTC)

    def produce(base: int) -> None:
        for i in range(500):
            writer.log(_record(base + i, now))

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    lines = [json.loads(line) for data in _objects(tmp_path).values() for line in data.splitlines()]
    assert len(lines) == 2000 and len({r["request_id"] for r in lines}) == 2000
    assert writer.written == 2000 and writer.dropped == 0 and writer.objects == len(_objects(tmp_path))


def test_temp_files_and_garbage_lines_are_not_read(tmp_path: Path) -> None:
    empty = read_requests(tmp_path / "nothing")
    assert list(empty.columns)[:3] == ["ts", "request_id", "endpoint"] and len(empty) == 0
    assert len(read_predictions(tmp_path / "nothing")) == 0
    folder = tmp_path / "date=2026-01-01"
    folder.mkdir()
    good = json.dumps(_record(0, datetime(2026, 1, 1, tzinfo=UTC)))
    (folder / "part-20260101T000000000000Z-host-1-000001.jsonl").write_text(good + "\nnot json\n[1]\n")
    (folder / ".part-20260101T000001000000Z-host-1-000002.jsonl.x.tmp").write_text(good[:20])  # a crash
    assert len(read_requests(tmp_path)) == 1


def test_lines_of_the_earlier_format_read_as_requests_of_one_prediction(tmp_path: Path) -> None:
    folder = tmp_path / "date=2026-01-01"
    folder.mkdir()
    old = {
        "ts": "2026-01-01T00:00:00+00:00",
        "request_id": "old",
        "endpoint": "e",
        "model": "m",
        "version": 1,
        "entity": {"customer_id": "C9"},
        "inputs": {"x": 1.0},
        "prediction": "Yes",
        "probability": 0.9,
        "latency_ms": 3.0,
        "status": 200,
    }
    (folder / "part-20260101T000000000000Z-1.jsonl").write_text(json.dumps(old) + "\n")
    requests = read_requests(tmp_path)
    assert list(requests["rows"]) == [1] and list(requests["latency_ms"]) == [3.0]
    frame = read_predictions(tmp_path)
    assert list(frame["customer_id"]) == ["C9"] and list(frame["x"]) == [1.0]


def test_full_buffer_drops_instead_of_growing(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, max_buffer=10)
    for i in range(15):
        writer.log(_record(i, datetime.now(UTC)))
    assert writer.pending == 10 and writer.dropped == 5
    writer.close()
    assert len(read_requests(tmp_path)) == 10


class _Flaky(LocalLogStore):
    """A store whose first ``failures`` uploads fail."""

    def __init__(self, directory: Path, failures: int) -> None:
        super().__init__(directory)
        self.failures = failures

    def put(self, key: str, data: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("the store is down")
        super().put(key, data)


def test_a_failed_upload_is_retried_on_the_next_flush(tmp_path: Path) -> None:
    writer = PredictionLogWriter(_Flaky(tmp_path, failures=1))
    writer.log(_record(0, datetime.now(UTC)))
    with pytest.raises(RuntimeError, match="not shipped"):
        writer.flush()
    assert writer.errors == 1 and not _objects(tmp_path)
    writer.log(_record(1, datetime.now(UTC)))
    assert writer.flush() == 2
    assert sorted(read_requests(tmp_path)["request_id"]) == ["r0", "r1"]
    assert writer.dropped == 0


def test_shipped_to_s3_and_read_back_from_there(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    store = S3LogStore(s3.client(), bucket, "artifacts/prod/predictions/churn-predictor")
    now = datetime.now(UTC)
    with (
        PredictionLogWriter(store, replica="pod-a-1") as a,
        PredictionLogWriter(store, replica="pod-b-1") as b,
    ):
        for i in range(30):
            (a if i % 2 else b).log(_record(i, now - timedelta(seconds=30 - i), rows=2))
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 2 and all(
        k.startswith("artifacts/prod/predictions/churn-predictor/date=") for k in keys
    )
    assert {k.rsplit("-", 1)[0].rsplit("-", 2)[-2] for k in keys} == {"a", "b"}
    requests = read_requests(store, since=now - timedelta(minutes=5))
    assert len(requests) == 30 and requests["ts"].is_monotonic_increasing
    assert len(read_predictions(store)) == 60
    # an object flushed before the window opened is not even downloaded
    assert len(read_requests(store, since=datetime.now(UTC) + timedelta(seconds=1))) == 0
