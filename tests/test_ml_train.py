"""Training pipeline, estimator allow-list, targets, metrics, profile and plots."""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from mlctl.errors import MlctlError
from mlctl.ml import train as train_module
from mlctl.ml.metrics import evaluate
from mlctl.ml.plots import confusion_matrix_png, feature_importance_png
from mlctl.ml.profile import reference_profile, reference_sample
from mlctl.ml.train import build_pipeline, load_estimator, prepare_target, train
from mlctl.spec.models import Training

TYPES = {"orders": "int", "aov": "float", "plan": "category", "premium": "bool", "city": "string"}
FEATURES = list(TYPES)
PNG = b"\x89PNG\r\n\x1a\n"


def churn_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "orders": rng.poisson(5, n).astype(float),
            "aov": rng.normal(50, 10, n),
            "plan": rng.choice(["gold", "silver", "bronze"], n).astype(object),
            "premium": rng.choice([True, False], n).astype(object),
            "city": rng.choice(["paris", "rome", "oslo"], n).astype(object),
        }
    )
    logit = 2.5 - 0.6 * df["orders"] + 1.5 * (df["plan"] == "gold")
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    df["churned"] = np.where(churned, "Yes", "No").astype(object)
    df.loc[rng.random(n) < 0.1, "aov"] = np.nan
    df.loc[rng.random(n) < 0.05, "plan"] = None
    df.loc[rng.random(n) < 0.05, "premium"] = None
    df.loc[rng.random(n) < 0.02, "churned"] = None
    return df


def training(estimator: str = "sklearn.ensemble.RandomForestClassifier", **params: object) -> Training:
    return Training.model_validate(
        {
            "labels": "labels",
            "target": "churned",
            "features": [f"v:{f}" for f in FEATURES],
            "estimator": estimator,
            "params": params or {"n_estimators": 30, "max_depth": 6},
        }
    )


@pytest.fixture(scope="module")
def trained() -> train_module.TrainResult:
    return train(churn_frame(), FEATURES, "churned", training(), TYPES)


def test_classifier_trains_and_predicts_raw_dicts(trained: train_module.TrainResult) -> None:
    assert trained.classes == ["No", "Yes"]
    assert trained.task == "classification"
    assert trained.stratified
    assert trained.n_missing_label > 0
    assert len(trained.X_train) + len(trained.X_test) == trained.n_rows
    rows = pd.DataFrame(
        [
            {"orders": 0, "aov": None, "plan": "gold", "premium": "yes", "city": "paris"},
            {"orders": "12", "aov": 40.0, "plan": "unseen", "premium": None, "city": None},
        ]
    )
    X = train_module.model_frame(rows, TYPES)  # raw values -> the typed frame the model takes
    assert X["premium"].iloc[0] == 1.0 and np.isnan(X["premium"].iloc[1])
    assert X["orders"].tolist() == [0.0, 12.0] and X["city"].iloc[1] != X["city"].iloc[1]
    proba = trained.pipeline.predict_proba(X)
    assert proba.shape == (2, 2)
    assert proba[0, 1] > proba[1, 1]  # few orders + gold churns more
    restored = pickle.loads(pickle.dumps(trained.pipeline))
    assert np.allclose(restored.predict_proba(X), proba)


def test_pipeline_artifact_round_trips_with_joblib(trained: train_module.TrainResult, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(trained.pipeline, path)
    again = joblib.load(path)
    assert (again.predict(trained.X_test) == trained.pipeline.predict(trained.X_test)).all()


def test_metrics_present_and_sane(trained: train_module.TrainResult) -> None:
    metrics = evaluate(trained, latency_samples=20)
    for key in ("accuracy", "precision", "recall", "f1", "auc", "log_loss"):
        assert key in metrics
    assert 0.6 < metrics["auc"] <= 1.0
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["log_loss"] > 0
    assert 0 < metrics["latency_p50_ms"] <= metrics["latency_p95_ms"]
    assert metrics["n_train"] + metrics["n_test"] == trained.n_rows
    assert all(isinstance(v, float) for v in metrics.values())


def test_multiclass_and_logistic_regression() -> None:
    df = churn_frame(800)
    df["tier"] = df["plan"].fillna("none")
    spec = training("sklearn.linear_model.LogisticRegression", max_iter=300)
    result = train(df, ["orders", "aov", "premium", "city"], "tier", spec, TYPES)
    assert result.classes == ["bronze", "gold", "none", "silver"]
    metrics = evaluate(result, latency_samples=5)
    assert {"accuracy", "f1", "auc", "log_loss"} <= set(metrics)


def test_regression_trains() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=600), "plan": rng.choice(["a", "b"], 600)})
    df["y"] = 3 * df["x"] + (df["plan"] == "a") * 2 + rng.normal(scale=0.1, size=600)
    spec = Training.model_validate(
        {
            "labels": "l",
            "target": "y",
            "features": ["v:x", "v:plan"],
            "estimator": "sklearn.linear_model.Ridge",
            "params": {"alpha": 0.1},
        }
    )
    result = train(df, ["x", "plan"], "y", spec, {"x": "float", "plan": "string"})
    assert result.task == "regression" and result.classes == []
    metrics = evaluate(result, latency_samples=5)
    assert metrics["r2"] > 0.95
    assert metrics["rmse"] < 0.5 and metrics["mae"] < 0.5
    assert "auc" not in metrics


@pytest.mark.parametrize(
    "name",
    ["os.system", "sklearn.ensemble.RandomForestClassifier.__init__", "subprocess.Popen"],
)
def test_unsafe_estimators_are_never_imported(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []
    monkeypatch.setattr(importlib, "import_module", lambda mod, *a: imported.append(mod))
    with pytest.raises(MlctlError, match="allow-list"):
        load_estimator(name)
    with pytest.raises(MlctlError, match="allow-list"):
        build_pipeline(name, {}, pd.DataFrame({"x": [1.0]}), {"x": "float"})
    assert imported == []


def test_allowed_estimator_loads() -> None:
    from sklearn.tree import DecisionTreeClassifier

    assert load_estimator("sklearn.tree.DecisionTreeClassifier") is DecisionTreeClassifier


def test_unknown_param_is_named() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(MlctlError, match=r"'max_dept'.*did you mean 'max_depth'"):
        build_pipeline("sklearn.ensemble.RandomForestClassifier", {"max_dept": 3}, X, {})


def test_invalid_param_value_is_named() -> None:
    df = churn_frame(200)
    with pytest.raises(MlctlError, match="max_depth"):
        train(df, FEATURES, "churned", training(max_depth=-3), TYPES)


@pytest.mark.parametrize(
    ("values", "classes", "codes"),
    [
        ([True, False, True], [False, True], [1, 0, 1]),
        ([0, 1, 1], [0, 1], [0, 1, 1]),
        (["Yes", "No", "No"], ["No", "Yes"], [1, 0, 0]),
        (["yes", "no", "yes"], ["no", "yes"], [1, 0, 1]),
        (["true", "false", "false"], ["false", "true"], [1, 0, 0]),
        (["Y", "N", "Y"], ["N", "Y"], [1, 0, 1]),
        (["cat", "ant", "bee", "ant"], ["ant", "bee", "cat"], [2, 0, 1, 0]),
        ([1.0, 0.0, 1.0], [0.0, 1.0], [1, 0, 1]),
    ],
)
def test_prepare_target_positive_class_last(values: list, classes: list, codes: list) -> None:
    y, found = prepare_target(pd.Series(values, name="t"), "classification")
    assert found == classes
    assert y.tolist() == codes


def test_prepare_target_regression_and_errors() -> None:
    y, classes = prepare_target(pd.Series([1, 2.5]), "regression")
    assert y.dtype == np.float64 and classes == []
    with pytest.raises(MlctlError, match="not numeric"):
        prepare_target(pd.Series(["a", "b"], name="t"), "regression")
    with pytest.raises(MlctlError, match="single class"):
        prepare_target(pd.Series(["a", "a"], name="t"), "classification")


def test_profile_and_sample(trained: train_module.TrainResult) -> None:
    import json

    assert trained.raw_train is not None
    profile = reference_profile(trained.raw_train, TYPES)
    json.dumps(profile, allow_nan=False)
    aov = profile["features"]["aov"]
    assert aov["kind"] == "numeric" and 0 < aov["null_ratio"] < 0.2
    assert len(aov["histogram"]["counts"]) == 20 and len(aov["histogram"]["edges"]) == 21
    assert aov["quantiles"]["p1"] <= aov["quantiles"]["p50"] <= aov["quantiles"]["p99"]
    plan = profile["features"]["plan"]
    assert plan["kind"] == "categorical"
    assert set(plan["top"]) == {"gold", "silver", "bronze"}
    assert abs(sum(plan["top"].values()) - 1.0) < 1e-9
    sample = reference_sample(trained.X_train, n=100, seed=3)
    assert len(sample) == 100
    assert sample.equals(reference_sample(trained.X_train, n=100, seed=3))
    assert len(reference_sample(trained.X_train.head(10), n=100)) == 10


def test_plots_write_png(trained: train_module.TrainResult, tmp_path: Path) -> None:
    path = feature_importance_png(trained.pipeline, FEATURES, tmp_path / "a" / "importance.png")
    assert path.read_bytes()[:8] == PNG
    pred = trained.pipeline.predict(trained.X_test)
    cm = confusion_matrix_png(trained.y_test, pred, trained.classes, tmp_path / "cm.png")
    assert cm.read_bytes()[:8] == PNG
    assert "matplotlib.pyplot" not in sys.modules


def test_importance_fallback_uses_permutation(tmp_path: Path) -> None:
    df = churn_frame(300)
    spec = training("sklearn.neighbors.KNeighborsClassifier", n_neighbors=5)
    result = train(df, FEATURES, "churned", spec, TYPES)
    from mlctl.ml.plots import feature_importances

    scores = feature_importances(result.pipeline, FEATURES, result.X_test, result.y_test)
    assert set(scores) == set(FEATURES)
    path = feature_importance_png(
        result.pipeline, FEATURES, tmp_path / "knn.png", result.X_test, result.y_test
    )
    assert path.read_bytes()[:8] == PNG
