"""Drift statistics: known values, severities on synthetic shifts, soundness (false-positive
rate over 20 seeds at n = 5,000 per side), multiple-testing corrections, tiny samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mlctl.monitor import stats
from mlctl.monitor.drift import judge_features

N = 5000
NUMERIC_TESTS = [("ks", 0.15), ("psi", 0.15), ("wasserstein", 0.15), ("jensenshannon", 0.15), ("chi2", 0.15)]


def frames(
    seed: int, n: int = N, shifts: dict[str, float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten features of different shapes; ``shifts`` moves chosen ones by that many std."""
    rng = np.random.default_rng(seed)
    shapes = {
        "normal": lambda size: rng.normal(10, 2, size),
        "lognormal": lambda size: rng.lognormal(3, 0.7, size),
        "exponential": lambda size: rng.exponential(4, size),
        "uniform": lambda size: rng.uniform(0, 100, size),
        "poisson": lambda size: rng.poisson(3, size).astype(float),
        "counts": lambda size: rng.poisson(25, size).astype(float),
        "bimodal": lambda size: np.where(
            rng.random(size) < 0.3, rng.normal(0, 1, size), rng.normal(6, 1, size)
        ),
        "student": lambda size: rng.standard_t(4, size),
        "gamma": lambda size: rng.gamma(2, 2, size),
        "beta": lambda size: rng.beta(2, 5, size),
    }
    ref = pd.DataFrame({name: make(n) for name, make in shapes.items()})
    cur = pd.DataFrame({name: make(n) for name, make in shapes.items()})
    for name, shift in (shifts or {}).items():
        cur[name] = cur[name] + shift * ref[name].std()
    return ref, cur


NUMERIC = dict.fromkeys(frames(0, 10)[0].columns, False)


@pytest.mark.parametrize(("test", "threshold"), NUMERIC_TESTS)
def test_false_positive_rate_under_5_percent_over_20_seeds(test: str, threshold: float) -> None:
    flagged = judged = any_significant = 0
    for seed in range(20):
        ref, cur = frames(seed)
        findings = judge_features(ref, cur, NUMERIC, test, threshold, 100)
        judged += len(findings)
        flagged += sum(f.breach for f in findings)
        any_significant += any((f.p_adjusted or 1) < 0.05 for f in findings)
    assert judged == 200
    assert flagged / judged < 0.05
    # the corrected p-values hold the family-wise error rate too (Holm): at most 2 of 20 runs
    assert any_significant <= 2


@pytest.mark.parametrize(
    ("shift", "severity", "breach"),
    [(1.0, "high", True), (0.45, "medium", True), (0.1, "low", False)],
)
def test_ks_shift_flagged_with_the_right_severity(shift: float, severity: str, breach: bool) -> None:
    ref, cur = frames(1, shifts={"normal": shift})
    findings = {f.name: f for f in judge_features(ref, cur, NUMERIC, "ks", 0.15, 100)}
    assert findings["normal"].severity == severity
    assert findings["normal"].breach is breach
    assert not any(f.breach for name, f in findings.items() if name != "normal")


@pytest.mark.parametrize("test", ["ks", "psi", "wasserstein", "jensenshannon", "chi2"])
def test_every_test_flags_exactly_the_shifted_features(test: str) -> None:
    shifted = {"lognormal": 1.0, "uniform": 0.8, "counts": 1.0}
    ref, cur = frames(2, shifts=shifted)
    findings = judge_features(ref, cur, NUMERIC, test, 0.1, 100)
    assert sorted(f.name for f in findings if f.breach) == sorted(shifted)
    assert all(f.p_adjusted is not None and f.p_adjusted >= (f.p_value or 0) for f in findings)


def test_tiny_samples_are_refused_even_when_shifted() -> None:
    ref, cur = frames(3, n=5000)
    cur = cur.head(50) + 100.0
    findings = judge_features(ref, cur, NUMERIC, "ks", 0.15, 100)
    assert all(f.statistic is None and not f.breach for f in findings)
    assert findings[0].note == "not judged: 50 values < min_samples 100"


def test_small_samples_need_significance_not_only_a_large_statistic() -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    noisy_hits = large_statistic = 0
    for seed in range(100):
        cur = pd.DataFrame({"x": np.random.default_rng(100 + seed).normal(size=12)})
        (finding,) = judge_features(ref, cur, {"x": False}, "ks", 0.15, 10)
        noisy_hits += finding.breach
        large_statistic += (finding.statistic or 0) > 0.15
    # KS of 12 unshifted values usually exceeds 0.15 by chance; the p-value keeps it at ~5%
    assert large_statistic >= 60
    assert noisy_hits <= 10


def test_categorical_features_use_cramers_v() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"plan": rng.choice(["gold", "silver", "bronze"], 5000, p=[0.2, 0.3, 0.5])})
    same = pd.DataFrame({"plan": rng.choice(["gold", "silver", "bronze"], 5000, p=[0.2, 0.3, 0.5])})
    moved = pd.DataFrame({"plan": rng.choice(["gold", "silver", "bronze"], 5000, p=[0.5, 0.3, 0.2])})
    (quiet,) = judge_features(ref, same, {"plan": True}, "ks", 0.15, 100)
    (loud,) = judge_features(ref, moved, {"plan": True}, "ks", 0.15, 100)
    assert quiet.test == loud.test == "chi2"
    assert not quiet.breach and quiet.statistic < 0.05
    assert loud.breach and loud.severity == "high"


def test_known_values() -> None:
    ref = np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert stats.ks(ref, ref + 5).statistic == pytest.approx(0.5)
    assert stats.wasserstein(ref, ref + 3).statistic == pytest.approx(3 / np.std(ref, ddof=1))
    assert stats.psi(ref, ref).statistic == pytest.approx(0.0)
    assert stats.jensenshannon(ref, ref).statistic == pytest.approx(0.0, abs=1e-9)
    # PSI by hand: two equal halves vs a 90/10 split
    big = np.repeat([0.0, 1.0], 5000)
    moved = np.concatenate([np.zeros(9000), np.ones(1000)])
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert stats.psi(big, moved).statistic == pytest.approx(expected, rel=1e-6)
    # Cramér's V of a 2x2 table with complete separation is 1
    assert stats.chi2_categorical(["a"] * 100, ["b"] * 100).statistic == pytest.approx(1.0)


def test_severity_scale() -> None:
    assert [stats.severity(v) for v in (0.05, 0.1, 0.11, 0.2, 0.21)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
    ]


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert stats.adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.adjust_pvalues(p, "bh") == pytest.approx(list(scipy_stats.false_discovery_control(p)))
    assert stats.adjust_pvalues([], "holm") == []


def test_nan_values_are_ignored() -> None:
    ref = np.array([1.0, 2, 3, np.nan, 4])
    assert stats.ks(ref, ref).statistic == 0.0
