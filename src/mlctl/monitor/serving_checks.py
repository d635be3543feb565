"""Serving monitors: latency, errors, volume and predictions of the production version.

Contract: read-only (no state writes, no actions). :func:`evaluate_serving` reads the
prediction log (one record per request, wherever serving shipped it: see
:mod:`mlctl.providers.predlog`) over the monitor's window and the window of the same length
before it (the *baseline*), and judges:

============================  ==========================================================
p95 latency                   of the production version's successful (< 400) requests,
                              breach above ``max_p95_latency_ms``
error rate                    share of its requests answered 5xx, breach above
                              ``max_error_rate`` (4xx are the client's; reported as
                              ``client_error_rate``, not judged)
volume                        requests to the endpoint (every version), breach below
                              :data:`VOLUME_DROP` (50%) of the baseline's; and below
                              ``min_requests`` when set
prediction distribution       mean predicted probability (regressors: prediction, in
                              baseline standard deviations) of the production version
                              against the baseline's, breach when it moved more than
                              :data:`PREDICTION_SHIFT` (0.1) and a KS test agrees
============================  ==========================================================

Latency and error rate need :data:`MIN_REQUESTS` requests, volume a baseline of as many,
the prediction distribution :data:`MIN_PREDICTIONS` predictions on each side; below that a
check is not judged (``insufficient`` when nothing could be judged).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlctl.monitor import sources, stats
from mlctl.monitor.findings import Finding, MonitorResult, production_version
from mlctl.providers.predlog import LogStore
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import ServingMonitor
from mlctl.state.document import State

MIN_REQUESTS = 20  # requests needed to judge latency and error rate (and a baseline's volume)
MIN_PREDICTIONS = 100  # predictions needed on each side to judge their distribution
VOLUME_DROP = 0.5  # fewer requests than this share of the baseline's is a breach
PREDICTION_SHIFT = 0.1  # mean shift of the predictions that counts as a breach
ALPHA = 0.05


def _p95(latency: Any) -> float | None:
    values = np.asarray(latency, dtype="float64")
    values = values[np.isfinite(values)]
    return float(np.percentile(values, 95)) if values.size else None


def evaluate_serving(
    spec: EnvSpec,
    name: str,
    monitor: ServingMonitor,
    state: State,
    now: datetime,
    override: Path | None,
) -> MonitorResult:
    import pandas as pd

    result = MonitorResult(name, "serving", monitor.model, "ok", "", required=monitor.consecutive)
    version = production_version(state, monitor.model, result)
    if version is None:
        return result
    window = monitor.window or sources.DEFAULT_LOG_WINDOW
    store = sources.prediction_log(
        spec, monitor.model, override if override is not None and override.is_dir() else None
    )
    since = sources.window_start(window, now)
    assert since is not None
    start = since - (now - since)
    requests = sources.read_request_log(store, since=start)
    current_all = requests[requests["ts"] >= pd.Timestamp(since)]
    baseline_all = requests[requests["ts"] < pd.Timestamp(since)]
    log = current_all[current_all["version"] == version.version]
    baseline = baseline_all[baseline_all["version"] == version.version]
    result.source = f"prediction log {store.where} (v{version.version}, last {window}, {len(log):,} requests)"

    n = len(log)
    status = log["status"].to_numpy("int64")
    errors = status >= 500
    ok = status < 400
    p95 = _p95(log["latency_ms"].to_numpy("float64")[ok]) if n else None
    error_rate = float(errors.mean()) if n else None
    result.metrics["requests"] = float(n)
    result.metrics["p95_latency_ms"] = p95
    result.metrics["error_rate"] = error_rate
    result.metrics["client_error_rate"] = float(((status >= 400) & (status < 500)).mean()) if n else None
    result.metrics["endpoint_requests"] = float(len(current_all))
    result.metrics["baseline_endpoint_requests"] = float(len(baseline_all))
    if len(baseline) >= MIN_REQUESTS:
        b_status = baseline["status"].to_numpy("int64")
        result.metrics["baseline_requests"] = float(len(baseline))
        result.metrics["baseline_p95_latency_ms"] = _p95(
            baseline["latency_ms"].to_numpy("float64")[b_status < 400]
        )
        result.metrics["baseline_error_rate"] = float((b_status >= 500).mean())

    judge = n >= MIN_REQUESTS
    if monitor.min_requests is not None:
        result.findings.append(
            Finding(
                "requests",
                "minimum",
                float(n),
                float(monitor.min_requests),
                n < monitor.min_requests,
                severity="high"
                if n < monitor.min_requests / 2
                else "medium"
                if n < monitor.min_requests
                else "low",
                op=">=",
                n_current=n,
            )
        )
    if monitor.max_p95_latency_ms is not None:
        f = Finding("p95_latency_ms", "maximum", p95, monitor.max_p95_latency_ms, False, op="<=", n_current=n)
        if not judge or p95 is None:
            f.note = f"not judged: {n} requests < {MIN_REQUESTS}"
        else:
            f.breach = p95 > monitor.max_p95_latency_ms
            ratio = p95 / monitor.max_p95_latency_ms
            f.severity = "high" if ratio > 2 else "medium" if ratio > 1 else "low"
        result.findings.append(f)
    if monitor.max_error_rate is not None:
        f = Finding("error_rate", "maximum", error_rate, monitor.max_error_rate, False, op="<=", n_current=n)
        if not judge or error_rate is None:
            f.note = f"not judged: {n} requests < {MIN_REQUESTS}"
        else:
            f.breach = error_rate > monitor.max_error_rate
            f.severity = (
                "high" if error_rate > 5 * monitor.max_error_rate else "medium" if f.breach else "low"
            )
        result.findings.append(f)
    volume = _volume(len(current_all), len(baseline_all))
    result.findings.append(volume)
    shifted = _prediction_shift(store, start, since, version.version, _is_classifier(spec, monitor.model))
    shift = None
    if shifted is not None:
        shift, result.metrics["prediction_mean_current"], result.metrics["prediction_mean_baseline"] = shifted
        result.findings.append(shift)

    breaches = [f for f in result.findings if f.breach]
    judged_any = judge or volume.statistic is not None or (shift is not None and shift.statistic is not None)
    if breaches:
        result.status = "breach"
        result.summary = (
            "; ".join(_serving_text(f) for f in breaches) + f" (v{version.version}, {n:,} requests)"
        )
    elif not judged_any:
        result.status = "insufficient"
        result.summary = (
            f"not judged: {n} requests to v{version.version} in the last {window}, fewer than {MIN_REQUESTS}"
        )
    else:
        parts = [f"{n:,} requests"]
        if p95 is not None:
            parts.append(f"p95 {p95:.1f} ms")
        if error_rate is not None:
            parts.append(f"error rate {error_rate:.2%}")
        result.summary = ", ".join(parts) + f" (v{version.version})"
    return result


def _volume(current: int, baseline: int) -> Finding:
    """Requests to the endpoint in the window against :data:`VOLUME_DROP` of the baseline's."""
    floor = VOLUME_DROP * baseline
    f = Finding("volume", "minimum", None, floor, False, op=">=", n_current=current, n_reference=baseline)
    if baseline < MIN_REQUESTS:
        f.note = f"not judged: baseline window has {baseline} requests < {MIN_REQUESTS}"
        return f
    f.statistic = float(current)
    f.breach = current < floor
    f.severity = "high" if current < floor / 2 else "medium" if f.breach else "low"
    f.note = f"{current:,} requests vs {baseline:,} in the window before"
    return f


def _is_classifier(spec: EnvSpec, model: str) -> bool | None:
    config = spec.config.models.get(model)
    return None if config is None else config.training.task == "classification"


def _scores(frame: Any, classifier: bool | None) -> Any:
    import pandas as pd

    probability = frame["probability"].to_numpy("float64")
    if classifier is True or (classifier is None and np.isfinite(probability).any()):
        values = probability
    else:
        values = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy("float64")
    return values[np.isfinite(values)]


def _prediction_shift(
    store: LogStore, start: datetime, since: datetime, version: int, classifier: bool | None
) -> tuple[Finding, float | None, float | None] | None:
    """Mean shift of the production version's predictions against the baseline window's."""
    import pandas as pd

    predictions = sources.read_prediction_log(store, since=start)
    if not len(predictions):
        return None
    is_current = (predictions["ts"] >= pd.Timestamp(since)).to_numpy()
    current = predictions[is_current & (predictions["version"] == version).to_numpy()]
    baseline = predictions[~is_current]
    regression = classifier is False or (classifier is None and not np.isfinite(current["probability"]).any())
    cur = _scores(current, None if classifier is None else not regression)
    ref = _scores(baseline, None if classifier is None else not regression)
    f = Finding(
        "prediction",
        "mean_shift",
        None,
        PREDICTION_SHIFT,
        False,
        n_current=int(cur.size),
        n_reference=int(ref.size),
    )
    means = (float(cur.mean()) if cur.size else None, float(ref.mean()) if ref.size else None)
    if ref.size < MIN_PREDICTIONS:
        f.note = (
            f"not judged: baseline window has {ref.size:,} predictions < {MIN_PREDICTIONS} "
            f"(this window: {cur.size:,} of v{version})"
        )
        return f, *means
    if cur.size < MIN_PREDICTIONS:
        f.note = (
            f"not judged: {cur.size:,} predictions of v{version} < {MIN_PREDICTIONS} "
            f"(baseline window: {ref.size:,})"
        )
        return f, *means
    shift = abs(float(cur.mean()) - float(ref.mean()))
    if regression:
        shift = shift / (float(ref.std(ddof=1)) or 1.0)
        f.note = "mean shift in baseline standard deviations"
    ks = stats.ks(ref, cur)
    f.statistic = shift
    f.p_value = ks.p_value
    f.breach = shift > PREDICTION_SHIFT and ks.p_value < ALPHA
    f.severity = stats.severity(shift)
    return f, *means


def _serving_text(f: Finding) -> str:
    if f.name == "p95_latency_ms":
        return f"p95 latency {f.statistic:.1f} ms > {f.threshold:g} ms"
    if f.name == "error_rate":
        return f"error rate {(f.statistic or 0):.2%} > {(f.threshold or 0):.2%}"
    if f.name == "volume":
        return f"{int(f.statistic or 0):,} requests < 50% of the window before ({f.n_reference:,})"
    if f.name == "prediction":
        return f"mean prediction moved {f.statistic:.3f} > {f.threshold:g} from the window before"
    return f"{int(f.statistic or 0)} requests < {int(f.threshold or 0)}"
