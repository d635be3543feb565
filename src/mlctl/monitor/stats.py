"""Drift statistics: one effect size and one p-value per feature, and p-value corrections.

Contract: pure functions of arrays (NaN values are dropped first). Every test returns a
:class:`TestResult` whose ``statistic`` is an *effect size* on a scale where 0 means "the
same distribution" and whose ``p_value`` comes from a hypothesis test of "same distribution":

========== ============================================== ==============================
test        statistic (decides, against the threshold)    p-value
========== ============================================== ==============================
ks          Kolmogorov-Smirnov D (0..1)                    two-sample KS test
psi         population stability index, 10 quantile bins   chi-square test on those bins
wasserstein Wasserstein distance / reference std ("normed") two-sample KS test
jensenshannon Jensen-Shannon distance, base 2 (0..1)        chi-square test on the bins
chi2        Cramér's V of the reference/current table (0..1) chi-square contingency test
========== ============================================== ==============================

A threshold on a raw chi-square statistic or on a p-value alone grows stricter with the
sample size (at 100k rows everything "drifts"); an effect size does not, which is why the
decision is made on the statistic and the p-value only guards against noise in small samples.
Categorical features are always compared with ``chi2`` whatever the monitor's test (the
others are defined for numbers only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

TestName = Literal["ks", "psi", "wasserstein", "jensenshannon", "chi2"]
NUMERIC_TESTS = ("ks", "psi", "wasserstein", "jensenshannon")
_EPS = 1e-4
_BINS = 10


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float
    p_value: float


def severity(statistic: float) -> str:
    """high above 0.2, medium above 0.1, else low (the seed's scale)."""
    if statistic > 0.2:
        return "high"
    if statistic > 0.1:
        return "medium"
    return "low"


def _clean(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    return values[np.isfinite(values)]


def ks(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov-Smirnov (asymptotic p-value above 10,000 rows per side)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(_clean(reference), _clean(current))
    return TestResult("ks", float(result.statistic), float(result.pvalue))


def _quantile_bins(
    reference: np.ndarray, current: np.ndarray, bins: int = _BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples in ``bins`` reference-quantile bins (ties merged), open-ended."""
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    return ref_counts.astype("float64"), cur_counts.astype("float64")


def _chi2_p(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square statistic and p-value of the 2 x k table (empty columns dropped)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    chi2, p, _dof, _expected = chi2_contingency(table, correction=False)
    return float(chi2), float(p)


def psi(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Population stability index over reference-quantile bins."""
    ref, cur = _clean(reference), _clean(current)
    ref_counts, cur_counts = _quantile_bins(ref, cur)
    p = np.clip(ref_counts / ref_counts.sum(), _EPS, None)
    q = np.clip(cur_counts / cur_counts.sum(), _EPS, None)
    value = float(np.sum((q - p) * np.log(q / p)))
    _chi2, p_value = _chi2_p(ref_counts, cur_counts)
    return TestResult("psi", value, p_value)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Wasserstein-1 distance divided by the reference standard deviation."""
    from scipy.stats import wasserstein_distance

    ref, cur = _clean(reference), _clean(current)
    scale = float(np.std(ref, ddof=1)) if ref.size > 1 else 0.0
    distance = float(wasserstein_distance(ref, cur))
    value = (0.0 if distance == 0.0 else math.inf) if scale <= 0.0 else distance / scale
    return TestResult("wasserstein", value, ks(ref, cur).p_value)


def jensenshannon(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Jensen-Shannon distance (base 2, so 0..1) over reference-quantile bins."""
    from scipy.spatial.distance import jensenshannon as js

    ref, cur = _clean(reference), _clean(current)
    ref_counts, cur_counts = _quantile_bins(ref, cur)
    value = float(js(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2))
    _chi2, p_value = _chi2_p(ref_counts, cur_counts)
    return TestResult("jensenshannon", 0.0 if math.isnan(value) else value, p_value)


def chi2_categorical(reference: list[str] | np.ndarray, current: list[str] | np.ndarray) -> TestResult:
    """Cramér's V and the chi-square p-value of category counts (reference vs current)."""
    ref = np.asarray(reference, dtype=object)
    cur = np.asarray(current, dtype=object)
    categories = sorted({*ref.tolist(), *cur.tolist()}, key=str)
    index = {c: i for i, c in enumerate(categories)}
    ref_counts = np.bincount([index[c] for c in ref.tolist()], minlength=len(categories)).astype("float64")
    cur_counts = np.bincount([index[c] for c in cur.tolist()], minlength=len(categories)).astype("float64")
    return _cramers(ref_counts, cur_counts)


def chi2_numeric(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Cramér's V on reference-quantile bins (``test: chi2`` on a numeric feature)."""
    ref, cur = _clean(reference), _clean(current)
    return _cramers(*_quantile_bins(ref, cur))


def _cramers(ref_counts: np.ndarray, cur_counts: np.ndarray) -> TestResult:
    chi2, p_value = _chi2_p(ref_counts, cur_counts)
    n = ref_counts.sum() + cur_counts.sum()
    value = math.sqrt(chi2 / n) if n > 0 else 0.0  # 2 x k table: min(r-1, k-1) = 1
    return TestResult("chi2", value, p_value)


def numeric_test(test: str, reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Run the named test on two numeric samples."""
    if test == "ks":
        return ks(reference, current)
    if test == "psi":
        return psi(reference, current)
    if test == "wasserstein":
        return wasserstein(reference, current)
    if test == "jensenshannon":
        return jensenshannon(reference, current)
    if test == "chi2":
        return chi2_numeric(reference, current)
    raise ValueError(f"unknown drift test {test!r}")


def adjust_pvalues(p_values: list[float], method: Literal["holm", "bh"] = "holm") -> list[float]:
    """Multiple-testing corrected p-values: Holm (family-wise) or Benjamini-Hochberg (FDR)."""
    if not p_values:
        return []
    p = np.clip(np.asarray(p_values, dtype="float64"), 0.0, 1.0)
    if method == "bh":
        from scipy.stats import false_discovery_control

        return [float(v) for v in false_discovery_control(p, method="bh")]
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]
