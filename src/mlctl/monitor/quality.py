"""Performance monitors: is the production version still right, judged by delayed labels?

Contract: read-only (no state writes, no actions). :func:`evaluate_performance` joins each
label of the monitor's ``labels`` dataset to the latest prediction logged for its entity at or
before the label's time, then checks accuracy and AUC against the monitor's floors. Fewer than
:data:`MIN_LABELLED` labelled predictions is ``insufficient``, never a breach. Problems a user
can fix raise :class:`~mlctl.errors.MlctlError`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError
from mlctl.monitor import sources
from mlctl.monitor.findings import Finding, MonitorResult, production_version
from mlctl.spec.envspec import EnvSpec
from mlctl.spec.models import PerformanceMonitor
from mlctl.state.document import State

MIN_LABELLED = 100  # labelled predictions needed to judge quality


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
    version = production_version(state, monitor.model, result)
    if version is None:
        return result
    ref = sources.load_reference(spec, monitor.model, version)
    signature = ref.signature
    log_dir = override if override is not None and override.is_dir() else None
    current = sources.log_frame(spec, monitor.model, monitor.window, now, log_dir)
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


def delayed_labels(spec: EnvSpec, state: State, model: str) -> tuple[list[Any], list[str], str] | None:
    """The delayed labels a rollout of ``model`` is judged by: those of the first performance
    monitor of ``model`` (its ``labels`` dataset), as
    :class:`~mlctl.monitor.rollout_analysis.Label` values, with the entity keys and the
    target of the production version's signature and the dataset's name. None when no
    performance monitor names labels or production has no version. Raises
    :class:`~mlctl.errors.MlctlError` when the dataset lacks the key or the target."""
    import pandas as pd

    from mlctl.monitor.rollout_analysis import Label

    monitors = [m for m in spec.config.monitors.values() if isinstance(m, PerformanceMonitor)]
    monitor = next((m for m in monitors if m.model == model), None)
    registry = state.models.get(model)
    number = registry.stages.get("production") if registry is not None else None
    version = registry.get(number) if registry is not None and number is not None else None
    if monitor is None or version is None:
        return None
    signature = sources.load_reference(spec, model, version).signature
    keys = [str(k) for k in signature.get("entity_keys", [])]
    target = signature.get("target")
    frame = sources.read_dataset(spec, monitor.labels, None)
    missing = [c for c in [*keys, target] if c not in frame.columns]
    if not keys or missing:
        raise MlctlError(f"labels dataset {monitor.labels} lacks {missing or 'an entity key'}")
    frame = frame.dropna(subset=[*keys, target])
    timestamp = spec.config.datasets[monitor.labels].timestamp
    if timestamp and timestamp in frame.columns:
        stamps = pd.to_datetime(frame[timestamp], utc=True)
        times: list[float | None] = [t.timestamp() for t in stamps]
    else:
        times = [None] * len(frame)
    key_values = zip(*(frame[k].astype(str) for k in keys), strict=True)
    labels = [
        Label(tuple(key), ts, str(truth))
        for key, ts, truth in zip(key_values, times, frame[target], strict=True)
    ]
    return labels, keys, monitor.labels
