"""The prediction logs the monitor tests write (monitor_support.py) are what serving writes:
they round-trip through the serving package's reader."""

from __future__ import annotations

from pathlib import Path

from monitor_support import FEATURES, activity_rows, log_dir, write_log


def test_log_format_round_trips_through_the_serving_reader(applied: Path) -> None:
    from mlctl.providers.predlog import read_predictions, read_requests

    rows = activity_rows(applied, 50)
    write_log(applied, rows)
    frame = read_predictions(log_dir(applied))
    assert len(frame) == 50
    assert set(FEATURES) <= set(frame.columns)
    assert {"customer_id", "probability", "request_id", "row", "version"} <= set(frame.columns)
    assert frame["probability"].between(0, 1).all()
    requests = read_requests(log_dir(applied))
    assert len(requests) == 50 and set(requests["status"]) == {200} and set(requests["rows"]) == {1}
