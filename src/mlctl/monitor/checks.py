"""Evaluate one monitor against the production version: drift, quality or serving.

Contract: read-only (no state writes, no actions). Each evaluation returns a
:class:`MonitorResult` whose ``status`` is ``ok``, ``breach`` (a threshold is crossed),
``insufficient`` (too little data to judge: said so, never fired), ``skipped`` (no production
version yet, or not due) or ``error`` (with the message). Whether a breach *fires* (runs the
actions) depends on ``consecutive`` and is decided by the runner.

Drift is decided on effect size: a feature drifts when its statistic exceeds the monitor's
threshold AND its p-value, corrected across the monitor's features (Holm), is below
:data:`ALPHA`; the significance condition only matters for small samples, where a large
statistic can be noise. Features with fewer than ``min_samples`` values on either side are
not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlctl.errors import MlctlError
from mlctl.monitor import sources, stats
from mlctl.spec.loader import EnvSpec
from mlctl.spec.models import DriftMonitor, PerformanceMonitor, ServingMonitor
from mlctl.spec.validate import did_you_mean
from mlctl.state.document import State

ALPHA = 0.05
PREDICTION_SHIFT = 0.1  # mean shift of the predicted probability that counts as drift
MIN_LABELLED = 100  # labelled predictions needed to judge quality
MIN_REQUESTS = 20  # requests needed to judge latency and error rate
DEFAULT_LOG_WINDOW = "1d"  # window over the prediction log when a monitor sets none
CORRECTION: Literal["holm", "bh"] = "holm"
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_PLOT_ROWS = 20000


@dataclass
class Finding:
    """One judged quantity: a feature's drift, the predictions' shift, a quality or serving metric."""

    name: str
    test: str
    statistic: float | None
    threshold: float | None
    breach: bool
    severity: str = "low"
    p_value: float | None = None
    p_adjusted: float | None = None
    n_reference: int | None = None
    n_current: int | None = None
    op: str = ">"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "test": self.test,
            "statistic": _num(self.statistic),
            "threshold": self.threshold,
            "op": self.op,
            "breach": self.breach,
            "severity": self.severity,
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "note": self.note,
        }


@dataclass
class ActionResult:
    action: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ok": self.ok, "detail": self.detail}


@dataclass
class MonitorResult:
    """What one monitor found (and, after the runner, whether it fired and what it did)."""

    name: str
    kind: str
    model: str
    status: str
    summary: str
    version: int | None = None
    source: str = ""
    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    consecutive: int = 0
    required: int = 1
    fired: bool = False
    actions: list[ActionResult] = field(default_factory=list)
    samples: dict[str, tuple[Any, Any, bool]] = field(default_factory=dict, repr=False)

    @property
    def severity(self) -> str:
        found = [f.severity for f in self.findings if f.breach]
        return min(found, key=lambda s: _SEVERITY_ORDER[s]) if found else "low"

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.name,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "fired": self.fired,
            "severity": self.severity,
            "summary": self.summary,
            "source": self.source,
            "consecutive": {"breaches": self.consecutive, "required": self.required},
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "findings": [f.to_dict() for f in sort_findings(self.findings)],
            "actions": [a.to_dict() for a in self.actions],
        }


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Breaches first, then by severity, then by statistic (largest first)."""
    return sorted(
        findings,
        key=lambda f: (not f.breach, _SEVERITY_ORDER.get(f.severity, 3), -(f.statistic or 0.0), f.name),
    )


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


# -- the current data ----------------------------------------------------------------------


@dataclass
class Current:
    frame: Any  # pandas DataFrame
    source: str
    is_log: bool


def _log_frame(
    spec: EnvSpec, model: str, window: str | None, now: datetime, override: Path | None
) -> Current:
    directory = override if override is not None else sources.predictions_dir(spec, model)
    window = window or DEFAULT_LOG_WINDOW
    since = sources.window_start(window, now)
    frame = sources.read_prediction_log(directory, since=since)
    where = _rel(spec, directory)
    return Current(frame, f"prediction log {where} (last {window}, {len(frame):,} requests)", True)


def _rel(spec: EnvSpec, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(spec.repo.resolve()).as_posix()
    except ValueError:
        return str(path)


def current_for_drift(spec: EnvSpec, monitor: DriftMonitor, now: datetime, override: Path | None) -> Current:
    if override is not None and override.is_dir():
        return _log_frame(spec, monitor.model, monitor.window, now, override)
    if override is not None:
        frame = sources.read_current_file(override)
        return Current(frame, f"{_rel(spec, override)} ({len(frame):,} rows)", False)
    if monitor.current == "predictions":
        return _log_frame(spec, monitor.model, monitor.window, now, None)
    frame = sources.read_dataset(spec, monitor.current, monitor.window)
    window = f", last {monitor.window}" if monitor.window else ""
    return Current(frame, f"dataset {monitor.current} ({len(frame):,} rows{window})", False)


# -- drift -----------------------------------------------------------------------------------


def _feature_columns(ref: sources.Reference, monitor: DriftMonitor, name: str) -> list[dict[str, Any]]:
    inputs = ref.inputs
    if monitor.features is None:
        return inputs
    chosen = []
    for wanted in monitor.features:
        match = [i for i in inputs if wanted in (i["name"], i.get("feature"))]
        if not match:
            names = [i["name"] for i in inputs]
            hint = did_you_mean(wanted, names)
            raise MlctlError(
                f"monitor {name}: feature '{wanted}' is not an input of {monitor.model}"
                + (f" ({hint})" if hint else f" (inputs: {', '.join(names)})")
            )
        chosen.extend(match)
    return chosen


def _categorical(kind: str) -> bool:
    return kind in ("string", "category", "bool")


def _values(series: Any, categorical: bool) -> Any:
    import pandas as pd

    if categorical:
        clean = series.dropna()
        return np.asarray([str(v) for v in clean.tolist()], dtype=object)
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series, utc=True)
        return (stamps.astype("int64") / 1e9).where(stamps.notna()).dropna().to_numpy("float64")
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def evaluate_drift(
    spec: EnvSpec,
    name: str,
    monitor: DriftMonitor,
    state: State,
    now: datetime,
    override: Path | None,
) -> MonitorResult:
    result = MonitorResult(name, "drift", monitor.model, "ok", "", required=monitor.consecutive)
    version = _production(state, monitor.model, result)
    if version is None:
        return result
    ref = sources.load_reference(spec, monitor.model, version)
    current = current_for_drift(spec, monitor, now, override)
    result.source = current.source
    frame = current.frame
    columns = _feature_columns(ref, monitor, name)

    for column in columns:
        col = column["name"]
        if col not in frame.columns and len(frame):
            raise MlctlError(f"the current data ({current.source}) has no column '{col}'")
    kinds = {c["name"]: _categorical(c.get("type", "float")) for c in columns}
    current_frame = frame if len(frame) else frame.reindex(columns=list(kinds))
    findings = judge_features(
        ref.sample, current_frame, kinds, monitor.test, monitor.threshold, monitor.min_samples, result.samples
    )
    result.findings.extend(findings)
    judged = [f for f in findings if f.statistic is not None]

    prediction = _prediction_drift(spec, monitor, ref, current, version.version)
    if prediction is not None:
        finding, ref_scores, cur_scores = prediction
        result.findings.append(finding)
        result.samples["prediction"] = (ref_scores[:_PLOT_ROWS], cur_scores[:_PLOT_ROWS], False)
        result.metrics["prediction_mean_reference"] = float(ref_scores.mean()) if ref_scores.size else None
        result.metrics["prediction_mean_current"] = float(cur_scores.mean()) if cur_scores.size else None

    breaches = [f for f in sort_findings(result.findings) if f.breach]
    if breaches:
        result.status = "breach"
        result.summary = "drift in " + "; ".join(_describe(f) for f in breaches)
    elif not judged:
        result.status = "insufficient"
        smallest = min((f.n_current or 0 for f in result.findings), default=0)
        result.summary = (
            f"not judged: {smallest} current values, fewer than min_samples {monitor.min_samples}"
        )
    else:
        top = max(judged, key=lambda f: f.statistic or 0.0)
        result.summary = (
            f"no drift in {len(judged)} feature{'s' if len(judged) != 1 else ''} "
            f"(largest: {top.name}, {_label(top.test)} {top.statistic:.3f})"
        )
        skipped = len(columns) - len(judged)
        if skipped:
            result.summary += f"; {skipped} not judged (fewer than {monitor.min_samples} values)"
    return result


def judge_features(
    reference: Any,
    current: Any,
    kinds: dict[str, bool],
    test: str,
    threshold: float,
    min_samples: int,
    samples: dict[str, tuple[Any, Any, bool]] | None = None,
) -> list[Finding]:
    """Per-feature drift of ``current`` against ``reference`` (DataFrames), decided on effect
    size with Holm-corrected p-values; ``kinds`` maps column -> is categorical."""
    findings: list[Finding] = []
    judged: list[Finding] = []
    for col, categorical in kinds.items():
        used = "chi2" if categorical else test
        ref_values = _values(reference[col], categorical)
        cur_values = _values(current[col], categorical) if col in current.columns else np.array([])
        finding = Finding(
            name=col,
            test=used,
            statistic=None,
            threshold=threshold,
            breach=False,
            n_reference=len(ref_values),
            n_current=len(cur_values),
        )
        findings.append(finding)
        if samples is not None:
            samples[col] = (ref_values[:_PLOT_ROWS], cur_values[:_PLOT_ROWS], categorical)
        smallest = min(len(ref_values), len(cur_values))
        if smallest < min_samples:
            finding.note = f"not judged: {smallest} values < min_samples {min_samples}"
            continue
        outcome = (
            stats.chi2_categorical(ref_values, cur_values)
            if categorical
            else stats.numeric_test(used, ref_values, cur_values)
        )
        finding.statistic = outcome.statistic
        finding.p_value = outcome.p_value
        finding.severity = stats.severity(outcome.statistic)
        judged.append(finding)
    adjusted = stats.adjust_pvalues([f.p_value if f.p_value is not None else 1.0 for f in judged], CORRECTION)
    for finding, p_adjusted in zip(judged, adjusted, strict=True):
        finding.p_adjusted = p_adjusted
        finding.breach = bool((finding.statistic or 0.0) > threshold and p_adjusted < ALPHA)
    return findings


def _label(test: str) -> str:
    return {
        "ks": "KS",
        "psi": "PSI",
        "wasserstein": "Wasserstein",
        "jensenshannon": "JS",
        "chi2": "Cramér's V",
        "mean_shift": "mean shift",
    }.get(test, test)


def _describe(finding: Finding) -> str:
    return f"{finding.name}, {_label(finding.test)} {finding.statistic:.2f} ({finding.severity})"


def _prediction_drift(
    spec: EnvSpec,
    monitor: DriftMonitor,
    ref: sources.Reference,
    current: Current,
    version: int,
) -> tuple[Finding, Any, Any] | None:
    """Shift of the mean predicted probability (or prediction), reference vs current."""
    frame = current.frame
    inputs = [i["name"] for i in ref.inputs]
    if current.is_log:
        if "probability" not in frame.columns:
            return None
        served = frame[frame["version"] == version] if "version" in frame.columns else frame
        cur = served["probability"].to_numpy(dtype="float64")
        cur = cur[np.isfinite(cur)]
        if cur.size == 0 and ref.signature.get("task") != "classification":
            return None
    else:
        if any(c not in frame.columns for c in inputs):
            return None
        cur = None
    pipeline = sources.load_model(spec, ref.version)
    ref_scores = np.asarray(sources.predict_scores(pipeline, ref.sample, ref.signature), dtype="float64")
    if cur is None:
        rows = frame[inputs].dropna(how="all")
        cur = (
            np.asarray(sources.predict_scores(pipeline, rows, ref.signature), dtype="float64")
            if len(rows)
            else np.array([])
        )
    finding = Finding(
        name="prediction",
        test="mean_shift",
        statistic=None,
        threshold=PREDICTION_SHIFT,
        breach=False,
        n_reference=int(ref_scores.size),
        n_current=int(cur.size),
    )
    if min(ref_scores.size, cur.size) < monitor.min_samples:
        finding.note = (
            f"not judged: {min(ref_scores.size, cur.size)} predictions < min_samples {monitor.min_samples}"
        )
        return finding, ref_scores, cur
    shift = abs(float(cur.mean()) - float(ref_scores.mean()))
    if ref.signature.get("task") != "classification":
        scale = float(ref_scores.std(ddof=1)) or 1.0
        shift = shift / scale
        finding.note = "mean shift in reference standard deviations"
    ks = stats.ks(ref_scores, cur)
    finding.statistic = shift
    finding.p_value = ks.p_value
    finding.p_adjusted = ks.p_value
    finding.severity = stats.severity(shift)
    finding.breach = shift > PREDICTION_SHIFT and ks.p_value < ALPHA
    finding.note = (finding.note + "; " if finding.note else "") + f"KS {ks.statistic:.3f}"
    return finding, ref_scores, cur


# -- quality -----------------------------------------------------------------------------------


def evaluate_performance(
    spec: EnvSpec,
    name: str,
    monitor: PerformanceMonitor,
    state: State,
    now: datetime,
    override: Path | None,
) -> MonitorResult:
    import pandas as pd

    result = MonitorResult(name, "performance", monitor.model, "ok", "", required=monitor.consecutive)
    version = _production(state, monitor.model, result)
    if version is None:
        return result
    ref = sources.load_reference(spec, monitor.model, version)
    signature = ref.signature
    log_dir = override if override is not None and override.is_dir() else None
    current = _log_frame(spec, monitor.model, monitor.window, now, log_dir)
    log = current.frame
    if "version" in log.columns:
        log = log[log["version"] == version.version]
    labels_ds = spec.config.datasets[monitor.labels]
    labels = sources.read_dataset(spec, monitor.labels, None)
    keys = list(signature.get("entity_keys", []))
    target = signature.get("target")
    if target not in labels.columns:
        raise MlctlError(f"monitor {name}: labels dataset {monitor.labels} has no target column '{target}'")
    missing = [k for k in keys if k not in labels.columns]
    if not keys or missing:
        raise MlctlError(
            f"monitor {name}: labels dataset {monitor.labels} lacks the entity key {missing or keys}"
        )
    result.source = f"{current.source} joined to dataset {monitor.labels}"
    if len(log) and any(k not in log.columns for k in keys):
        raise MlctlError(
            f"monitor {name}: the prediction log has no entity key {keys}; "
            "requests must send it for their predictions to be labelled"
        )
    joined = _join_labels(log, labels, keys, target, labels_ds.timestamp)
    n = len(joined)
    result.metrics["labelled"] = float(n)
    if n < MIN_LABELLED:
        result.status = "insufficient"
        result.summary = f"not judged: {n} labelled predictions, fewer than {MIN_LABELLED}"
        return result
    truth = joined[target].astype(str).to_numpy()
    predicted = joined["prediction"].astype(str).to_numpy()
    accuracy = float((truth == predicted).mean())
    result.metrics["accuracy"] = accuracy
    auc: float | None = None
    classes = [str(c) for c in signature.get("classes", [])]
    probability = pd.to_numeric(joined["probability"], errors="coerce")
    if classes and probability.notna().all():
        y = truth == classes[-1]
        if 0 < y.sum() < len(y):
            from sklearn.metrics import roc_auc_score

            auc = float(roc_auc_score(y, probability.to_numpy()))
    result.metrics["auc"] = auc
    for metric, value, floor in (("accuracy", accuracy, monitor.min_accuracy), ("auc", auc, monitor.min_auc)):
        if floor is None:
            continue
        finding = Finding(metric, "minimum", value, floor, False, op=">=", n_current=n)
        if value is None:
            finding.note = "not computable (one class only, or no probabilities)"
        else:
            finding.breach = value < floor
            finding.severity = _floor_severity(value, floor)
        result.findings.append(finding)
    breaches = [f for f in result.findings if f.breach]
    if breaches:
        result.status = "breach"
        result.summary = (
            "quality below its floor: "
            + ", ".join(f"{f.name} {f.statistic:.3f} < {f.threshold:g}" for f in breaches)
            + f" on {n:,} labelled predictions"
        )
    else:
        result.summary = (
            f"accuracy {accuracy:.3f}"
            + (f", AUC {auc:.3f}" if auc is not None else "")
            + (f" on {n:,} labelled predictions")
        )
    return result


def _floor_severity(value: float, floor: float) -> str:
    gap = floor - value
    return "high" if gap > 0.1 else "medium" if gap > 0.05 else "low"


def _join_labels(log: Any, labels: Any, keys: list[str], target: Any, label_ts: str | None) -> Any:
    """Each label with the latest prediction for its entity at or before the label's time."""
    import pandas as pd

    if not len(log):
        return log.iloc[0:0].assign(**{target: []})
    log = log.dropna(subset=keys).copy()
    for k in keys:
        log[k] = log[k].astype(str)
    labels = labels.dropna(subset=[*keys, target]).copy()
    for k in keys:
        labels[k] = labels[k].astype(str)
    key = "__key"
    log[key] = log[keys].agg("\x1f".join, axis=1) if len(keys) > 1 else log[keys[0]]
    labels[key] = labels[keys].agg("\x1f".join, axis=1) if len(keys) > 1 else labels[keys[0]]
    cols = [key, "ts", "prediction", "probability"]
    if label_ts and label_ts in labels.columns:
        labels["__t"] = pd.to_datetime(labels[label_ts], utc=True).astype("datetime64[ns, UTC]")
        left = labels[[key, "__t", target]].sort_values("__t")
        right = log[cols].rename(columns={"ts": "__t"})
        right["__t"] = right["__t"].astype("datetime64[ns, UTC]")
        right = right.sort_values("__t")
        joined = pd.merge_asof(left, right, on="__t", by=key, direction="backward")
    else:
        last = log[cols].sort_values("ts").drop_duplicates(key, keep="last")
        joined = labels[[key, target]].merge(last, on=key, how="left")
    return joined.dropna(subset=["prediction"])


# -- serving -----------------------------------------------------------------------------------


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
    version = _production(state, monitor.model, result)
    if version is None:
        return result
    window = monitor.window or DEFAULT_LOG_WINDOW
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
    result.source = (
        f"prediction log {_rel(spec, directory)} (v{version.version}, last {window}, {len(log):,} requests)"
    )
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


# -- shared --------------------------------------------------------------------------------------


def _production(state: State, model: str, result: MonitorResult) -> Any:
    registry = state.models.get(model)
    number = registry.stages.get("production") if registry else None
    version = registry.get(number) if registry and number is not None else None
    if version is None:
        result.status = "skipped"
        result.summary = f"{model} has no production version to monitor yet"
        return None
    result.version = version.version
    return version


def evaluate(spec: EnvSpec, name: str, state: State, now: datetime, override: Path | None) -> MonitorResult:
    """Evaluate monitor ``name``; user errors become a result with status ``error``."""
    monitor = spec.config.monitors[name]
    try:
        if isinstance(monitor, DriftMonitor):
            return evaluate_drift(spec, name, monitor, state, now, override)
        if isinstance(monitor, PerformanceMonitor):
            return evaluate_performance(spec, name, monitor, state, now, override)
        return evaluate_serving(spec, name, monitor, state, now, override)
    except MlctlError as exc:
        message = str(exc).removeprefix(f"monitor {name}: ")
        return MonitorResult(
            name, monitor.kind, monitor.model, "error", message, required=monitor.consecutive
        )
