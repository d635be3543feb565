"""The prediction logs the monitor tests write (monitor_support.py) are what serving writes:
they round-trip through the serving package's reader."""

from __future__ import annotations

from pathlib import Path

from monitor_support import FEATURES, activity_rows, log_dir, write_log


def test_log_format_round_trips_through_the_serving_reader(applied: Path) -> None:
    from mlctl.providers.predlog import read_predictions

    rows = activity_rows(applied, 50)
    write_log(applied, rows)
    frame = read_predictions(log_dir(applied))
    assert len(frame) == 50
    assert set(FEATURES) <= set(frame.columns)
    assert {"customer_id", "probability", "latency_ms", "status", "version"} <= set(frame.columns)
    assert frame["probability"].between(0, 1).all()
