"""Prometheus metrics of one serving process (its own registry, text format on /metrics).

* ``mlctl_requests_total{route,status}``: requests by route and HTTP status;
* ``mlctl_request_duration_seconds{route}``: latency histogram in seconds;
* ``mlctl_predictions_total{model,version,prediction}``: predicted classes (classifiers);
* ``mlctl_prediction_value{model}``: histogram of the positive-class probability
  (classifiers) or of the predicted value (regressors);
* ``mlctl_model_info{model,version,stage,sha256,predictor}``: the live version (1 per process);
* ``mlctl_model_swaps_total``, ``mlctl_prediction_log_dropped_total``.

With ``--workers N`` each worker keeps its own counters; a scrape reaches one worker.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
VALUE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Metrics:
    """The collectors of one app, with label children cached off the hot path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlctl_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mlctl_request_duration_seconds",
            "Request latency in seconds",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlctl_predictions",
            "Predictions by model version and predicted class",
            ["model", "version", "prediction"],
            registry=self.registry,
        )
        self.values = Histogram(
            "mlctl_prediction_value",
            "Positive-class probability (classifiers) or predicted value (regressors)",
            ["model"],
            buckets=VALUE_BUCKETS,
            registry=self.registry,
        )
        self.model = Info("mlctl_model", "The model version this process serves", registry=self.registry)
        self.swaps = Counter("mlctl_model_swaps", "Hot swaps of the served version", registry=self.registry)
        self.ready = Gauge("mlctl_model_ready", "1 when a verified model is loaded", registry=self.registry)
        self.log_dropped = Gauge(
            "mlctl_prediction_log_dropped",
            "Prediction log records dropped (buffer full)",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._prediction_children: dict[tuple[str, int, str], Any] = {}
        self._value_children: dict[str, Any] = {}

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

    def observe_prediction(self, model: str, version: int, label: str | None, value: float | None) -> None:
        if label is not None:
            key = (model, version, label)
            child = self._prediction_children.get(key)
            if child is None:
                child = self._prediction_children[key] = self.predictions.labels(model, str(version), label)
            child.inc()
        if value is not None:
            hist = self._value_children.get(model)
            if hist is None:
                hist = self._value_children[model] = self.values.labels(model)
            hist.observe(value)

    def set_model(self, info: dict[str, str] | None) -> None:
        if info is None:
            self.model.info({})
            self.ready.set(0)
        else:
            self.model.info(info)
            self.ready.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
