"""``mlctl demo traffic``: play a day of production against a running ``mlctl serve``.

The churn example only. :func:`send_traffic` sends a few thousand ``POST /predict`` requests,
one at a time over one keep-alive connection, as a client application would:

* most of them carry only a customer id of the example data: the server reads that
  customer's features from the online store (the features a real client would not have);
* a share (``shift``) comes from a changed world, :func:`~mlctl.example.generator.shifted_population`:
  new customers sent with their full features, whose behaviour differs from the training
  data (feature drift) and whose churn follows a different rule (concept drift).

Then it writes what the world reveals afterwards (unless ``write_labels`` is off):

* the delayed labels: each answered request's true outcome, drawn from the same
  data-generating process as the example data, is appended to the labels dataset of the
  model's performance monitor (``churn_outcomes`` in the example), time-stamped after the
  request, which is what the monitor joins to the prediction log;
* the new population as training data: each answered shifted customer's snapshot (the
  features it was sent with) is appended to the feature view's source dataset
  (``customer_activity``) and its outcome to the model's training labels (``churn_labels``).
  They are dated inside the example's timeline: the snapshot one hour after the source's
  latest event (in generated data, a day or more before the as-of day the data ends at),
  the label 1-12 hours after the snapshot. So the point-in-time join of the next training
  finds each label's snapshot, and the next materialization, which reads events after the
  last one it saw, serves them online. These rows are a pure function of the data files,
  the answered requests and ``seed``: the same inputs append byte-identical rows.

Nothing is faked: the monitors judge what the server really logged against outcomes the
world really produced, and a retrained version learns the population that caused the drift.

The server writes its prediction log in batches (every 0.5 s); :func:`send_traffic` waits a
second after the last answer so a ``mlctl monitor run`` that follows sees every request.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.spec.names import not_defined

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_MODEL = "churn-predictor"
FLUSH_WAIT_SECONDS = 2.5  # a server flushes its prediction log every 2 s (MLCTL_SERVE_LOG_FLUSH_SECONDS)


@dataclass
class TrafficResult:
    """What :func:`send_traffic` did; the CLI renders it."""

    url: str
    model: str
    by_key: int = 0  # requests with the customer id only (online features)
    shifted: int = 0  # requests from the shifted population (full features)
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    labels: int = 0
    labels_dataset: str | None = None
    labels_path: str | None = None
    monitor: str | None = None
    churn_rate: float | None = None  # among the labelled requests
    training_rows: int = 0  # shifted customers appended to the training data
    training_paths: tuple[str, str] | None = None  # (feature source, training labels)

    @property
    def sent(self) -> int:
        return self.by_key + self.shifted


@dataclass
class _Plan:
    bodies: list[dict[str, Any]]
    churned: list[bool]
    shifted: list[bool]
    latest_event: int  # epoch seconds of the feature source's latest event


@dataclass(frozen=True)
class _Table:
    """A local CSV dataset rows are appended to: its path and the columns that matter."""

    path: str
    key: str
    timestamp: str


def send_traffic(
    repo: Path,
    env: str,
    *,
    url: str = DEFAULT_URL,
    model: str = DEFAULT_MODEL,
    requests: int = 3000,
    shift: float = 0.4,
    seed: int = 0,
    write_labels: bool = True,
    wait: float = 30.0,
) -> TrafficResult:
    """Send ``requests`` predictions to the server at ``url``; then, with ``write_labels``,
    append their delayed labels and the answered shifted customers' training data (see the
    module docstring).

    Raises :class:`MlctlError` when the environment is not the churn example, when the
    server is not ready within ``wait`` seconds, or when a dataset to append to is not a
    local CSV file or lacks a column (checked before any file is written).
    """
    from mlctl.spec import load_environment

    if requests < 1:
        raise MlctlError("--requests must be at least 1")
    if not 0.0 <= shift <= 1.0:
        raise MlctlError("--shift must be between 0 and 1")
    spec = load_environment(repo, env)
    config = spec.config
    if model not in config.models:
        raise not_defined("model", model, env, config.models)
    source, key, ttl = _feature_source(config, model)
    labels = _labels_target(config, model) if write_labels else None
    training = _training_targets(config, model) if write_labels else None
    base = _base_url(url)
    result = TrafficResult(url=base, model=model)

    plan = _draw(spec.repo / source.path, key, ttl, requests, shift, seed)
    token = os.environ.get("MLCTL_SERVE_TOKEN")
    client = _Client(base, token)
    try:
        client.wait_ready(wait)
        started = time.perf_counter()
        answered: list[int] = []
        for i, body in enumerate(plan.bodies):
            try:
                status, answer = client.post("/predict", body)
            except OSError as error:
                raise MlctlError(
                    f"the server at {base} stopped answering after {i:,} requests ({error}); "
                    "no labels were written"
                ) from None
            result.statuses[status] += 1
            if status == 200:
                answered.append(i)
                if isinstance(answer, dict) and isinstance(answer.get("version"), int):
                    result.versions[answer["version"]] += 1
        result.seconds = time.perf_counter() - started
    finally:
        client.close()
    result.shifted = sum(plan.shifted)
    result.by_key = len(plan.bodies) - result.shifted
    result.answered = len(answered)
    time.sleep(FLUSH_WAIT_SECONDS)

    appends: list[tuple[Path, list[dict[str, str]]]] = []
    if labels is not None and answered:
        monitor, dataset, path, timestamp, target = labels
        stamp = _stamp(time.time())
        rows = [(str(plan.bodies[i][key]), plan.churned[i]) for i in answered]
        appends.append(
            (spec.repo / path, [{key: e, timestamp: stamp, target: "Yes" if c else "No"} for e, c in rows])
        )
        result.labels = len(rows)
        result.labels_dataset = dataset
        result.labels_path = path
        result.monitor = monitor
        result.churn_rate = sum(c for _, c in rows) / len(rows)
    newcomers = [i for i in answered if plan.shifted[i]]
    if training is not None and newcomers:
        features, training_labels, target = training
        snapshots, outcomes = _training_rows(plan, newcomers, key, target, features, training_labels, seed)
        appends += [(spec.repo / features.path, snapshots), (spec.repo / training_labels.path, outcomes)]
        result.training_rows = len(newcomers)
        result.training_paths = (features.path, training_labels.path)
    for file, new_rows in appends:  # every file is checked before any is written
        _check_columns(file, new_rows)
    for file, new_rows in appends:
        _append_rows(file, new_rows)
    return result


# -- the example's shape ------------------------------------------------------------------------


def _feature_source(config: Any, model: str) -> tuple[_Table, str, int | None]:
    """(source dataset, entity key, ttl seconds) of the model's features; the example's only."""
    from mlctl.example.generator import FEATURES

    training = config.models[model].training
    views = {ref.split(":", 1)[0] for ref in training.features}
    names = [ref.split(":", 1)[1] for ref in training.features]
    if len(views) != 1 or sorted(names) != sorted(FEATURES):
        raise MlctlError(
            f"mlctl demo traffic drives the churn example only: model '{model}' must read "
            f"{', '.join(FEATURES)} from one feature view"
        )
    view = config.feature_views[views.pop()]
    dataset = config.datasets[view.source]
    if dataset.path.startswith("s3://") or dataset.file_format != "csv":
        raise MlctlError(
            f"mlctl demo traffic reads a local CSV source; dataset {view.source} is {dataset.path}"
        )
    key = config.entities[view.entities[0]].join_key
    return _Table(dataset.path, key, dataset.timestamp or "event_timestamp"), key, view.ttl_seconds


def _training_targets(config: Any, model: str) -> tuple[_Table, _Table, str]:
    """(feature source, training labels dataset, target column) the shifted customers join."""
    source, key, _ = _feature_source(config, model)
    training = config.models[model].training
    dataset = config.datasets[training.labels]
    if dataset.path.startswith("s3://") or dataset.file_format != "csv":
        raise MlctlError(
            f"model {model} trains on labels at {dataset.path}; demo traffic appends to local CSV only"
        )
    return source, _Table(dataset.path, key, dataset.timestamp or "event_timestamp"), training.target


def _labels_target(config: Any, model: str) -> tuple[str, str, str, str, str] | None:
    """(monitor, dataset, path, timestamp column, target) the performance monitor reads labels from."""
    for name, monitor in sorted(config.monitors.items()):
        if monitor.kind != "performance" or monitor.model != model:
            continue
        dataset = config.datasets[monitor.labels]
        if dataset.path.startswith("s3://") or dataset.file_format != "csv":
            raise MlctlError(
                f"monitor {name} reads labels from {dataset.path}; demo traffic appends to local CSV only"
            )
        timestamp = dataset.timestamp or "event_timestamp"
        return name, monitor.labels, dataset.path, timestamp, config.models[model].training.target
    return None


def _draw(source: Path, key: str, ttl: int | None, requests: int, shift: float, seed: int) -> _Plan:
    """The requests, in the order they are sent, with each one's true outcome."""
    import numpy as np
    import pandas as pd

    from mlctl.example.generator import (
        FEATURES,
        FLOAT_FEATURES,
        churn_outcome,
        customer_ids,
        shifted_population,
    )

    if not source.is_file():
        raise MlctlError(f"{source} does not exist: generate the example data first (mlctl init, make demo)")
    activity = pd.read_csv(source)
    stamps = pd.to_datetime(activity["event_timestamp"], utc=True)
    latest_event = int(stamps.max().timestamp()) if len(stamps) else int(time.time())
    latest = activity.assign(_t=stamps).sort_values("_t").drop_duplicates(key, keep="last")
    # Customers the online store holds a complete, fresh row for: the server answers the
    # others 422 (a missing or expired online value is not guessed).
    latest = latest.dropna(subset=list(FEATURES))
    if ttl is not None:
        latest = latest[latest["_t"] > pd.Timestamp(datetime.now(UTC)) - pd.Timedelta(seconds=ttl)]
    rng = np.random.default_rng(seed)
    n_shift = round(requests * shift)
    n_ref = requests - n_shift
    if n_ref and latest.empty:
        raise MlctlError(
            f"no customer in {source.name} has values younger than the feature view's ttl: "
            "regenerate the example data (scripts/generate_example_data.py --force, or mlctl init)"
        )
    bodies: list[dict[str, Any]] = []
    churned: list[bool] = []
    shifted: list[bool] = []
    if n_ref:
        pick = rng.choice(len(latest), size=n_ref, replace=n_ref > len(latest))
        rows = latest.iloc[pick]
        truth = churn_outcome(rng, rows[list(FEATURES)].to_numpy(dtype=float))
        bodies += [{key: str(k)} for k in rows[key]]
        churned += truth.tolist()
        shifted += [False] * n_ref
    if n_shift:
        x, truth = shifted_population(rng, n_shift)
        numbers = np.arange(1, n_shift + 1) + _max_customer_number(activity[key])
        for customer, values in zip(customer_ids(numbers).tolist(), x.tolist(), strict=True):
            body: dict[str, Any] = {key: customer}
            for name, value in zip(FEATURES, values, strict=True):
                body[name] = float(value) if name in FLOAT_FEATURES else int(value)
            bodies.append(body)
        churned += truth.tolist()
        shifted += [True] * n_shift
    order = rng.permutation(len(bodies)).tolist()
    return _Plan(
        [bodies[i] for i in order],
        [bool(churned[i]) for i in order],
        [shifted[i] for i in order],
        latest_event,
    )


def _max_customer_number(ids: Any) -> int:
    numbers = ids.astype(str).str.extract(r"(\d+)$")[0].dropna().astype(int)
    return int(numbers.max()) if len(numbers) else 0


def _training_rows(
    plan: _Plan,
    newcomers: list[int],
    key: str,
    target: str,
    features: _Table,
    labels: _Table,
    seed: int,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The shifted customers ``newcomers`` (indices into the plan) as training data: one
    snapshot each, an hour after the source's latest event, and one label 1-12 hours later.

    Deterministic: a function of the plan, the indices and ``seed`` only.
    """
    import numpy as np

    from mlctl.example.generator import FEATURES

    rng = np.random.default_rng([seed, 1])  # its own stream: the requests' draws stay as they were
    snapshot = plan.latest_event + 3600
    delays = rng.integers(3600, 12 * 3600, size=len(newcomers), endpoint=True).tolist()
    snapshots: list[dict[str, str]] = []
    outcomes: list[dict[str, str]] = []
    for i, delay in zip(newcomers, delays, strict=True):
        body = plan.bodies[i]
        snapshots.append(
            {features.key: body[key], features.timestamp: _stamp(snapshot)}
            | {name: repr(body[name]) for name in FEATURES}
        )
        outcomes.append(
            {
                labels.key: body[key],
                labels.timestamp: _stamp(snapshot + delay),
                target: "Yes" if plan.churned[i] else "No",
            }
        )
    return snapshots, outcomes


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _header(path: Path) -> list[str]:
    """The CSV file's column names; empty when the file is missing or empty."""
    if path.is_file() and path.stat().st_size:
        with path.open(newline="") as handle:
            return next(csv.reader(handle), [])
    return []


def _check_columns(path: Path, rows: list[dict[str, str]]) -> None:
    """Raise :class:`MlctlError` when the existing file ``path`` lacks a column ``rows`` name."""
    header = _header(path)
    missing = {column for row in rows for column in row} - set(header) if header else set()
    if missing:
        raise MlctlError(f"{path} has no column {', '.join(sorted(missing))}")


def _append_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Append ``rows`` to the CSV file ``path`` in the file's column order (columns a row does
    not name stay empty); a missing or empty file gets the first row's columns as its header.

    Raises :class:`MlctlError`, before writing anything, when the file lacks a column the rows name.
    """
    if not rows:
        return
    _check_columns(path, rows)
    header = _header(path)
    new = not header
    if new:
        header = list(rows[0])
    with path.open("a", newline="") as handle:
        if not new:
            with path.open("rb") as raw:
                raw.seek(-1, os.SEEK_END)
                if raw.read(1) != b"\n":
                    handle.write("\n")
        writer = csv.writer(handle, lineterminator="\n")
        if new:
            writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(column, "") for column in header])


# -- HTTP ---------------------------------------------------------------------------------------


def _base_url(url: str) -> str:
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MlctlError(f"--url {url}: expected http://HOST:PORT")
    return f"{parsed.scheme}://{parsed.netloc}"


class _Client:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, base: str, token: str | None) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.base = base
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port
        self.https = parsed.scheme == "https"
        self.headers = {"content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.connection = cls(self.host, self.port, timeout=30)
        return self.connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=self.headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
                continue
            try:
                return response.status, json.loads(data) if data else None
            except ValueError:
                return response.status, None
        raise AssertionError("unreachable")

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", path, json.dumps(body).encode())

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        reason = "no answer"
        while True:
            try:
                status, answer = self.request("GET", "/ready")
                if status == 200:
                    return
                reason = f"HTTP {status}" + (f": {answer}" if answer else "")
            except OSError as error:
                self.close()
                reason = str(error) or type(error).__name__
            if time.monotonic() >= deadline:
                raise MlctlError(
                    f"no model server ready at {self.base} ({reason}); start one with "
                    "`mlctl serve MODEL -e ENV` (or pass --url)"
                )
            time.sleep(0.25)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
