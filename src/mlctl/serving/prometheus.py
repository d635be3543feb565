"""Prometheus metrics of a serving process; with ``--workers N``, of all its workers at once.

* ``mlctl_requests_total{route,status}``: requests by route and HTTP status;
* ``mlctl_request_duration_seconds{route}``: latency histogram in seconds;
* ``mlctl_predictions_total{model,version,prediction}``: predicted classes (classifiers);
* ``mlctl_prediction_value{model}``: histogram of the positive-class probability
  (classifiers, buckets 0.1 .. 1.0) or of the predicted value (regressors: ten equal buckets
  over the training target's range, ``target_range`` in the version's signature; the
  buckets are fixed by the first version a process loads);
* ``mlctl_model_info{model,version,stage,sha256,predictor}`` = 1 for the live version;
  ``mlctl_model_ready`` (1 when a verified model is loaded);
* counters ``mlctl_model_swaps_total``, ``mlctl_prediction_log_records_total`` (shipped),
  ``mlctl_prediction_log_dropped_total`` and ``mlctl_prediction_log_errors_total``;
* the process collector's ``process_*`` metrics (CPU, memory, file descriptors).

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set before prometheus_client is
imported (``mlctl serve --workers N`` sets it to a directory it empties at start), every
worker writes its values to files there and any worker's ``/metrics`` renders the sum over
workers (counters and histograms summed; ``mlctl_model_ready`` the minimum over live
workers, ``mlctl_model_info`` the maximum). prometheus_client cannot aggregate process
metrics across processes, so in that mode each scrape adds the ``process_*`` metrics of the
worker that answered, labelled with its ``pid`` (the others are not visible in that scrape).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
VALUE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
INFO_LABELS = ("model", "version", "stage", "sha256", "predictor")


def multiprocess_dir() -> str | None:
    """The multiprocess directory in use, or None (single-process registry)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def value_buckets(signature: dict[str, Any]) -> tuple[float, ...]:
    """Histogram buckets of the predicted value: probabilities for classifiers; for
    regressors ten equal buckets over the training target's ``target_range`` (a rounded
    1-2-5 ladder when the signature has none)."""
    if str(signature.get("task") or "classification") == "classification":
        return VALUE_BUCKETS
    span = signature.get("target_range")
    if isinstance(span, (list, tuple)) and len(span) == 2:
        try:
            low, high = float(span[0]), float(span[1])
        except (TypeError, ValueError):
            low = high = float("nan")
        if low == low and high == high and high > low and abs(high) < 1e300 and abs(low) < 1e300:
            step = (high - low) / 10
            return tuple(low + step * i for i in range(11))
    return (-1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, 10000.0)


class Metrics:
    """The collectors of one app, with label children cached off the hot path."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlctl_requests", "HTTP requests by route and status", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "mlctl_request_duration_seconds",
            "Request latency in seconds",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "mlctl_predictions",
            "Predictions by model version and predicted class",
            ["model", "version", "prediction"],
            registry=registry,
        )
        self.values: Histogram | None = None
        self.model = Gauge(
            "mlctl_model_info",
            "The model version this server serves (1)",
            INFO_LABELS,
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.swaps = Counter("mlctl_model_swaps", "Hot swaps of the served version", registry=registry)
        self.ready = Gauge(
            "mlctl_model_ready",
            "1 when a verified model is loaded (in every live worker)",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.log_records = Counter(
            "mlctl_prediction_log_records", "Request records shipped to the prediction log", registry=registry
        )
        self.log_dropped = Counter(
            "mlctl_prediction_log_dropped",
            "Prediction log records dropped (buffer full, or an object that could not be shipped)",
            registry=registry,
        )
        self.log_errors = Counter(
            "mlctl_prediction_log_errors", "Failed prediction log uploads", registry=registry
        )
        self._log_seen = (0, 0, 0)
        self._info: tuple[str, ...] | None = None
        self._request_children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._prediction_children: dict[tuple[str, int, str], Any] = {}
        self._value_children: dict[str, Any] = {}
        self._observers: dict[tuple[str, int], Callable[[str | None, float | None], None]] = {}
        if not self.multiprocess:
            from prometheus_client import PlatformCollector, ProcessCollector

            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, str(status))
        child.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def prediction_observer(self, model: str, version: int) -> Callable[[str | None, float | None], None]:
        """``observe(label, value)`` for one version: counts the class, records the value."""
        key = (model, version)
        observer = self._observers.get(key)
        if observer is not None:
            return observer
        children = self._prediction_children
        predictions = self.predictions
        version_text = str(version)
        hist = self._value_children.get(model)
        if hist is None and self.values is not None:
            hist = self._value_children[model] = self.values.labels(model)

        def observe(label: str | None, value: float | None) -> None:
            if label is not None:
                child = children.get((model, version, label))
                if child is None:
                    child = children[(model, version, label)] = predictions.labels(model, version_text, label)
                child.inc()
            if value is not None and hist is not None:
                hist.observe(value)

        self._observers[key] = observe
        return observe

    def observe_prediction(self, model: str, version: int, label: str | None, value: float | None) -> None:
        self.prediction_observer(model, version)(label, value)

    def set_model(self, info: dict[str, str] | None, signature: dict[str, Any] | None = None) -> None:
        """The live version changed (None: nothing loaded). The first version's signature
        fixes the buckets of ``mlctl_prediction_value``."""
        if self.values is None and signature is not None:
            self.values = Histogram(
                "mlctl_prediction_value",
                "Positive-class probability (classifiers) or predicted value (regressors)",
                ["model"],
                buckets=value_buckets(signature),
                registry=self.registry,
            )
            self._observers.clear()
        if self._info is not None:
            if self.multiprocess:
                self.model.labels(*self._info).set(0)
            else:
                self.model.remove(*self._info)
            self._info = None
        if info is None:
            self.ready.set(0)
            return
        self._info = tuple(str(info.get(name, "")) for name in INFO_LABELS)
        self.model.labels(*self._info).set(1)
        self.ready.set(1)

    def sync_log(self, written: int, dropped: int, errors: int) -> None:
        """Bring the log counters up to the writer's running totals."""
        seen = self._log_seen
        for counter, now, before in zip(
            (self.log_records, self.log_dropped, self.log_errors),
            (written, dropped, errors),
            seen,
            strict=True,
        ):
            if now > before:
                counter.inc(now - before)
        self._log_seen = (max(written, seen[0]), max(dropped, seen[1]), max(errors, seen[2]))

    def render(self) -> bytes:
        """The text exposition: this process's registry, or the sum over every worker."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        own = CollectorRegistry()
        from prometheus_client import ProcessCollector

        ProcessCollector(registry=own)
        text = generate_latest(registry)
        pid = str(os.getpid())
        lines = []
        for line in generate_latest(own).decode().splitlines():
            if line.startswith("process_") and " " in line:
                name, _, value = line.partition(" ")
                lines.append(f'{name}{{pid="{pid}"}} {value}')
            else:
                lines.append(line)
        return text + ("\n".join(lines) + "\n").encode()
