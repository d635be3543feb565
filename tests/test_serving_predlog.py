"""The prediction log contract monitors read: layout, line format, batching, reading back."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlctl.providers.predlog import PredictionLogWriter, prediction_log_dir, read_predictions


def _record(i: int, ts: datetime) -> dict:
    return {
        "ts": ts.isoformat(),
        "request_id": f"r{i}",
        "endpoint": "churn-api",
        "model": "churn-predictor",
        "version": 1 + i % 2,
        "entity": {"customer_id": f"C{i}"},
        "inputs": {"total_orders_30d": i, "avg_order_value": 1.5 * i},
        "prediction": "Yes" if i % 3 else "No",
        "probability": i / 100,
        "latency_ms": 0.5,
        "status": 200,
    }


def test_layout(tmp_path: Path) -> None:
    assert (
        prediction_log_dir(tmp_path, ".mlctl", "prod", "m")
        == tmp_path / ".mlctl" / "predictions" / "prod" / "m"
    )


def test_partitioned_by_date_and_read_back_in_time_order(tmp_path: Path) -> None:
    day1 = datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)
    day2 = day1 + timedelta(seconds=2)
    with PredictionLogWriter(tmp_path, flush_interval=10) as writer:
        writer.log(_record(1, day2))
        writer.log(_record(0, day1))
        assert writer.pending == 2  # nothing written on the caller's thread
        assert not list(tmp_path.rglob("*.jsonl"))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert [f.split("/")[0] for f in files] == ["date=2026-01-01", "date=2026-01-02"]
    assert all(f.split("/")[1].startswith("part-") and f.endswith(f"-{os.getpid()}.jsonl") for f in files)
    frame = read_predictions(tmp_path)
    assert list(frame["request_id"]) == ["r0", "r1"]
    assert list(frame["customer_id"]) == ["C0", "C1"] and list(frame["total_orders_30d"]) == [0, 1]
    assert frame["ts"].iloc[0] == day1
    only_day2 = read_predictions(tmp_path, since=day1 + timedelta(seconds=1))
    assert list(only_day2["request_id"]) == ["r1"]
    assert list(read_predictions(tmp_path, until=day2)["request_id"]) == ["r0"]


def test_background_flush_in_batches_from_many_threads(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, flush_interval=0.05, batch_size=100).start()
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
    lines = [json.loads(line) for p in tmp_path.rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(lines) == 2000 and len({r["request_id"] for r in lines}) == 2000
    assert writer.written == 2000 and writer.dropped == 0


def test_incomplete_last_line_is_ignored_and_empty_dir_gives_columns(tmp_path: Path) -> None:
    empty = read_predictions(tmp_path / "nothing")
    assert list(empty.columns)[:3] == ["ts", "request_id", "endpoint"] and len(empty) == 0
    folder = tmp_path / "date=2026-01-01"
    folder.mkdir()
    good = json.dumps(_record(0, datetime(2026, 1, 1, tzinfo=UTC)))
    (folder / "part-x-1.jsonl").write_text(good + "\n" + good[:20])
    assert len(read_predictions(tmp_path)) == 1


def test_full_buffer_drops_instead_of_growing(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, max_buffer=10)
    for i in range(15):
        writer.log(_record(i, datetime.now(UTC)))
    assert writer.pending == 10 and writer.dropped == 5
    writer.close()
    assert len(read_predictions(tmp_path)) == 10
