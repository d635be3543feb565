"""Serving monitors: latency, error rate and request volume of the production version.

Contract: read-only (no state writes, no actions). :func:`evaluate_serving` reads the
prediction log of the production version over the monitor's window (and the window before
it, as a baseline shown next to the numbers) and checks the p95 latency of successful
requests, the error rate and the request count against the monitor's limits. Fewer than
:data:`MIN_REQUESTS` requests leaves latency and error rate unjudged (``insufficient``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlctl.monitor import sources
from mlctl.monitor.results import Finding, MonitorResult, production_version
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import ServingMonitor
from mlctl.state.document import State

MIN_REQUESTS = 20  # requests needed to judge latency and error rate


def _is_error(status: Any) -> bool:
    if isinstance(status, (int, float)) and not isinstance(status, bool):
        return status >= 500
    text = str(status).lower()
    if text.isdigit():
        return int(text) >= 500
    return text not in ("ok", "success", "200")


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
    log_dir = override if override is not None and override.is_dir() else None
    directory = log_dir if log_dir is not None else sources.predictions_dir(spec, monitor.model)
    since = sources.window_start(window, now)
    assert since is not None
    everything = sources.read_prediction_log(directory, since=since - (now - since))
    if "version" in everything.columns:
        everything = everything[everything["version"] == version.version]
    stamps = pd.to_datetime(everything["ts"], utc=True)
    log = everything[stamps >= pd.Timestamp(since)]
    baseline = everything[stamps < pd.Timestamp(since)]
    where = sources.repo_relative(spec, directory)
    result.source = f"prediction log {where} (v{version.version}, last {window}, {len(log):,} requests)"
    n = len(log)
    result.metrics["requests"] = float(n)
    errors = np.asarray([_is_error(s) for s in log["status"].tolist()], dtype=bool)
    ok_latency = (
        pd.to_numeric(log["latency_ms"], errors="coerce").to_numpy("float64")[~errors] if n else np.array([])
    )
    ok_latency = ok_latency[np.isfinite(ok_latency)]
    p95 = float(np.percentile(ok_latency, 95)) if ok_latency.size else None
    error_rate = float(errors.mean()) if n else None
    result.metrics["p95_latency_ms"] = p95
    result.metrics["error_rate"] = error_rate
    if len(baseline) >= MIN_REQUESTS:
        b_errors = np.asarray([_is_error(s) for s in baseline["status"].tolist()], dtype=bool)
        b_lat = pd.to_numeric(baseline["latency_ms"], errors="coerce").to_numpy("float64")[~b_errors]
        b_lat = b_lat[np.isfinite(b_lat)]
        result.metrics["baseline_requests"] = float(len(baseline))
        result.metrics["baseline_p95_latency_ms"] = float(np.percentile(b_lat, 95)) if b_lat.size else None
        result.metrics["baseline_error_rate"] = float(b_errors.mean())
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
    judge = n >= MIN_REQUESTS
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
    breaches = [f for f in result.findings if f.breach]
    if breaches:
        result.status = "breach"
        result.summary = (
            "; ".join(_serving_text(f) for f in breaches) + f" (v{version.version}, {n:,} requests)"
        )
    elif not judge and all(not f.breach for f in result.findings):
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


def _serving_text(f: Finding) -> str:
    if f.name == "p95_latency_ms":
        return f"p95 latency {f.statistic:.1f} ms > {f.threshold:g} ms"
    if f.name == "error_rate":
        return f"error rate {(f.statistic or 0):.2%} > {(f.threshold or 0):.2%}"
    return f"{int(f.statistic or 0)} requests < {int(f.threshold or 0)}"
