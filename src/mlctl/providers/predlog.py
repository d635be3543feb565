"""The prediction log: one record per request an endpoint answered, in the environment's store.

Where (the contract monitors read, wherever they run)::

    local artifacts:  <repo>/<root>/predictions/<env>/<model>/date=YYYY-MM-DD/<object>
    S3 artifacts:     s3://<bucket>/<prefix>/<env>/predictions/<model>/date=YYYY-MM-DD/<object>
    <object> = part-<UTC flush time>-<replica>-<sequence>.jsonl

Every object is written whole (an S3 PUT; a temp file renamed locally), once, and never
rewritten or appended to: one object per flush per replica (``<replica>`` is the host name and
the pid, so replicas and workers never share a name). A replica killed at any moment loses the
records it had not flushed yet (at most one flush interval), never an object already written,
and a reader never sees half an object.

One JSON object per line, one line per HTTP request to a prediction route (failures included)::

    {"ts": "2026-01-02T03:04:05.678901+00:00", "request_id": "9f0c...", "endpoint": "churn-api",
     "model": "churn-predictor", "version": 3, "route": "/predict/batch", "status": 200,
     "latency_ms": 4.2, "rows": 2,
     "predictions": [{"entity": {"customer_id": "C1"}, "inputs": {"feature": value, ...},
                      "prediction": "Yes", "probability": 0.83}, ...]}

``latency_ms`` and ``status`` are the request's (a batch's latency once, not once per row);
a failed request has no predictions (``version`` is the version live when it arrived, or
null). Lines written by mlctl before this format (one line per prediction with ``inputs`` at
the top) are read as requests of one prediction.

:class:`PredictionLogWriter` never does I/O on the request path: :meth:`PredictionLogWriter.log`
appends to an in-memory deque; a daemon thread ships the buffer every ``flush_interval``
seconds (or as soon as ``batch_size`` records wait), handing the GIL back every 64 records it
encodes (so requests never wait a whole switch interval behind a flush), and
:meth:`PredictionLogWriter.close` ships what is left. An object that fails to upload is
retried on the next flush (at most ``max_retry_objects`` are kept; beyond that records are
dropped and counted).

Readers: :func:`read_requests` (one row per request: the serving monitors) and
:func:`read_predictions` (one row per prediction, with its request id and row number: the
drift and quality monitors); :func:`prediction_log_store` opens the log of an environment's
model where its artifacts provider keeps it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas

    from mlctl.spec.envspec import EnvSpec

__all__ = [
    "PREDICTION_COLUMNS",
    "REQUEST_COLUMNS",
    "LocalLogStore",
    "LogStore",
    "PredictionLogWriter",
    "S3ClientFactory",
    "S3LogStore",
    "iter_records",
    "prediction_log_dir",
    "prediction_log_store",
    "read_predictions",
    "read_requests",
    "replica_id",
]

REQUEST_COLUMNS = [
    "ts",
    "request_id",
    "endpoint",
    "model",
    "version",
    "route",
    "status",
    "latency_ms",
    "rows",
]
PREDICTION_COLUMNS = [
    "ts",
    "request_id",
    "row",
    "endpoint",
    "model",
    "version",
    "prediction",
    "probability",
]
BASE_COLUMNS = PREDICTION_COLUMNS  # the columns every prediction frame has (before features)

_OBJECT = re.compile(r"^part-(\d{8}T\d{6}\d{6})Z-.+\.jsonl$")


def prediction_log_dir(repo: Path, root: str, env: str, model: str) -> Path:
    """The local directory holding ``model``'s prediction log in ``env`` (local artifacts)."""
    return Path(repo) / root / "predictions" / env / model


def replica_id() -> str:
    """This process's name in object names: host name (a pod's name) and pid, filename-safe."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", socket.gethostname()) or "host"
    return f"{host[:60]}-{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


# -- where the objects live ------------------------------------------------------------------


class LogStore(Protocol):
    """Immutable objects under one model's log root, addressed by keys like
    ``date=2026-01-02/part-....jsonl``."""

    where: str

    def put(self, key: str, data: bytes) -> None:
        """Write the object ``key`` whole (or not at all); raises ``OSError``/S3 errors."""
        ...

    def keys(self, prefix: str = "") -> list[str]:
        """Keys of the objects under ``prefix`` (only complete objects), sorted."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it is gone."""
        ...


class LocalLogStore:
    """The log as files under a directory; each object written through a temp file + rename."""

    def __init__(self, directory: Path, where: str | None = None) -> None:
        self.directory = Path(directory)
        self.where = where or str(directory)

    def put(self, key: str, data: bytes) -> None:
        from mlctl.files import atomic_target

        with atomic_target(self.directory / key) as handle:
            handle.write(data)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.directory.is_dir():
            return []
        folder = prefix.rpartition("/")[0]
        pattern = f"{folder}/part-*.jsonl" if folder else "*/part-*.jsonl"
        found = (p.relative_to(self.directory).as_posix() for p in self.directory.glob(pattern))
        return sorted(k for k in found if k.startswith(prefix))

    def get(self, key: str) -> bytes | None:
        try:
            return (self.directory / key).read_bytes()
        except FileNotFoundError:
            return None


class S3LogStore:
    """The log as objects under ``s3://bucket/prefix/`` (one PUT each).

    ``client`` is an S3 client or a function making one (called on first use). A store made
    with a picklable function (:class:`S3ClientFactory`) pickles without its client and makes
    its own in the process that unpickles it (the shadow process writes the same log).
    """

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._factory = client if callable(client) and not hasattr(client, "put_object") else None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.where = f"s3://{bucket}/{self.prefix}"

    @property
    def client(self) -> Any:
        if self._client is self._factory and self._factory is not None:
            self._client = self._factory()
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        if self._factory is None:
            raise TypeError(f"the log store {self.where} holds a client, not a factory: it cannot be pickled")
        return {**self.__dict__, "_client": self._factory}

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data, ContentType="application/x-ndjson"
        )

    def keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        from mlctl.s3client import s3_error

        found: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/{prefix}"):
                for item in page.get("Contents", ()):
                    found.append(str(item["Key"])[len(self.prefix) + 1 :])
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, f"list the prediction log {self.where}") from None
        return sorted(found)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        from mlctl.s3client import is_missing, s3_error

        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")[
                "Body"
            ].read()
            return data
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise s3_error(exc, f"read {self.where}/{key}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"read {self.where}/{key}") from None


@dataclass(frozen=True)
class S3ClientFactory:
    """Makes the S3 client of an artifacts provider (picklable, unlike a client)."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None

    def __call__(self) -> Any:
        from mlctl.s3client import s3_client

        return s3_client(region=self.region, endpoint_url=self.endpoint_url, profile=self.profile)


def prediction_log_store(spec: EnvSpec, model: str) -> LogStore:
    """Where ``model``'s prediction log lives in ``spec``'s environment: the bucket of its S3
    artifacts provider, else the local directory (:func:`prediction_log_dir`)."""
    from mlctl.providers import local_root, provider_config
    from mlctl.spec.models import S3Provider

    config = provider_config(spec, spec.config.providers.artifacts)
    if isinstance(config, S3Provider):
        prefix = "/".join(p for p in (config.prefix.strip("/"), spec.name, "predictions", model) if p)
        factory = S3ClientFactory(config.region, config.endpoint_url, config.profile)
        return S3LogStore(factory, config.bucket, prefix)
    directory = prediction_log_dir(spec.repo, local_root(spec), spec.name, model)
    try:
        where = directory.resolve().relative_to(spec.repo.resolve()).as_posix()
    except ValueError:
        where = str(directory)
    return LocalLogStore(directory, where)


def _store(source: LogStore | Path | str) -> LogStore:
    if isinstance(source, (str, Path)):
        return LocalLogStore(Path(source))
    return source


# -- writing ---------------------------------------------------------------------------------


class PredictionLogWriter:
    """Buffered, background shipper of one process's request records to a :class:`LogStore`.

    Thread-safe: :meth:`log` may be called from any thread or the event loop; it does no I/O.
    Use as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        store: LogStore | Path,
        *,
        flush_interval: float = 2.0,
        batch_size: int = 20_000,
        max_buffer: int = 1_000_000,
        max_retry_objects: int = 100,
        replica: str | None = None,
    ) -> None:
        self.store = _store(store)
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.max_retry_objects = max_retry_objects
        self.replica = replica or replica_id()
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self.objects = 0
        self.last_error: str | None = None
        self._buffer: deque[dict[str, Any]] = deque()
        self._retry: list[tuple[str, bytes, int]] = []
        self._sequence = itertools.count(1)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._io_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- producer side -------------------------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        """Queue one record (``ts``: an ISO string or epoch seconds, added when missing).
        Never blocks, never raises on I/O.

        When the shipper cannot keep up and ``max_buffer`` records wait, new records are
        dropped and counted in :attr:`dropped` rather than growing memory without bound.
        """
        buffer = self._buffer
        if len(buffer) >= self.max_buffer:
            self.dropped += 1
            return
        if "ts" not in record:
            record["ts"] = _now().isoformat()
        buffer.append(record)
        if len(buffer) >= self.batch_size:
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
        """Stop the background thread and ship every buffered record (one last flush)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        try:
            self.flush()
        except Exception as error:  # the log must never take the server down
            self._failed(error)

    def __enter__(self) -> PredictionLogWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consumer side -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception as error:
                self._failed(error)
                time.sleep(min(self.flush_interval, 1.0))

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"

    def flush(self) -> int:
        """Ship every buffered record now, one object per date; return how many were written.

        Objects that fail to upload stay queued for the next flush (oldest dropped, and
        their records counted in :attr:`dropped`, beyond ``max_retry_objects``).
        """
        with self._io_lock:
            groups: dict[date, list[str]] = {}
            buffer = self._buffer
            encode = json.JSONEncoder(default=_json_default, separators=(",", ":"), ensure_ascii=False).encode
            encoded = 0
            while buffer:
                record = buffer.popleft()
                encoded += 1
                if not encoded % 64:  # let the event loop have the GIL: no long stall on requests
                    time.sleep(0)
                ts = record.get("ts")
                if isinstance(ts, (int, float)):  # an epoch from the request path: format it here
                    record["ts"] = datetime.fromtimestamp(ts, UTC).isoformat()
                try:
                    line = encode(record)
                except (TypeError, ValueError):
                    self.dropped += 1
                    continue
                groups.setdefault(_record_date(record), []).append(line)
            stamp = _now().strftime("%Y%m%dT%H%M%S%fZ")
            for day, lines in sorted(groups.items()):
                key = f"date={day.isoformat()}/part-{stamp}-{self.replica}-{next(self._sequence):06d}.jsonl"
                self._retry.append((key, ("\n".join(lines) + "\n").encode("utf-8"), len(lines)))
            count = 0
            failed: list[tuple[str, bytes, int]] = []
            for index, (key, data, n) in enumerate(self._retry):
                try:
                    self.store.put(key, data)
                except Exception as error:
                    self._failed(error)
                    failed = self._retry[index:]
                    break
                count += n
                self.objects += 1
            while len(failed) > self.max_retry_objects:
                self.dropped += failed.pop(0)[2]
            self._retry = failed
            self.written += count
            if failed:
                raise RuntimeError(f"{len(failed)} prediction log object(s) not shipped: {self.last_error}")
            return count


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


def _keys(store: LogStore, since: datetime | None, until: datetime | None) -> list[str]:
    """Keys of the objects that may hold records in ``[since, until)``: date folders outside
    the range are not listed; an object flushed before ``since`` holds only older records."""
    first = since.date() if since is not None else None
    last = until.date() if until is not None else None
    if first is not None and (last or _now().date()) - first <= timedelta(days=62):
        end = last or max(_now().date(), first)
        prefixes = [f"date={first + timedelta(days=i)}/" for i in range((end - first).days + 1)]
        keys = [k for p in prefixes for k in store.keys(p)]
    else:
        keys = store.keys("")
    chosen = []
    cutoff = since.strftime("%Y%m%dT%H%M%S%f") if since is not None else None
    for key in keys:
        folder, _, name = key.rpartition("/")
        if not folder.startswith("date="):
            continue
        try:
            day = date.fromisoformat(folder.removeprefix("date="))
        except ValueError:
            continue
        if (first is not None and day < first) or (last is not None and day > last):
            continue
        match = _OBJECT.match(name)
        if match is None:
            continue
        if cutoff is not None and match.group(1) < cutoff:
            continue  # flushed before the window opened: every record in it is older
        chosen.append(key)
    return chosen


def _objects(store: LogStore, keys: list[str]) -> Iterator[bytes]:
    if isinstance(store, LocalLogStore) or len(keys) < 4:
        for key in keys:
            data = store.get(key)
            if data is not None:
                yield data
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        for data in pool.map(store.get, keys):
            if data is not None:
                yield data


def iter_records(
    source: LogStore | Path | str, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The request records of a prediction log, object by object, in the current format.

    Objects that cannot hold records of ``[since, until)`` are not read; records are not
    filtered by time here (see :func:`read_requests`). Lines that are not JSON objects are
    skipped; old one-line-per-prediction records come back as requests of one prediction.
    """
    store = _store(source)
    for data in _objects(store, _keys(store, _utc(since), _utc(until))):
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield _current_format(record)


def _current_format(record: dict[str, Any]) -> dict[str, Any]:
    if "predictions" in record or "inputs" not in record:
        return record
    legacy = {k: v for k, v in record.items() if k not in ("entity", "inputs", "prediction", "probability")}
    legacy.setdefault("rows", 1)
    legacy["predictions"] = [
        {
            "entity": record.get("entity") or {},
            "inputs": record.get("inputs") or {},
            "prediction": record.get("prediction"),
            "probability": record.get("probability"),
        }
    ]
    return legacy


def read_requests(
    source: LogStore | Path | str, since: datetime | None = None, until: datetime | None = None
) -> pandas.DataFrame:
    """One row per request, oldest first: :data:`REQUEST_COLUMNS` (``ts`` tz-aware UTC,
    ``status`` and ``latency_ms`` the request's own). ``since`` inclusive, ``until``
    exclusive, naive datetimes are UTC; an empty log gives an empty frame with the columns."""
    import pandas as pd

    rows = [
        {name: record.get(name) for name in REQUEST_COLUMNS} for record in iter_records(source, since, until)
    ]
    frame = pd.DataFrame.from_records(rows, columns=REQUEST_COLUMNS)
    frame = _finish(frame, since, until)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce").astype("float64")
    frame["status"] = pd.to_numeric(frame["status"], errors="coerce").fillna(0).astype("int64")
    return frame


def read_predictions(
    source: LogStore | Path | str, since: datetime | None = None, until: datetime | None = None
) -> pandas.DataFrame:
    """One row per prediction, oldest first: :data:`PREDICTION_COLUMNS` (``request_id`` and
    ``row`` tie it to its request), then one column per input feature and one per entity key
    (an input and an entity key of the same name share one column). Failed requests have
    no predictions. ``since`` inclusive, ``until`` exclusive; naive datetimes are UTC."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for record in iter_records(source, since, until):
        base = {name: record.get(name) for name in PREDICTION_COLUMNS[:6]}
        for i, item in enumerate(record.get("predictions") or ()):
            if not isinstance(item, dict):
                continue
            row = dict(base)
            row["row"] = i
            row["prediction"] = item.get("prediction")
            row["probability"] = item.get("probability")
            for key, value in (item.get("inputs") or {}).items():
                row.setdefault(key, value)
            for key, value in (item.get("entity") or {}).items():
                if row.get(key) is None:
                    row[key] = value
            rows.append(row)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=PREDICTION_COLUMNS)
    frame = _finish(frame, since, until)
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce").astype("float64")
    return frame


def _finish(frame: pandas.DataFrame, since: datetime | None, until: datetime | None) -> pandas.DataFrame:
    import pandas as pd

    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    since, until = _utc(since), _utc(until)
    if since is not None:
        frame = frame[frame["ts"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["ts"] < pd.Timestamp(until)]
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
