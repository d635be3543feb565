"""The prediction log: every prediction an endpoint makes, as date-partitioned JSONL.

Layout (the contract monitors read)::

    <repo>/<local_root>/predictions/<env>/<model>/date=YYYY-MM-DD/part-<UTC time>-<pid>.jsonl

One JSON object per line::

    {"ts": "2026-01-02T03:04:05.678901+00:00", "request_id": "...", "endpoint": "churn-api",
     "model": "churn-predictor", "version": 3, "entity": {"customer_id": "C1"} | {},
     "inputs": {"feature": value, ...}, "prediction": "Yes", "probability": 0.83 | null,
     "latency_ms": 1.2, "status": 200}

:class:`PredictionLogWriter` never writes on the request path: :meth:`PredictionLogWriter.log`
appends a dict to an in-memory buffer (a lock-free ``deque.append``); a daemon thread encodes
and appends the buffer to the current part file every ``flush_interval`` seconds or as soon as
``batch_size`` records wait, and :meth:`PredictionLogWriter.close` flushes what is left. A
process writes its own part files (the pid is in the name), so several workers never
interleave lines; a part file rolls over when the UTC date changes or it grows past
``max_part_bytes``. Readers may see a part file while it grows: :func:`read_predictions`
ignores a last line that is not yet complete.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas

__all__ = [
    "BASE_COLUMNS",
    "PredictionLogWriter",
    "iter_records",
    "prediction_log_dir",
    "read_predictions",
]

BASE_COLUMNS = [
    "ts",
    "request_id",
    "endpoint",
    "model",
    "version",
    "status",
    "latency_ms",
    "prediction",
    "probability",
]


def prediction_log_dir(repo: Path, root: str, env: str, model: str) -> Path:
    """The directory holding ``model``'s prediction log in ``env`` (``date=...`` folders below)."""
    return Path(repo) / root / "predictions" / env / model


def _now() -> datetime:
    return datetime.now(UTC)


class PredictionLogWriter:
    """Buffered, batched, background writer of one model's prediction log.

    Thread-safe: :meth:`log` may be called from any thread or the event loop; it does no I/O.
    Use as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        flush_interval: float = 0.5,
        batch_size: int = 1000,
        max_part_bytes: int = 64 << 20,
        max_buffer: int = 1_000_000,
    ) -> None:
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_part_bytes = max_part_bytes
        self.max_buffer = max_buffer
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._io_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._handle: TextIO | None = None
        self._handle_date: date | None = None
        self._handle_path: Path | None = None

    # -- producer side -------------------------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        """Queue one record (``ts`` is added when missing). Never blocks, never raises on I/O.

        When the writer cannot keep up and ``max_buffer`` records wait, new records are
        dropped and counted in :attr:`dropped` rather than growing memory without bound.
        """
        if len(self._buffer) >= self.max_buffer:
            self.dropped += 1
            return
        if "ts" not in record:
            record["ts"] = _now().isoformat()
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def log_many(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.log(record)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> PredictionLogWriter:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlctl-predlog", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the background thread and flush every buffered record to disk."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        with self._io_lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def __enter__(self) -> PredictionLogWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consumer side -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                self.errors += 1
                time.sleep(min(self.flush_interval, 1.0))

    def flush(self) -> int:
        """Write every buffered record now; return how many were written."""
        with self._io_lock:
            count = 0
            lines: list[str] = []
            current: date | None = None
            while self._buffer:
                record = self._buffer.popleft()
                day = _record_date(record)
                if current is not None and day != current:
                    self._write(current, lines)
                    count += len(lines)
                    lines = []
                current = day
                lines.append(json.dumps(record, default=_json_default, separators=(",", ":")))
            if lines and current is not None:
                self._write(current, lines)
                count += len(lines)
            self.written += count
            return count

    def _write(self, day: date, lines: list[str]) -> None:
        handle = self._open(day)
        handle.write("\n".join(lines) + "\n")
        handle.flush()

    def _open(self, day: date) -> TextIO:
        if self._handle is not None and self._handle_date == day and self._handle_path is not None:
            try:
                if self._handle.tell() < self.max_part_bytes:
                    return self._handle
            except OSError:
                pass
        if self._handle is not None:
            self._handle.close()
        folder = self.directory / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _now().strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"part-{stamp}-{os.getpid()}.jsonl"
        self._handle = path.open("a", encoding="utf-8")
        self._handle_date = day
        self._handle_path = path
        return self._handle


def _record_date(record: dict[str, Any]) -> date:
    ts = record.get("ts")
    if isinstance(ts, str) and len(ts) >= 10:
        try:
            return date.fromisoformat(ts[:10])
        except ValueError:
            pass
    if isinstance(ts, datetime):
        return ts.astimezone(UTC).date()
    return _now().date()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


# -- reading -------------------------------------------------------------------------------


def _partitions(directory: Path, since: datetime | None, until: datetime | None) -> list[Path]:
    if not directory.is_dir():
        return []
    first = since.astimezone(UTC).date() if since is not None else None
    last = until.astimezone(UTC).date() if until is not None else None
    files: list[Path] = []
    for folder in sorted(directory.glob("date=*")):
        try:
            day = date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            continue
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        files.extend(sorted(folder.glob("part-*.jsonl")))
    return files


def iter_records(
    directory: Path, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The raw records of a prediction log directory, partition by partition.

    Date folders outside ``[since, until]`` are not opened; records are not filtered by time
    here (see :func:`read_predictions`). Incomplete or corrupt lines are skipped.
    """
    for path in _partitions(Path(directory), since, until):
        with path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # a line still being written
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


def read_predictions(
    directory: Path, since: datetime | None = None, until: datetime | None = None
) -> pandas.DataFrame:
    """The prediction log under ``directory`` as one DataFrame, oldest first.

    Columns: ``ts`` (tz-aware UTC datetime), ``request_id``, ``endpoint``, ``model``,
    ``version``, ``status``, ``latency_ms``, ``prediction``, ``probability``, then one column
    per input feature and one per entity key (an input and an entity key of the same name
    share one column). ``since`` is inclusive, ``until`` exclusive; naive datetimes are taken
    as UTC. A missing directory gives an empty frame with the base columns.
    """
    import pandas as pd

    since = _utc(since)
    until = _utc(until)
    rows: list[dict[str, Any]] = []
    for record in iter_records(directory, since, until):
        row = {name: record.get(name) for name in BASE_COLUMNS}
        for key, value in (record.get("inputs") or {}).items():
            row.setdefault(key, value)
        for key, value in (record.get("entity") or {}).items():
            if row.get(key) is None:
                row[key] = value
        rows.append(row)
    if not rows:
        frame = pd.DataFrame({name: pd.Series(dtype="object") for name in BASE_COLUMNS})
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["latency_ms"] = frame["latency_ms"].astype("float64")
        frame["probability"] = frame["probability"].astype("float64")
        return frame
    frame = pd.DataFrame.from_records(rows)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    if since is not None:
        frame = frame[frame["ts"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["ts"] < pd.Timestamp(until)]
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce").astype("float64")
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce").astype("float64")
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    return frame


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
