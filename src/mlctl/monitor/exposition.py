"""Monitor results as Prometheus metrics: a textfile for node_exporter, or a Pushgateway push.

Contract: :func:`registry` turns the monitor records of a state (the last run of each
monitor, :attr:`~mlctl.state.document.MonitorRecord.history`) into a fresh
``prometheus_client`` registry of gauges; nothing here evaluates a monitor or writes state.
:func:`write_textfile` writes it atomically in the text exposition format node_exporter's
textfile collector reads (``--collector.textfile.directory``); :func:`push` PUTs it to a
Pushgateway under ``job="mlctl_monitor"`` and the grouping key ``environment``, replacing what
the previous run pushed. Both raise :class:`~mlctl.errors.MlctlError` (one line) on failure.

Every series carries ``environment``, ``monitor`` and ``model`` (the monitor's model), so a
dashboard selects by model without knowing the scrape job. :data:`METRICS` lists every name
(the Grafana dashboards of :mod:`mlctl.monitor.dashboards` query only these and the serving
metrics); a value the last run did not measure is absent, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.errors import MlctlError
from mlctl.plan.triggers import parse_time
from mlctl.spec.models import DriftMonitor

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from mlctl.spec.models import Monitor
    from mlctl.state.document import MonitorPoint, MonitorRecord, State

JOB = "mlctl_monitor"
STATUSES = ("ok", "breach", "insufficient", "skipped", "error")
LABELS = ("environment", "monitor", "model")

#: metric name -> (help, extra labels)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mlctl_monitor_last_run_timestamp_seconds": ("When the monitor last ran (Unix time)", ("kind",)),
    "mlctl_monitor_status": ("1 for the status of the monitor's last run, 0 for the others", ("status",)),
    "mlctl_monitor_breach": ("1 when the last run found a breach", ()),
    "mlctl_monitor_fired": ("1 when the last run fired the monitor's actions", ()),
    "mlctl_monitor_consecutive_breaches": ("Runs in a row in breach", ()),
    "mlctl_monitor_model_version": ("The production version the last run judged", ()),
    "mlctl_monitor_drift_statistic": ("Per-feature drift statistic (effect size)", ("feature", "test")),
    "mlctl_monitor_drift_breach": (
        "1 when the feature drifts (statistic and corrected p-value)",
        ("feature",),
    ),
    "mlctl_monitor_drift_threshold": ("The drift monitor's threshold on the statistic", ()),
    "mlctl_monitor_prediction_shift": ("Shift of the mean prediction against the reference or baseline", ()),
    "mlctl_monitor_prediction_mean": ("Mean predicted probability (or value) per window", ("window",)),
    "mlctl_monitor_accuracy": ("Accuracy on delayed labels", ()),
    "mlctl_monitor_auc": ("ROC AUC on delayed labels", ()),
    "mlctl_monitor_labelled_predictions": ("Predictions joined to a delayed label", ()),
    "mlctl_monitor_p95_latency_seconds": ("p95 latency from the prediction log per window", ("window",)),
    "mlctl_monitor_error_rate": ("Share of requests answered 5xx per window", ("window",)),
    "mlctl_monitor_requests": ("Requests to the endpoint per window (volume against baseline)", ("window",)),
}

# metric name, extra label values -> the key of MonitorPoint.metrics holding it (and a scale)
_FROM_METRICS: tuple[tuple[str, tuple[str, ...], str, float], ...] = (
    ("mlctl_monitor_prediction_mean", ("reference",), "prediction_mean_reference", 1.0),
    ("mlctl_monitor_prediction_mean", ("current",), "prediction_mean_current", 1.0),
    ("mlctl_monitor_prediction_mean", ("baseline",), "prediction_mean_baseline", 1.0),
    ("mlctl_monitor_accuracy", (), "accuracy", 1.0),
    ("mlctl_monitor_auc", (), "auc", 1.0),
    ("mlctl_monitor_labelled_predictions", (), "labelled", 1.0),
    ("mlctl_monitor_p95_latency_seconds", ("current",), "p95_latency_ms", 0.001),
    ("mlctl_monitor_p95_latency_seconds", ("baseline",), "baseline_p95_latency_ms", 0.001),
    ("mlctl_monitor_error_rate", ("current",), "error_rate", 1.0),
    ("mlctl_monitor_error_rate", ("baseline",), "baseline_error_rate", 1.0),
    ("mlctl_monitor_requests", ("current",), "endpoint_requests", 1.0),
    ("mlctl_monitor_requests", ("baseline",), "baseline_endpoint_requests", 1.0),
)


def registry(environment: str, state: State, monitors: Mapping[str, Monitor]) -> CollectorRegistry:
    """Gauges of every monitor of ``monitors`` (the desired state's: model, kind, test and
    threshold) with a run recorded in ``state`` (its last point)."""
    from prometheus_client import CollectorRegistry, Gauge

    out = CollectorRegistry(auto_describe=True)
    gauges = {
        name: Gauge(name, help_text, [*LABELS, *extra], registry=out)
        for name, (help_text, extra) in METRICS.items()
    }
    for name, monitor in sorted(monitors.items()):
        record = state.monitors.get(name)
        point = last_point(record) if record is not None else None
        if record is None or point is None:
            continue
        base = (environment, name, monitor.model)
        gauges["mlctl_monitor_last_run_timestamp_seconds"].labels(*base, monitor.kind).set(
            parse_time(point.time).timestamp()
        )
        for status in STATUSES:
            gauges["mlctl_monitor_status"].labels(*base, status).set(1 if point.status == status else 0)
        gauges["mlctl_monitor_breach"].labels(*base).set(1 if point.status == "breach" else 0)
        gauges["mlctl_monitor_fired"].labels(*base).set(1 if point.fired else 0)
        gauges["mlctl_monitor_consecutive_breaches"].labels(*base).set(record.consecutive_breaches)
        if point.version is not None:
            gauges["mlctl_monitor_model_version"].labels(*base).set(point.version)
        drift = monitor if isinstance(monitor, DriftMonitor) else None
        if drift is not None:
            gauges["mlctl_monitor_drift_threshold"].labels(*base).set(drift.threshold)
        for feature, statistic in point.findings.items():
            if statistic is None:
                continue
            if feature == "prediction":
                gauges["mlctl_monitor_prediction_shift"].labels(*base).set(statistic)
            elif drift is not None:
                gauges["mlctl_monitor_drift_statistic"].labels(*base, feature, drift.test).set(statistic)
                breach = 1 if feature in point.breaches else 0
                gauges["mlctl_monitor_drift_breach"].labels(*base, feature).set(breach)
        for metric, extra, key, scale in _FROM_METRICS:
            value = point.metrics.get(key)
            if value is not None:
                gauges[metric].labels(*base, *extra).set(value * scale)
    return out


def last_point(record: MonitorRecord) -> MonitorPoint | None:
    """The monitor's last recorded run, or None (a state written before history was kept)."""
    return record.history[-1] if record.history else None


def write_textfile(path: Path, reg: CollectorRegistry) -> None:
    """Write ``reg`` to ``path`` (``*.prom``) atomically, for node_exporter's textfile collector."""
    from prometheus_client import write_to_textfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), reg)
    except OSError as exc:
        raise MlctlError(f"--metrics-file {path}: {exc.strerror or exc}") from None


def push(url: str, environment: str, reg: CollectorRegistry, timeout: float = 10.0) -> None:
    """PUT ``reg`` to the Pushgateway at ``url`` (``http(s)://host:port``) under
    ``job="mlctl_monitor"``, grouping key ``environment``: replaces the previous run's metrics."""
    from prometheus_client import push_to_gateway

    check_url(url)
    try:
        push_to_gateway(url, JOB, reg, grouping_key={"environment": environment}, timeout=timeout)
    except OSError as exc:  # URLError, refused connections and HTTP errors are all OSErrors
        raise MlctlError(f"--pushgateway {url}: {getattr(exc, 'reason', None) or exc}") from None


def check_url(url: str) -> None:
    """Raise :class:`~mlctl.errors.MlctlError` unless ``url`` is an http(s) URL with a host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MlctlError(f"--pushgateway {url}: not an http(s) URL (e.g. http://pushgateway:9091)")
