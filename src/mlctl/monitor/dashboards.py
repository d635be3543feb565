"""Grafana dashboards for the guide's monitoring table, built with grafana-foundation-sdk.

Contract: :func:`build` turns one environment's desired state into dashboards (file name ->
dashboard JSON as a dict); :func:`write` writes them, deterministic bytes (sorted keys), so a
GitOps repository changes only when the spec does. Nothing here reads state or the network.
The builder library is the ``mlctl[dashboards]`` extra (one line naming it when absent).

One dashboard per endpoint (``mlctl-<env>-<endpoint>.json``), and one per model with monitors
but no endpoint, with these panels:

* live serving (the server's ``/metrics``, scraped by Prometheus): p95 latency, volume against
  its baseline (the same rate one day before, the serving monitor's baseline), error rate
  (5xx), prediction distribution (a heatmap of ``mlctl_prediction_value`` and the predicted
  classes);
* rollout arms side by side: p95 latency, error rate and volume by the ``arm`` label
  (``stable``, ``candidate``, ``shadow``); series without the label count as ``stable``;
* the monitors' results (:mod:`mlctl.monitor.exposition`, pushed or written by
  ``mlctl monitor run``): per-feature drift against the monitor's threshold, the prediction
  shift, delayed accuracy and AUC, p95/error rate/volume per monitor window, breach and fired.

Serving metrics carry no environment label: a ``$instance`` variable lists the scrape targets
whose ``mlctl_model_info`` serves the endpoint's model and stage, and every serving query
selects them. Monitor metrics select by ``environment`` and ``model``. Thresholds from the
monitors' YAML are drawn on the panels. :data:`SERVING_METRICS` lists the serving names used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlctl.extras import require
from mlctl.spec.models import DriftMonitor, Environment, PerformanceMonitor, ServingMonitor

#: serving metric names the panels query (see mlctl.serving.prometheus)
SERVING_METRICS = (
    "mlctl_model_info",
    "mlctl_request_duration_seconds_bucket",
    "mlctl_requests_total",
    "mlctl_predictions_total",
    "mlctl_prediction_value_bucket",
)
PREDICT_ROUTES = "/predict.*|/invocations|/v2/models/.+/infer"  # /predict and the standard protocols
BASELINE_OFFSET = "1d"  # the serving monitor's default window: its baseline is the day before
UID_LIMIT = 40  # Grafana's limit on a dashboard uid


def _q(value: str) -> str:
    """``value`` as a PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Target:
    expr: str
    legend: str
    heatmap: bool = False


@dataclass
class _Panel:
    kind: str  # timeseries | heatmap | stat
    title: str
    description: str
    targets: list[_Target]
    unit: str = ""
    threshold: float | None = None
    span: int = 12
    extra: dict[str, Any] = field(default_factory=dict)


def _serving_selector(extra: str = "") -> str:
    base = f'route=~{_q(PREDICT_ROUTES)}, instance=~"$instance"'
    return "{" + base + (", " + extra if extra else "") + "}"


def _rate(metric: str, selector: str, by: str = "", offset: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    shift = f" offset {offset}" if offset else ""
    return f"sum{grouping} (rate({metric}{selector}[$__rate_interval]{shift}))"


def _error_rate(by: str = "") -> str:
    failed = _rate("mlctl_requests_total", _serving_selector('status=~"5.."'), by)
    total = _rate("mlctl_requests_total", _serving_selector(), by)
    return f"({failed} or {total} * 0) / {total}"  # 0, not no data, while nothing failed


def _by_arm(expr: str) -> str:
    """``expr`` (grouped by arm) with series lacking the label named ``stable``."""
    return f'label_replace({expr}, "arm", "stable", "arm", "")'


def _p95(by: str = "le") -> str:
    buckets = _rate("mlctl_request_duration_seconds_bucket", _serving_selector(), by)
    return f"histogram_quantile(0.95, {buckets})"


def _serving_panels(env: str, model: str, monitors: list[ServingMonitor]) -> list[_Panel]:
    mon = f"environment={_q(env)}, model={_q(model)}"
    limit = next((m.max_p95_latency_ms for m in monitors if m.max_p95_latency_ms is not None), None)
    max_errors = next((m.max_error_rate for m in monitors if m.max_error_rate is not None), None)
    values = f'{{model={_q(model)}, instance=~"$instance"}}'
    return [
        _Panel(
            "timeseries",
            "p95 latency",
            "Live p95 of /predict requests, and the serving monitors' p95 from the prediction log.",
            [
                _Target(_p95(), "p95 (live)"),
                _Target(f'mlctl_monitor_p95_latency_seconds{{{mon}, window="current"}}', "{{monitor}} (log)"),
            ],
            unit="s",
            threshold=limit / 1000 if limit is not None else None,
        ),
        _Panel(
            "timeseries",
            "Volume against baseline",
            f"Requests per second, and the same rate {BASELINE_OFFSET} before (the baseline).",
            [
                _Target(_rate("mlctl_requests_total", _serving_selector()), "requests/s"),
                _Target(
                    _rate("mlctl_requests_total", _serving_selector(), offset=BASELINE_OFFSET),
                    f"baseline ({BASELINE_OFFSET} before)",
                ),
            ],
            unit="reqps",
        ),
        _Panel(
            "timeseries",
            "Error rate",
            "Share of /predict requests answered 5xx (live), and the serving monitors' error rate.",
            [
                _Target(_error_rate(), "5xx share (live)"),
                _Target(f'mlctl_monitor_error_rate{{{mon}, window="current"}}', "{{monitor}} (log)"),
            ],
            unit="percentunit",
            threshold=max_errors,
        ),
        _Panel(
            "timeseries",
            "Requests per monitor window",
            "Requests the serving monitors counted in their window and in the baseline window before it.",
            [_Target(f"mlctl_monitor_requests{{{mon}}}", "{{monitor}} {{window}}")],
            unit="short",
        ),
        _Panel(
            "heatmap",
            "Prediction distribution",
            "Predicted probability (classifiers) or value (regressors) per bucket over time.",
            [
                _Target(
                    f"sum by (le) (increase(mlctl_prediction_value_bucket{values}[$__interval]))",
                    "{{le}}",
                    heatmap=True,
                )
            ],
            extra={"calculate": False},
        ),
        _Panel(
            "timeseries",
            "Predicted classes",
            "Predictions per second by predicted class and version.",
            [
                _Target(
                    f"sum by (prediction, version) (rate(mlctl_predictions_total{values}[$__rate_interval]))",
                    "{{prediction}} v{{version}}",
                )
            ],
            unit="reqps",
        ),
    ]


def _arm_panels() -> list[_Panel]:
    return [
        _Panel(
            "timeseries",
            "Rollout arms: p95 latency",
            "p95 of /predict by rollout arm (no rollout: one arm, stable).",
            [_Target(_by_arm(_p95("le, arm")), "{{arm}}")],
            unit="s",
            span=8,
        ),
        _Panel(
            "timeseries",
            "Rollout arms: error rate",
            "Share of 5xx by rollout arm.",
            [_Target(_by_arm(_error_rate("arm")), "{{arm}}")],
            unit="percentunit",
            span=8,
        ),
        _Panel(
            "timeseries",
            "Rollout arms: volume",
            "Requests per second by rollout arm (the traffic split).",
            [_Target(_by_arm(_rate("mlctl_requests_total", _serving_selector(), "arm")), "{{arm}}")],
            unit="reqps",
            span=8,
        ),
    ]


def _monitor_panels(env: str, model: str, config: Environment) -> list[_Panel]:
    monitors = {n: m for n, m in sorted(config.monitors.items()) if m.model == model}
    mon = f"environment={_q(env)}, model={_q(model)}"
    panels: list[_Panel] = []
    for name, monitor in monitors.items():
        one = f"environment={_q(env)}, monitor={_q(name)}"
        if isinstance(monitor, DriftMonitor):
            panels.append(
                _Panel(
                    "timeseries",
                    f"Per-feature drift: {name}",
                    f"{monitor.test} statistic per feature at each run of {name} "
                    f"(threshold {monitor.threshold}).",
                    [_Target(f"mlctl_monitor_drift_statistic{{{one}}}", "{{feature}}")],
                    threshold=monitor.threshold,
                )
            )
        elif isinstance(monitor, PerformanceMonitor):
            floor = monitor.min_accuracy if monitor.min_accuracy is not None else monitor.min_auc
            panels.append(
                _Panel(
                    "timeseries",
                    f"Delayed accuracy: {name}",
                    f"Accuracy and AUC on delayed labels ({monitor.labels}) at each run of {name}.",
                    [
                        _Target(f"mlctl_monitor_accuracy{{{one}}}", "accuracy"),
                        _Target(f"mlctl_monitor_auc{{{one}}}", "auc"),
                    ],
                    unit="percentunit",
                    threshold=floor,
                )
            )
    if any(isinstance(m, DriftMonitor | ServingMonitor) for m in monitors.values()):
        panels.append(
            _Panel(
                "timeseries",
                "Prediction shift",
                "Shift of the mean prediction against the training reference (drift) or the baseline "
                "window (serving), and the means themselves.",
                [
                    _Target(f"mlctl_monitor_prediction_shift{{{mon}}}", "{{monitor}} shift"),
                    _Target(f"mlctl_monitor_prediction_mean{{{mon}}}", "{{monitor}} mean {{window}}"),
                ],
            )
        )
    if monitors:
        panels.append(
            _Panel(
                "stat",
                "Monitor breach",
                "1: the monitor's last run found a breach; fired: it carried out its actions.",
                [
                    _Target(f"mlctl_monitor_breach{{{mon}}}", "{{monitor}} breach"),
                    _Target(f"mlctl_monitor_fired{{{mon}}}", "{{monitor}} fired"),
                ],
                threshold=1,
            )
        )
    return panels


def _uid(env: str, name: str) -> str:
    uid = f"mlctl-{env}-{name}"
    if len(uid) <= UID_LIMIT:
        return uid
    return "mlctl-" + hashlib.sha256(f"{env}/{name}".encode()).hexdigest()[:24]


def _dashboard(
    title: str, uid: str, tags: list[str], sections: list[tuple[str, list[_Panel]]], variables: Any
) -> Any:
    gf = require("grafana_foundation_sdk.builders.dashboard", "dashboards")
    prometheus = require("grafana_foundation_sdk.builders.prometheus", "dashboards")
    kinds = {
        "timeseries": require("grafana_foundation_sdk.builders.timeseries", "dashboards"),
        "heatmap": require("grafana_foundation_sdk.builders.heatmap", "dashboards"),
        "stat": require("grafana_foundation_sdk.builders.stat", "dashboards"),
    }
    models = require("grafana_foundation_sdk.models.dashboard", "dashboards")
    prom_models = require("grafana_foundation_sdk.models.prometheus", "dashboards")
    datasource = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
    board = (
        gf.Dashboard(title)
        .uid(uid)
        .tags(tags)
        .editable()
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("utc")
        .with_variable(gf.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for variable in variables(gf, models, datasource):
        board = board.with_variable(variable)
    ids = iter(range(1, 1000))
    for heading, panels in sections:
        if not panels:
            continue
        board = board.with_row(gf.Row(heading).id(next(ids)))
        for panel in panels:
            builder = (
                kinds[panel.kind]
                .Panel()
                .id(next(ids))
                .title(panel.title)
                .description(panel.description)
                .datasource(datasource)
                .span(panel.span)
                .height(8)
            )
            if panel.unit:
                builder = builder.unit(panel.unit)
            if panel.threshold is not None:
                steps = [
                    models.Threshold(value=None, color="green"),
                    models.Threshold(value=panel.threshold, color="red"),
                ]
                builder = builder.thresholds(
                    gf.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)
                )
                if panel.kind == "timeseries":
                    style = require("grafana_foundation_sdk.builders.common", "dashboards")
                    common = require("grafana_foundation_sdk.models.common", "dashboards")
                    line = common.GraphTresholdsStyleMode.LINE  # (sic: the SDK's spelling)
                    builder = builder.thresholds_style(style.GraphThresholdsStyleConfig().mode(line))
            if panel.extra.get("calculate") is False:
                builder = builder.calculate(False)
            for ref, target in zip("ABCDEFGH", panel.targets, strict=False):
                query = prometheus.Dataquery().expr(target.expr).legend_format(target.legend).ref_id(ref)
                if target.heatmap:
                    query = query.format(prom_models.PromQueryFormat.HEATMAP)
                builder = builder.with_target(query)
            board = board.with_panel(builder)
    return board.build()


def _to_dict(dashboard: Any) -> dict[str, Any]:
    encoder = require("grafana_foundation_sdk.cog.encoder", "dashboards")
    data: dict[str, Any] = json.loads(json.dumps(dashboard, cls=encoder.JSONEncoder))
    return data


def build(env: str, config: Environment) -> dict[str, dict[str, Any]]:
    """Dashboards of environment ``env`` (desired state ``config``): file name -> JSON dict.

    Raises :class:`~mlctl.extras.MissingExtraError` without the ``dashboards`` extra."""
    out: dict[str, dict[str, Any]] = {}
    served: set[str] = set()
    for name, endpoint in sorted(config.endpoints.items()):
        served.add(endpoint.model)
        model, stage = endpoint.model, endpoint.stage
        serving = [m for m in config.monitors.values() if isinstance(m, ServingMonitor) and m.model == model]
        info = f"mlctl_model_info{{model={_q(model)}, stage={_q(stage)}}}"

        def variables(gf: Any, models: Any, datasource: Any, info: str = info) -> list[Any]:
            return [
                gf.QueryVariable("instance")
                .label("Server")
                .datasource(datasource)
                .query(f"label_values({info}, instance)")
                .multi(True)
                .include_all(True)
                .all_value(".*")
                .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            ]

        sections = [
            (f"Serving: {name} ({model}, {stage})", _serving_panels(env, model, serving)),
            ("Rollout arms side by side", _arm_panels()),
            (f"Monitors of {model}", _monitor_panels(env, model, config)),
        ]
        board = _dashboard(
            f"mlctl {env}: {name}", _uid(env, name), ["mlctl", env, model], sections, variables
        )
        out[f"mlctl-{env}-{name}.json"] = _to_dict(board)
    for model in sorted({m.model for m in config.monitors.values()} - served):
        sections = [(f"Monitors of {model}", _monitor_panels(env, model, config))]
        board = _dashboard(
            f"mlctl {env}: {model}", _uid(env, f"model-{model}"), ["mlctl", env, model], sections, _none
        )
        out[f"mlctl-{env}-model-{model}.json"] = _to_dict(board)
    return out


def _none(gf: Any, models: Any, datasource: Any) -> list[Any]:
    return []


def write(directory: Path, dashboards: dict[str, dict[str, Any]]) -> list[Path]:
    """Write each dashboard to ``directory/<name>`` (sorted keys, 2-space indent); return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sorted(dashboards.items()):
        path = directory / name
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
