"""The rollout analysis on known distributions: known verdicts, minimum samples, Holm."""

from __future__ import annotations

import random

import pytest

from mlctl.monitor.rollout_analysis import ArmSample, Label, analyze, arm_samples, holm, join_labels
from mlctl.spec.models import Endpoint, RolloutAnalysis

ANALYSIS = RolloutAnalysis(
    min_samples=200, max_latency_increase=0.2, max_error_rate_increase=0.01, alpha=0.05
)


def arm(
    n: int, *, latency: float = 5.0, spread: float = 1.0, errors: int = 0, p: float = 0.3, seed: int = 0
) -> ArmSample:
    rng = random.Random(seed)
    return ArmSample(
        latencies=[max(0.01, rng.gauss(latency, spread)) for _ in range(n)],
        errors=errors,
        predictions=[min(1.0, max(0.0, rng.gauss(p, 0.1))) for _ in range(n - errors)],
    )


def test_holm_step_down() -> None:
    rejected, thresholds = holm([0.01, 0.04, 0.03], 0.05)
    # sorted: 0.01 <= 0.05/3 rejected; 0.03 <= 0.05/2? no -> stop: 0.04 not rejected either
    assert rejected == [True, False, False]
    assert thresholds == pytest.approx([0.05 / 3, 0.05, 0.05 / 2])
    assert holm([0.001, 0.02, 0.04], 0.05)[0] == [True, True, True]
    assert holm([0.2, 0.3], 0.05)[0] == [False, False]


def test_holm_is_stricter_than_uncorrected() -> None:
    # 0.03 passes alone at 0.05, but not as the smallest of three
    assert holm([0.03, 0.5, 0.6], 0.05)[0] == [False, False, False]


def test_minimum_samples_before_any_verdict() -> None:
    slow = arm(199, latency=50.0, seed=2)  # far worse, but too few requests
    verdict = analyze(arm(500, seed=1), slow, ANALYSIS, last_step=False)
    assert verdict.action == "wait" and "200 requests per arm" in verdict.reason
    assert not verdict.tests


def test_same_distribution_advances_and_promotes_at_the_last_step() -> None:
    stable, candidate = arm(400, seed=1), arm(400, seed=2)
    assert analyze(stable, candidate, ANALYSIS, last_step=False).action == "advance"
    verdict = analyze(stable, candidate, ANALYSIS, last_step=True)
    assert verdict.action == "promote"
    assert set(verdict.statistics()["tests"]) == {"latency", "error_rate", "prediction_distribution"}


def test_slower_candidate_is_aborted_on_latency() -> None:
    verdict = analyze(arm(300, seed=1), arm(300, latency=10.0, seed=2), ANALYSIS, last_step=False)
    assert verdict.action == "abort" and "latency" in verdict.reason
    tests = verdict.statistics()["tests"]
    assert tests["latency"]["rejected"] and tests["latency"]["effect"] > 0.5


def test_slightly_slower_within_tolerance_is_not_aborted() -> None:
    verdict = analyze(arm(400, seed=1), arm(400, latency=5.25, seed=2), ANALYSIS, last_step=False)
    assert verdict.action == "advance"


def test_more_errors_is_aborted_on_error_rate() -> None:
    verdict = analyze(arm(400, errors=1, seed=1), arm(400, errors=40, seed=2), ANALYSIS, last_step=False)
    assert verdict.action == "abort" and "error rate" in verdict.reason
    assert verdict.statistics()["tests"]["error_rate"]["rejected"]


def test_error_rate_within_the_margin_is_not_aborted() -> None:
    verdict = analyze(arm(1000, errors=2, seed=1), arm(1000, errors=5, seed=2), ANALYSIS, last_step=False)
    assert verdict.action == "advance"


def test_shifted_predictions_are_aborted() -> None:
    verdict = analyze(arm(400, p=0.2, seed=1), arm(400, p=0.6, seed=2), ANALYSIS, last_step=False)
    assert verdict.action == "abort" and "predictions shifted" in verdict.reason


def test_false_aborts_stay_rare_on_equal_arms() -> None:
    aborted = sum(
        analyze(arm(200, seed=2 * i), arm(200, seed=2 * i + 1), ANALYSIS, last_step=False).action == "abort"
        for i in range(40)
    )
    assert aborted <= 6  # alpha 0.05 family-wise, tolerances on top: expected ~0


def test_arm_samples_split_by_arm_and_time() -> None:
    records = [
        {
            "ts": 10.0,
            "arm": "candidate",
            "status": 200,
            "latency_ms": 3.0,
            "version": 2,
            "predictions": [{"prediction": "Yes", "probability": 0.7}],
        },
        {"ts": 11.0, "status": 200, "latency_ms": 2.0, "version": 1, "predictions": [{"probability": 0.2}]},
        {"ts": 12.0, "arm": "candidate", "status": 500, "latency_ms": 9.0, "version": 2},
        {
            "ts": 12.0,
            "arm": "candidate",
            "status": 422,
            "latency_ms": 1.0,
            "version": 2,
        },  # the caller's fault
        {"ts": 1.0, "arm": "candidate", "status": 200, "latency_ms": 1.0},  # before the step
        {"ts": "2026-01-01T00:00:00+00:00", "arm": "shadow", "status": 200, "latency_ms": 1.0},
    ]
    from datetime import UTC, datetime

    arms = arm_samples(records, since=datetime.fromtimestamp(5, UTC))
    assert arms["candidate"].latencies == [3.0, 9.0] and arms["candidate"].errors == 1
    assert arms["candidate"].predictions == [0.7] and arms["candidate"].versions == {2}
    assert arms["stable"].latencies == [2.0]
    assert arms["shadow"].requests == 1


@pytest.mark.parametrize(
    "rollout, message",
    [
        ({"steps": [5, 5]}, "strictly increasing"),
        ({"steps": [0, 50]}, "greater than 0"),
        ({"steps": [50, 101]}, "less than or equal to 100"),
        ({"steps": []}, "at least one"),
        ({"candidate": "production"}, "another stage"),
        ({"strategy": "blue-green"}, "canary"),
    ],
)
def test_rollout_schema_refuses(rollout: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        Endpoint(model="m", rollout=rollout)


def test_rollout_schema_defaults() -> None:
    endpoint = Endpoint(model="m", rollout={"strategy": "canary"})
    assert endpoint.rollout is not None and endpoint.rollout.steps == [5, 25, 50, 100]
    assert endpoint.rollout.candidate == "staging" and endpoint.rollout.analysis.min_samples == 200


# -- quality once delayed labels arrive ------------------------------------------------------


def labelled_arm(n: int, accuracy: float, *, offset: int, seed: int) -> tuple[ArmSample, list[Label]]:
    """``n`` keyed predictions at t=100+i, of which a share ``accuracy`` the label (at t=1000)
    confirms; the arm's latencies and predictions are the same as a healthy arm's."""
    rng = random.Random(seed)
    sample = arm(n, seed=seed)
    labels = []
    for i in range(n):
        customer = f"C{offset + i:06d}"
        predicted = "Yes" if i % 3 == 0 else "No"
        sample.scored.append(({"customer_id": customer}, 100.0 + i, predicted))
        right = rng.random() < accuracy
        labels.append(
            Label((customer,), 1000.0, predicted if right else ("No" if predicted == "Yes" else "Yes"))
        )
    return sample, labels


def test_labels_join_each_arms_latest_prediction_before_the_label() -> None:
    stable, candidate = ArmSample(), ArmSample()
    stable.scored += [({"customer_id": "A"}, 1.0, "Yes"), ({"customer_id": "A"}, 5.0, "No")]
    candidate.scored += [({"customer_id": "A"}, 3.0, "Yes"), ({"customer_id": "B"}, 9.0, "Yes")]
    labels = [Label(("A",), 4.0, "Yes"), Label(("B",), 4.0, "Yes"), Label(("A",), None, "No")]
    join_labels({"stable": stable, "candidate": candidate}, labels, ["customer_id"])
    # A@4: stable's prediction at 1 (Yes, right), candidate's at 3 (Yes, right); B@4: candidate
    # predicted at 9, after the label: not joined; A without a time: the latest of each arm --
    # stable's at 5 (No, right), and candidate's at 3 again, which counts once: the last label
    # reaching it (No) judges it, wrong
    assert (stable.labelled, stable.correct) == (2, 2)
    assert (candidate.labelled, candidate.correct) == (1, 0)


def test_a_less_accurate_candidate_is_aborted_on_quality() -> None:
    stable, s_labels = labelled_arm(600, 0.85, offset=0, seed=1)
    candidate, c_labels = labelled_arm(600, 0.65, offset=10_000, seed=2)
    arms = {"stable": stable, "candidate": candidate}
    join_labels(arms, s_labels + c_labels, ["customer_id"])
    assert stable.labelled == candidate.labelled == 600
    verdict = analyze(stable, candidate, ANALYSIS, last_step=False, labelled=True)
    assert verdict.action == "abort" and "accuracy" in verdict.reason, verdict.reason
    tests = verdict.statistics()["tests"]
    assert set(tests) == {"latency", "error_rate", "prediction_distribution", "accuracy"}
    assert tests["accuracy"]["rejected"] and tests["accuracy"]["effect"] < -0.1
    assert tests["accuracy"]["holm_alpha"] is not None
    assert verdict.statistics()["candidate"]["accuracy"] < verdict.statistics()["stable"]["accuracy"]


def test_an_as_accurate_candidate_advances_and_quality_is_one_of_the_corrected_tests() -> None:
    stable, s_labels = labelled_arm(600, 0.82, offset=0, seed=3)
    candidate, c_labels = labelled_arm(600, 0.82, offset=10_000, seed=4)
    join_labels({"stable": stable, "candidate": candidate}, s_labels + c_labels, ["customer_id"])
    verdict = analyze(stable, candidate, ANALYSIS, last_step=False, labelled=True)
    assert verdict.action == "advance" and "Holm, 4 tests" in verdict.reason, verdict.reason


def test_quality_waits_for_its_minimum_of_labels_without_holding_the_rollout() -> None:
    stable, s_labels = labelled_arm(400, 0.85, offset=0, seed=5)
    candidate, c_labels = labelled_arm(400, 0.30, offset=10_000, seed=6)  # far worse, too few labels
    join_labels({"stable": stable, "candidate": candidate}, s_labels + c_labels[:50], ["customer_id"])
    verdict = analyze(stable, candidate, ANALYSIS, last_step=False, labelled=True)
    assert verdict.action == "advance"
    assert "quality not judged yet: 400/50 labelled predictions of 100 per arm" in verdict.reason
    assert "accuracy" not in verdict.statistics()["tests"]
    # without a labels source the reason does not speak of quality at all
    assert "quality" not in analyze(stable, candidate, ANALYSIS, last_step=False).reason
