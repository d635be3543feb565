"""The compiled form gives exactly the pipeline's predictions (many rows, all column kinds), in
memory and saved as a numpy-only artifact."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from mlctl.ml.compiled import (
    CompileError,
    PipelinePredictor,
    compile_pipeline,
    same_predictions,
)
from mlctl.ml.compiled_artifact import load_compiled, save_compiled
from mlctl.ml.train import build_pipeline, model_frame
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
    pipeline.fit(model_frame(train, TYPES), target)
    features = list(train.columns)
    fast = compile_pipeline(pipeline, features)
    slow = PipelinePredictor(pipeline, features)
    test = _frame(2000, 2)
    test.loc[0, "plan"] = "unknown-plan"  # unseen category: all zeros, like the encoder
    rows = _rows(test)
    expected = slow.predict(rows)
    assert same_predictions(fast.predict(rows), expected) is None
    for row in rows[:50]:  # single rows take the same path as the request handler
        assert same_predictions(fast.predict([row]), slow.predict([row])) is None
    if fast.kind == "compiled-preprocess":  # needs the estimator: never saved
        with pytest.raises(CompileError, match="needs its estimator"):
            save_compiled(fast)
        return
    loaded = load_compiled(save_compiled(fast, labels=["no", "yes"]))
    assert loaded.kind == fast.kind and loaded.features == features and loaded.model is None
    assert same_predictions(loaded.predict(rows), expected) is None
    for row in rows[:50]:
        assert same_predictions(loaded.predict([row]), slow.predict([row])) is None


def test_a_mismatch_disables_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlctl.ml import compiled

    train = _frame(500, 3)
    target = (train["n_float"].fillna(100) > 100).astype(int)
    pipeline = build_pipeline(
        "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5, "random_state": 0}, train, TYPES
    )
    pipeline.fit(model_frame(train, TYPES), target)
    features = list(train.columns)
    rows = _rows(_frame(100, 4))
    predictor, note = choose_predictor(pipeline, features, rows)
    assert predictor.kind == "compiled-forest" and note is None
    exact = compiled.FastPredictor.predict

    def off_by_a_bit(self, rows):  # type: ignore[no-untyped-def]
        out = exact(self, rows)
        out.proba = np.nextafter(out.proba, 2.0)  # one ulp: still "close", not identical
        return out

    monkeypatch.setattr(compiled.FastPredictor, "predict", off_by_a_bit)
    predictor, note = choose_predictor(pipeline, features, rows)
    assert predictor.kind == "pipeline" and note is not None and "probabilities differ" in note


def _pre_issue_13_pipeline(estimator: Any) -> Any:
    """The shape build_pipeline had before issue 13: casts (mlctl functions) inside the pickle."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    from mlctl.ml import train as T

    def step(func: Any, strategy: str) -> Pipeline:
        cast = FunctionTransformer(func, feature_names_out="one-to-one")
        return Pipeline(
            [("cast", cast), ("impute", SimpleImputer(strategy=strategy, keep_empty_features=True))]
        )

    categorical = Pipeline(
        [
            ("cast", FunctionTransformer(T.to_text_frame, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", step(T.to_numeric_frame, "median"), ["n_int", "n_float"]),
            ("bool", step(T.to_bool_frame, "most_frequent"), ["flag"]),
            ("datetime", step(T.to_epoch_frame, "median"), ["seen"]),
            ("categorical", categorical, ["plan"]),
        ],
        remainder="drop",
        sparse_threshold=0.0,
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def test_pipelines_trained_before_issue_13_still_compile_and_serve() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from mlctl.ml.train import needs_raw_frame

    train = _frame(800, 5)
    target = (train["n_float"].fillna(100) > 100).astype(int)
    old = _pre_issue_13_pipeline(RandomForestClassifier(n_estimators=8, random_state=0)).fit(train, target)
    assert needs_raw_frame(old)
    features = list(train.columns)
    rows = _rows(_frame(300, 6))
    predictor, note = choose_predictor(old, features, rows)
    assert predictor.kind == "compiled-forest" and note is None
    slow = PipelinePredictor(old, features)
    assert slow.kinds is None  # raw values: the old pipeline casts them itself
    assert same_predictions(predictor.predict(rows), slow.predict(rows)) is None


def test_the_pickle_imports_only_scikit_learn_numpy_scipy_pandas() -> None:
    import io
    import pickle

    class Recorder(pickle.Unpickler):
        modules: ClassVar[set[str]] = set()

        def find_class(self, module: str, name: str) -> Any:
            Recorder.modules.add(module.split(".")[0])
            return super().find_class(module, name)

    train = _frame(400, 7)
    target = (train["n_float"].fillna(100) > 100).astype(int)
    for estimator in ("sklearn.ensemble.RandomForestClassifier", "sklearn.linear_model.LogisticRegression"):
        pipeline = build_pipeline(estimator, {}, train, TYPES).fit(model_frame(train, TYPES), target)
        Recorder(io.BytesIO(pickle.dumps(pipeline))).load()
        modules = Recorder.modules
        allowed = {"sklearn", "numpy", "scipy", "pandas", "builtins", "copyreg", "_codecs"}
        assert modules and modules <= allowed, modules


def test_the_compiled_artifact_is_plain_arrays_and_refuses_garbage() -> None:
    import io
    import json

    train = _frame(400, 8)
    target = (train["n_float"].fillna(100) > 100).astype(int)
    pipeline = build_pipeline(
        "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 4, "random_state": 0}, train, TYPES
    ).fit(model_frame(train, TYPES), target)
    data = save_compiled(compile_pipeline(pipeline, list(train.columns)), labels=[False, True])
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # no object array anywhere
        assert all(npz[name].dtype != object for name in npz.files)
        header = json.loads(npz["header"].tobytes())
    assert header["format_version"] == 1 and header["kind"] == "compiled-forest"
    assert header["labels"] == [False, True] and header["features"] == list(train.columns)
    with pytest.raises(ValueError, match="not a compiled model"):
        load_compiled(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="not a compiled model"):
        load_compiled(data[: len(data) // 2])


def test_the_numpy_only_helpers_follow_mlctl_ml() -> None:
    from mlctl.ml import compiled
    from mlctl.ml import train as T

    values = [
        None,
        np.nan,
        np.float64("nan"),
        pd.NA,
        pd.NaT,
        3.0,
        np.float32(2.0),
        7,
        "x",
        True,
        "yes",
        " N ",
    ]
    for v in values:
        assert compiled._is_missing(v) == T.is_missing(v), v
        if not T.is_missing(v):
            assert compiled._category_text(v) == T.category_text(v), v
    raw = np.array([["2024-01-02T03:04:05Z"], [None], ["junk"]], dtype=object)
    assert np.array_equal(compiled._epoch_frame(raw), T.to_epoch_frame(raw), equal_nan=True)
