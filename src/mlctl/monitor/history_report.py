"""The monitoring dashboard without Grafana: one self-contained HTML page over time.

Contract: :func:`render_history_html` reads the monitor runs a state keeps
(:attr:`~mlctl.state.document.MonitorRecord.history`, the last
:data:`~mlctl.state.document.MONITOR_HISTORY` per monitor) and its rollouts, and returns one
HTML page with, per model, the panels of the Grafana dashboards
(:mod:`mlctl.monitor.dashboards`) drawn over time: p95 latency, volume against its baseline,
error rate, prediction distribution, per-feature drift, delayed accuracy and the rollout arms
(candidate weight and verdicts per step). Thresholds come from the desired state. Charts are
base64 PNG (matplotlib's Agg canvas, the ``mlctl[report]`` extra); the page loads nothing from
the network. Nothing here evaluates a monitor or writes state.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mlctl.monitor.report import REPORT_CSS, fmt
from mlctl.plan.triggers import parse_time
from mlctl.spec.models import DriftMonitor, Environment, PerformanceMonitor, ServingMonitor
from mlctl.state.document import MonitorPoint, State

Series = dict[str, list[tuple[datetime, float]]]

#: panel id -> title, in the order the page shows them (the dashboards' panels)
PANELS = {
    "p95-latency": "p95 latency",
    "volume": "Volume against baseline",
    "error-rate": "Error rate",
    "prediction-distribution": "Prediction distribution",
    "feature-drift": "Per-feature drift",
    "delayed-accuracy": "Delayed accuracy",
    "rollout-arms": "Rollout arms",
}


@dataclass
class _Panel:
    key: str
    title: str
    series: Series = field(default_factory=dict)
    thresholds: list[tuple[str, float]] = field(default_factory=list)
    unit: str = ""
    note: str = ""
    extra_html: str = ""


def _points(state: State, name: str) -> list[MonitorPoint]:
    record = state.monitors.get(name)
    return list(record.history) if record is not None else []


def _add(series: Series, label: str, when: datetime, value: float | None, scale: float = 1.0) -> None:
    if value is not None:
        series.setdefault(label, []).append((when, value * scale))


def _model_panels(model: str, config: Environment, state: State) -> list[_Panel]:
    monitors = {n: m for n, m in sorted(config.monitors.items()) if m.model == model}
    latency = _Panel("p95-latency", PANELS["p95-latency"], unit="ms")
    volume = _Panel("volume", PANELS["volume"], unit="requests per window")
    errors = _Panel("error-rate", PANELS["error-rate"], unit="share of requests")
    predictions = _Panel("prediction-distribution", PANELS["prediction-distribution"], unit="mean prediction")
    drift_panels: list[_Panel] = []
    quality_panels: list[_Panel] = []
    for name, monitor in monitors.items():
        points = _points(state, name)
        for point in points:
            when, m = parse_time(point.time), point.metrics
            for key, label in (
                ("prediction_mean_current", f"{name} current"),
                ("prediction_mean_reference", f"{name} reference"),
                ("prediction_mean_baseline", f"{name} baseline"),
            ):
                _add(predictions.series, label, when, m.get(key))
        if isinstance(monitor, ServingMonitor):
            for point in points:
                when, m = parse_time(point.time), point.metrics
                _add(latency.series, f"{name} p95", when, m.get("p95_latency_ms"))
                _add(latency.series, f"{name} baseline p95", when, m.get("baseline_p95_latency_ms"))
                _add(volume.series, f"{name} requests", when, m.get("endpoint_requests"))
                _add(volume.series, f"{name} baseline", when, m.get("baseline_endpoint_requests"))
                _add(errors.series, f"{name} error rate", when, m.get("error_rate"))
                _add(errors.series, f"{name} baseline", when, m.get("baseline_error_rate"))
            if monitor.max_p95_latency_ms is not None:
                latency.thresholds.append((f"{name} max", float(monitor.max_p95_latency_ms)))
            if monitor.max_error_rate is not None:
                errors.thresholds.append((f"{name} max", monitor.max_error_rate))
            if monitor.min_requests:
                volume.thresholds.append((f"{name} min", float(monitor.min_requests)))
        elif isinstance(monitor, DriftMonitor):
            panel = _Panel(
                "feature-drift", f"{PANELS['feature-drift']}: {name}", unit=f"{monitor.test} statistic"
            )
            for point in points:
                when = parse_time(point.time)
                for feature, statistic in point.findings.items():
                    if feature != "prediction":
                        _add(panel.series, feature, when, statistic)
            panel.thresholds.append(("threshold", monitor.threshold))
            drift_panels.append(panel)
        elif isinstance(monitor, PerformanceMonitor):
            panel = _Panel(
                "delayed-accuracy",
                f"{PANELS['delayed-accuracy']}: {name}",
                unit=f"on delayed labels ({monitor.labels})",
            )
            for point in points:
                when = parse_time(point.time)
                _add(panel.series, "accuracy", when, point.metrics.get("accuracy"))
                _add(panel.series, "auc", when, point.metrics.get("auc"))
            if monitor.min_accuracy is not None:
                panel.thresholds.append(("min accuracy", monitor.min_accuracy))
            if monitor.min_auc is not None:
                panel.thresholds.append(("min auc", monitor.min_auc))
            quality_panels.append(panel)
    if not any(isinstance(m, ServingMonitor) for m in monitors.values()):
        for panel in (latency, volume, errors):
            panel.note = f"no serving monitor watches {model}"
    if not drift_panels:
        drift_panels = [
            _Panel("feature-drift", PANELS["feature-drift"], note=f"no drift monitor watches {model}")
        ]
    if not quality_panels:
        quality_panels = [
            _Panel(
                "delayed-accuracy", PANELS["delayed-accuracy"], note=f"no performance monitor watches {model}"
            )
        ]
    rollout = _rollout_panel(model, config, state)
    return [latency, volume, errors, predictions, *drift_panels, *quality_panels, rollout]


def _rollout_panel(model: str, config: Environment, state: State) -> _Panel:
    panel = _Panel("rollout-arms", PANELS["rollout-arms"], unit="candidate weight (%)")
    endpoints = [n for n, e in sorted(config.endpoints.items()) if e.model == model]
    rows: list[str] = []
    rollouts = getattr(state, "rollouts", {}) or {}
    for name in endpoints:
        record = rollouts.get(name)
        if record is None:
            continue
        for decision in record.decisions:
            _add(panel.series, f"{name} candidate", parse_time(decision.time), decision.weight)
            stats = ", ".join(f"{k} {fmt(v)}" for k, v in sorted(decision.statistics.items())[:8])
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(decision.time)}</td><td>{decision.step}</td>"
                f"<td>{fmt(decision.weight)}</td><td>{html.escape(decision.verdict)}</td>"
                f"<td>{html.escape(decision.reason)}</td><td>{html.escape(stats)}</td></tr>"
            )
    if rows:
        panel.extra_html = (
            "<table><tr><th>Endpoint</th><th>Time</th><th>Step</th><th>Weight</th><th>Verdict</th>"
            "<th>Reason</th><th>Statistics</th></tr>" + "".join(rows) + "</table>"
        )
    elif not panel.series:
        panel.note = "no rollout recorded: every request was served by the stable arm"
    return panel


def _chart(panel: _Panel) -> str:
    """A base64 PNG line chart of ``panel``'s series over time, thresholds dashed."""
    from mlctl.extras import require

    require("matplotlib", "report")  # the mlctl[report] extra
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import date2num
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 2.8), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, points in sorted(panel.series.items()):
        ordered = sorted(points)
        when = date2num([t for t, _ in ordered])
        ax.plot(when, [v for _, v in ordered], marker="o", markersize=3, label=label)
    for label, value in panel.thresholds:
        ax.axhline(value, linestyle="--", linewidth=1, color="#b00020", label=label)
    ax.xaxis_date()
    ax.set_title(panel.title, fontsize=9)
    ax.set_ylabel(panel.unit, fontsize=7)
    ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _runs_table(names: Sequence[str], state: State) -> str:
    rows = []
    for name in names:
        points = _points(state, name)
        for point in points[-10:][::-1]:
            cls = "breach" if point.status == "breach" else ""
            fired = " (fired)" if point.fired else ""
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(point.time)}</td>"
                f"<td>{'v' + str(point.version) if point.version else '-'}</td>"
                f"<td class='{cls}'>{html.escape(point.status)}{fired}</td>"
                f"<td>{html.escape(', '.join(point.breaches))}</td></tr>"
            )
    if not rows:
        return "<p class='muted'>No monitor run recorded yet: run mlctl monitor run.</p>"
    return (
        "<table><tr><th>Monitor</th><th>Time</th><th>Version</th><th>Status</th><th>Breaches</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_history_html(environment: str, config: Environment, state: State) -> str:
    """One self-contained page: per model (with monitors or an endpoint) the panels over time."""
    esc = html.escape
    models = sorted(
        {m.model for m in config.monitors.values()} | {e.model for e in config.endpoints.values()}
    )
    runs = sum(len(r.history) for r in state.monitors.values())
    times = sorted(p.time for r in state.monitors.values() for p in r.history)
    span = f"{times[0]} to {times[-1]}" if times else "no runs yet"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>mlctl monitor history: {esc(environment)}</title><style>{REPORT_CSS}</style></head><body>",
        f"<h1>Monitor history of <code>{esc(environment)}</code></h1>",
        f"<p class='muted'>{runs} monitor runs recorded ({esc(span)}); the last "
        "runs of each monitor are kept in the state.</p>",
    ]
    for model in models:
        parts.append(f"<h2>{esc(model)}</h2>")
        parts.append("<div class='grid'>")
        for panel in _model_panels(model, config, state):
            cls = "card"
            parts.append(f"<section class='{cls}' id='panel-{panel.key}' data-panel='{panel.key}'>")
            parts.append(f"<h3>{esc(panel.title)}</h3>")
            if panel.series:
                parts.append(
                    f"<img alt='{esc(panel.title)} over time' src='data:image/png;base64,{_chart(panel)}'>"
                )
            else:
                parts.append(f"<p class='muted'>{esc(panel.note or 'no data recorded yet')}</p>")
            parts.append(panel.extra_html)
            parts.append("</section>")
        parts.append("</div>")
        names = [n for n, m in sorted(config.monitors.items()) if m.model == model]
        parts.append("<h3>Last runs</h3>" + _runs_table(names, state))
    parts.append("</body></html>")
    return "\n".join(parts)


def panel_keys() -> list[str]:
    """The ``data-panel`` keys every model section carries (for tests and links)."""
    return list(PANELS)
