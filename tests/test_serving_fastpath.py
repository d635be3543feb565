"""The compiled fast path gives exactly the pipeline's predictions (many rows, all column kinds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlctl.ml.train import build_pipeline
from mlctl.serving.fastpath import PipelinePredictor, compile_pipeline, same_predictions
from mlctl.serving.follower import choose_predictor

TYPES = {"n_int": "int", "n_float": "float", "flag": "bool", "plan": "string", "seen": "datetime"}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "n_int": rng.integers(0, 50, n).astype(object),
            "n_float": rng.normal(100, 30, n),
            "flag": rng.random(n) > 0.5,
            "plan": rng.choice(["basic", "pro", "team"], n).astype(object),
            "seen": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        }
    ).astype({"flag": object, "seen": object})
    for column in frame.columns:  # holes everywhere, imputed by the pipeline
        frame.loc[rng.random(n) < 0.05, column] = None
    return frame


def _rows(frame: pd.DataFrame) -> list[list]:
    return [
        [None if (v is None or v != v) else v for v in row]
        for row in frame.itertuples(index=False, name=None)
    ]


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 30, "max_depth": 9, "random_state": 0}),
        ("sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 20, "random_state": 0}),
        ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 6, "random_state": 0}),
        ("sklearn.ensemble.RandomForestRegressor", {"n_estimators": 15, "random_state": 0}),
        ("sklearn.linear_model.LogisticRegression", {"max_iter": 500}),
    ],
)
def test_fast_path_is_identical_to_the_pipeline(estimator: str, params: dict) -> None:
    from mlctl.spec.estimators import ALLOWED_ESTIMATORS

    assert estimator in ALLOWED_ESTIMATORS, f"{estimator} left the allow-list: update this test"
    train = _frame(3000, 1)
    target = (train["n_float"].fillna(100) + 3 * train["n_int"].fillna(10).astype(float) > 140).astype(int)
    if "Regressor" in estimator:
        target = train["n_float"].fillna(0) * 2.0
    pipeline = build_pipeline(estimator, params, train, TYPES)
    pipeline.fit(train, target)
    features = list(train.columns)
    fast = compile_pipeline(pipeline, features)
    slow = PipelinePredictor(pipeline, features)
    test = _frame(2000, 2)
    test.loc[0, "plan"] = "unknown-plan"  # unseen category: all zeros, like the encoder
    rows = _rows(test)
    assert same_predictions(fast.predict(rows), slow.predict(rows)) is None
    for row in rows[:50]:  # single rows take the same path as the request handler
        assert same_predictions(fast.predict([row]), slow.predict([row])) is None


def test_a_mismatch_disables_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlctl.serving import fastpath

    train = _frame(500, 3)
    target = (train["n_float"].fillna(100) > 100).astype(int)
    pipeline = build_pipeline(
        "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5, "random_state": 0}, train, TYPES
    )
    pipeline.fit(train, target)
    features = list(train.columns)
    rows = _rows(_frame(100, 4))
    predictor, note = choose_predictor(pipeline, features, rows)
    assert predictor.kind == "compiled-forest" and note is None
    exact = fastpath.FastPredictor.predict

    def off_by_a_bit(self, rows):  # type: ignore[no-untyped-def]
        out = exact(self, rows)
        out.proba = np.nextafter(out.proba, 2.0)  # one ulp: still "close", not identical
        return out

    monkeypatch.setattr(fastpath.FastPredictor, "predict", off_by_a_bit)
    predictor, note = choose_predictor(pipeline, features, rows)
    assert predictor.kind == "pipeline" and note is not None and "probabilities differ" in note
