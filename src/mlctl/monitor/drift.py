"""Drift monitors: do the current inputs (and predictions) still look like the reference?

Contract: read-only (no state writes, no actions). :func:`evaluate_drift` compares the
production version's training-time reference sample with the current data (a dataset, a
``--current`` file or the prediction log, see :mod:`~mlctl.monitor.sources`), feature by
feature, and the mean predicted probability (or prediction) reference vs current.

Drift is decided on effect size: a feature drifts when its statistic exceeds the monitor's
threshold AND its p-value, corrected across the monitor's features (Holm), is below
:data:`ALPHA`; the significance condition only matters for small samples, where a large
statistic can be noise. Features with fewer than ``min_samples`` values on either side are
not judged. Problems a user can fix raise :class:`~mlctl.errors.MlctlError`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlctl.errors import MlctlError
from mlctl.monitor import sources, stats
from mlctl.monitor.findings import Finding, MonitorResult, production_version, sort_findings
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import DriftMonitor
from mlctl.spec.names import did_you_mean
from mlctl.state.document import State

ALPHA = 0.05
PREDICTION_SHIFT = 0.1  # mean shift of the predicted probability that counts as drift
CORRECTION: Literal["holm", "bh"] = "holm"
_PLOT_ROWS = 20000


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
    version = production_version(state, monitor.model, result)
    if version is None:
        return result
    ref = sources.load_reference(spec, monitor.model, version)
    current = sources.current_for_drift(spec, monitor, now, override)
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
    current: sources.Current,
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
