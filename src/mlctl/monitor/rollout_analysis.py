"""Deciding a rollout from its arms: pure statistics over the prediction log.

Contract: :func:`arm_samples` reads the request records of an endpoint's prediction log
(:func:`mlctl.providers.predlog.iter_records`) since a step began and splits them by their
``arm`` field (``stable``, ``candidate``, ``shadow``; records without one are ``stable``).
:func:`analyze` compares the candidate arm with the stable arm and returns a
:class:`Verdict`; it does no I/O and never raises on data.

The tests are one-sided "is the candidate worse by more than the tolerance" tests, run
together and corrected with Holm's step-down procedure, so the family-wise chance of
aborting a candidate that is as good stays below ``alpha``:

* latency: Mann-Whitney U of the candidate's per-request latency against the stable arm's
  latency scaled by ``1 + max_latency_increase`` (H0: the candidate is at most that much
  slower), plus the p95 ratio as the effect shown;
* error rate: a non-inferiority z test with margin ``max_error_rate_increase`` on the
  Agresti-Caffo adjusted proportions (H0: ``p_candidate - p_stable <= margin``);
* prediction distribution: two-sample Kolmogorov-Smirnov on the predicted probabilities
  (or values); it counts only when the statistic also exceeds ``max_prediction_drift``;
* quality, once delayed labels arrive (:func:`join_labels` gives each arm its labelled
  predictions): a non-inferiority z test of accuracy with margin ``max_accuracy_decrease``
  (H0: ``accuracy_stable - accuracy_candidate <= margin``, i.e. the error-rate test on
  misclassifications). It joins the family only when both arms hold ``min_labelled``
  labelled predictions; before that the reason says how many there are, and the verdict
  does not wait for labels (they may take weeks).

No verdict but ``wait`` is given before both arms hold ``min_samples`` requests. Otherwise a
rejected test aborts (weight 0, the reason names the test and its statistics); no rejection
advances one step, or promotes at the last step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mlctl.spec.models import RolloutAnalysis

__all__ = [
    "ArmSample",
    "Label",
    "TestResult",
    "Verdict",
    "accuracy_test",
    "analyze",
    "arm_samples",
    "holm",
    "join_labels",
]

ARMS = ("stable", "candidate", "shadow")


@dataclass(frozen=True)
class Label:
    """One delayed label: the entity's key values (in the signature's key order, as
    strings), when it was observed (epoch seconds; None: no timestamp) and the true value."""

    key: tuple[str, ...]
    ts: float | None
    truth: str


@dataclass
class ArmSample:
    """What one arm served: per-request latency (ms), failures and predictions; with
    :func:`join_labels`, how many of its predictions a delayed label judged and how many of
    those were right."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    predictions: list[float] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)
    #: (entity, time in epoch seconds, predicted class) of each keyed prediction
    scored: list[tuple[dict[str, Any], float, str]] = field(default_factory=list)
    labelled: int = 0
    correct: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        """Counts, error rate, latency percentiles and labelled accuracy, for state and reports."""
        n = self.requests
        return {
            "requests": n,
            "errors": self.errors,
            "error_rate": round(self.errors / n, 6) if n else None,
            "p50_ms": _round(_quantile(self.latencies, 0.50)),
            "p95_ms": _round(_quantile(self.latencies, 0.95)),
            "versions": sorted(self.versions),
            "labelled": self.labelled,
            "accuracy": round(self.correct / self.labelled, 6) if self.labelled else None,
        }


@dataclass
class TestResult:
    """One test of the candidate against the stable arm."""

    name: str
    statistic: float
    p_value: float
    effect: float
    tolerance: float
    rejected: bool = False  # after Holm correction
    threshold: float | None = None  # Holm's alpha for this test's rank

    def as_dict(self) -> dict[str, Any]:
        return {
            "statistic": _round(self.statistic),
            "p_value": _round(self.p_value, 8),
            "effect": _round(self.effect),
            "tolerance": self.tolerance,
            "holm_alpha": _round(self.threshold, 8),
            "rejected": self.rejected,
        }


@dataclass
class Verdict:
    """What to do with a rollout now, why, and the statistics behind it."""

    action: Literal["wait", "advance", "promote", "abort"]
    reason: str
    stable: dict[str, Any]
    candidate: dict[str, Any]
    tests: list[TestResult] = field(default_factory=list)

    def statistics(self) -> dict[str, Any]:
        """JSON-ready statistics (recorded in state with the decision)."""
        return {
            "stable": self.stable,
            "candidate": self.candidate,
            "tests": {t.name: t.as_dict() for t in self.tests},
        }


def holm(p_values: list[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise ``alpha``,
    and the threshold each p-value was held to (``alpha / (m - rank)``, ranks from 0)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    rejected = [False] * m
    thresholds = [alpha] * m
    stopped = False
    for rank, i in enumerate(order):
        threshold = alpha / (m - rank)
        thresholds[i] = threshold
        if not stopped and p_values[i] <= threshold:
            rejected[i] = True
        else:
            stopped = True
    return rejected, thresholds


def latency_test(stable: list[float], candidate: list[float], tolerance: float) -> TestResult:
    """H0: the candidate is at most ``1 + tolerance`` times slower (Mann-Whitney U, one-sided)."""
    from scipy.stats import mannwhitneyu

    scaled = [x * (1.0 + tolerance) for x in stable]
    result = mannwhitneyu(candidate, scaled, alternative="greater", method="asymptotic")
    p95_s, p95_c = _quantile(stable, 0.95), _quantile(candidate, 0.95)
    ratio = (p95_c / p95_s) if p95_s and p95_c is not None else float("nan")
    return TestResult("latency", float(result.statistic), float(result.pvalue), ratio - 1.0, tolerance)


def error_rate_test(errors_s: int, n_s: int, errors_c: int, n_c: int, margin: float) -> TestResult:
    """H0: ``p_candidate - p_stable <= margin`` (z test on Agresti-Caffo adjusted proportions)."""
    from scipy.stats import norm

    ps = (errors_s + 1) / (n_s + 2)
    pc = (errors_c + 1) / (n_c + 2)
    se = math.sqrt(ps * (1 - ps) / (n_s + 2) + pc * (1 - pc) / (n_c + 2))
    z = (pc - ps - margin) / se
    observed = errors_c / n_c - errors_s / n_s if n_s and n_c else 0.0
    return TestResult("error_rate", z, float(norm.sf(z)), observed, margin)


def accuracy_test(
    labelled_s: int, correct_s: int, labelled_c: int, correct_c: int, margin: float
) -> TestResult:
    """H0: ``accuracy_stable - accuracy_candidate <= margin``: the error-rate test on
    misclassifications; the effect shown is the accuracy difference (candidate - stable)."""
    test = error_rate_test(labelled_s - correct_s, labelled_s, labelled_c - correct_c, labelled_c, margin)
    effect = correct_c / labelled_c - correct_s / labelled_s if labelled_s and labelled_c else 0.0
    return TestResult("accuracy", test.statistic, test.p_value, effect, margin)


def join_labels(arms: dict[str, ArmSample], labels: Iterable[Label], keys: list[str]) -> None:
    """Judge each arm's keyed predictions by the delayed ``labels``: each label is joined,
    arm by arm, to that arm's latest prediction for the label's entity at or before the
    label's time (the latest at all when the label has no time), as the performance monitor
    joins labels to the log. A prediction counts once (several labels reaching the same
    prediction: the last one given judges it), so the test's samples are predictions, not
    repeated labels. Sets ``labelled`` and ``correct`` of every arm; pure."""
    import bisect

    index: dict[str, dict[tuple[str, ...], tuple[list[float], list[str]]]] = {}
    for name, arm in arms.items():
        by_key: dict[tuple[str, ...], list[tuple[float, str]]] = {}
        for entity, ts, predicted in arm.scored:
            if not all(entity.get(k) is not None for k in keys):
                continue
            by_key.setdefault(tuple(str(entity[k]) for k in keys), []).append((ts, predicted))
        index[name] = {}
        for key, items in by_key.items():
            items.sort(key=lambda item: item[0])
            index[name][key] = ([ts for ts, _ in items], [p for _, p in items])
    judged: dict[str, dict[tuple[tuple[str, ...], int], bool]] = {name: {} for name in arms}
    for label in labels:
        for name in arms:
            found = index[name].get(label.key)
            if found is None:
                continue
            times, classes = found
            at = len(times) if label.ts is None else bisect.bisect_right(times, label.ts)
            if at == 0:
                continue
            judged[name][(label.key, at - 1)] = classes[at - 1] == label.truth
    for name, arm in arms.items():
        arm.labelled = len(judged[name])
        arm.correct = sum(judged[name].values())


def prediction_test(stable: list[float], candidate: list[float], tolerance: float) -> TestResult:
    """Two-sample Kolmogorov-Smirnov on the predictions; its p-value counts only when the
    statistic also exceeds ``tolerance`` (otherwise it is reported with p = 1)."""
    from scipy.stats import ks_2samp

    if not stable or not candidate:
        return TestResult("prediction_distribution", 0.0, 1.0, 0.0, tolerance)
    result = ks_2samp(stable, candidate)
    statistic = float(result.statistic)
    p = float(result.pvalue) if statistic > tolerance else 1.0
    return TestResult("prediction_distribution", statistic, p, statistic, tolerance)


def analyze(
    stable: ArmSample,
    candidate: ArmSample,
    analysis: RolloutAnalysis,
    *,
    last_step: bool,
    labelled: bool = False,
) -> Verdict:
    """The verdict on a step (see the module contract). ``last_step``: advancing promotes.
    ``labelled``: delayed labels were joined to the arms (:func:`join_labels`), so quality
    is judged once both arms hold ``min_labelled`` of them."""
    s_sum, c_sum = stable.summary(), candidate.summary()
    need = analysis.min_samples
    if stable.requests < need or candidate.requests < need:
        return Verdict(
            "wait",
            f"waiting for {need} requests per arm (stable {stable.requests}, candidate {candidate.requests})",
            s_sum,
            c_sum,
        )
    tests = [
        latency_test(stable.latencies, candidate.latencies, analysis.max_latency_increase),
        error_rate_test(
            stable.errors,
            stable.requests,
            candidate.errors,
            candidate.requests,
            analysis.max_error_rate_increase,
        ),
        prediction_test(stable.predictions, candidate.predictions, analysis.max_prediction_drift),
    ]
    quality = ""
    if not labelled:
        pass
    elif min(stable.labelled, candidate.labelled) >= analysis.min_labelled:
        tests.append(
            accuracy_test(
                stable.labelled,
                stable.correct,
                candidate.labelled,
                candidate.correct,
                analysis.max_accuracy_decrease,
            )
        )
    else:
        quality = (
            f"; quality not judged yet: {stable.labelled}/{candidate.labelled} labelled "
            f"predictions of {analysis.min_labelled} per arm"
        )
    rejected, thresholds = holm([t.p_value for t in tests], analysis.alpha)
    for test, flag, threshold in zip(tests, rejected, thresholds, strict=True):
        test.rejected, test.threshold = flag, threshold
    failed = [t for t in tests if t.rejected]
    if failed:
        reason = "; ".join(_why(t) for t in failed)
        return Verdict("abort", f"candidate worse: {reason}", s_sum, c_sum, tests)
    verb: Literal["advance", "promote"] = "promote" if last_step else "advance"
    return Verdict(
        verb,
        f"no test rejected at alpha {analysis.alpha} (Holm, {len(tests)} tests) after "
        f"{stable.requests}/{candidate.requests} requests{quality}",
        s_sum,
        c_sum,
        tests,
    )


def _why(test: TestResult) -> str:
    if test.name == "latency":
        return (
            f"latency p95 {test.effect:+.0%} (tolerance +{test.tolerance:.0%}, "
            f"Mann-Whitney p={test.p_value:.2g})"
        )
    if test.name == "error_rate":
        return (
            f"error rate {test.effect:+.2%} (tolerance +{test.tolerance:.2%}, z={test.statistic:.2f}, "
            f"p={test.p_value:.2g})"
        )
    if test.name == "accuracy":
        return (
            f"accuracy {test.effect:+.2%} (tolerance -{test.tolerance:.2%}, z={test.statistic:.2f}, "
            f"p={test.p_value:.2g})"
        )
    return f"predictions shifted (KS {test.statistic:.3f} > {test.tolerance}, p={test.p_value:.2g})"


def arm_samples(records: Iterable[dict[str, Any]], since: datetime | None = None) -> dict[str, ArmSample]:
    """Split request records by arm (``stable`` when absent), keeping those at or after
    ``since``. A status >= 500 is an error; 4xx (the caller's fault) are left out."""
    out = {arm: ArmSample() for arm in ARMS}
    start = since.timestamp() if since is not None else None
    for record in records:
        if start is not None:
            ts = _epoch(record.get("ts"))
            if ts is None or ts < start:
                continue
        arm = out.get(str(record.get("arm") or "stable"))
        if arm is None:
            continue
        status = _int(record.get("status"))
        if 400 <= status < 500:
            continue
        latency = _float(record.get("latency_ms"))
        if latency is None:
            continue
        arm.latencies.append(latency)
        version = record.get("version")
        if isinstance(version, int):
            arm.versions.add(version)
        if status >= 500 or status == 0:
            arm.errors += 1
            continue
        ts = _epoch(record.get("ts"))
        for item in record.get("predictions") or ():
            if not isinstance(item, dict):
                continue
            entity = item.get("entity")
            if isinstance(entity, dict) and entity and ts is not None and item.get("prediction") is not None:
                arm.scored.append((entity, ts, str(item["prediction"])))
            value = item.get("probability")
            if value is None:
                value = item.get("prediction")
            number = _float(value)
            if number is not None:
                arm.predictions.append(number)
    return out


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)
