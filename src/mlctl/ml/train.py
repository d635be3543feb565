"""Training: allow-listed estimators inside a preprocessing pipeline.

Contract:

* :func:`load_estimator` imports a class only if its exact dotted name is a key of
  :data:`mlctl.spec.estimators.ALLOWED_ESTIMATORS`; any other name is an :class:`MlctlError`
  raised before anything is imported.
* The artifact is the whole :class:`sklearn.pipeline.Pipeline` built by
  :func:`build_pipeline`, made of scikit-learn's own transformers only (its pickle imports
  scikit-learn and numpy, never mlctl, so MLflow loads it without mlctl). It takes the typed
  frame :func:`model_frame` makes of raw feature values (float64 numbers, bools as 0/1,
  datetimes as epoch seconds, categories as strings; the columns are the feature names).
  Numeric and datetime features are imputed with the median (and standardized for linear and
  nearest-neighbour estimators), bool features with the median of their 0/1 values,
  string/category features with the most frequent value and one-hot encoded (unknown
  categories at serving time are ignored). Pipelines trained before this contract hold their
  casts inside (:func:`needs_raw_frame`) and take raw values.
* Classifiers are fitted on class *indices* 0..k-1; :func:`prepare_target` returns the class
  labels in index order, with the positive class (True/yes/1) last for boolean-like targets,
  so ``predict_proba(X)[:, 1]`` is the probability of the positive class and
  ``classes[predict(X)[i]]`` is the predicted label.
* Invalid estimator parameters are an :class:`MlctlError` naming the parameter.
"""

from __future__ import annotations

import difflib
import importlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlctl.errors import MlctlError
from mlctl.ml.values import FALSE_WORDS, TRUE_WORDS, to_bool
from mlctl.spec.estimators import ALLOWED_ESTIMATORS, Task
from mlctl.spec.models import Training

__all__ = [
    "TrainResult",
    "build_pipeline",
    "category_text",
    "feature_origins",
    "input_kinds",
    "is_missing",
    "load_estimator",
    "model_frame",
    "needs_raw_frame",
    "prepare_target",
    "train",
]

NUMERIC_TYPES = frozenset({"int", "float", "numeric"})
#: The ColumnTransformer branches :func:`build_pipeline` makes; a branch's name is its kind.
BRANCHES = ("numeric", "bool", "datetime", "categorical")
CATEGORICAL_TYPES = frozenset({"string", "category"})
#: Estimators whose numeric inputs are standardized (after imputation).
SCALED_MODULES = ("sklearn.linear_model.", "sklearn.neighbors.")


@dataclass
class TrainResult:
    """A fitted pipeline and the split it was trained and is to be evaluated on.

    ``X_train``/``X_test`` are what the pipeline takes (:func:`model_frame`); ``raw_train``
    holds the training rows' raw values (what serving receives; the drift reference).
    ``y_train``/``y_test`` are class indices for classifiers (labels in ``classes``) and
    floats for regressors (``classes`` is empty). ``n_missing_label`` rows were dropped
    because their target was missing.
    """

    pipeline: Pipeline
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    classes: list[Any]
    task: Task
    features: list[str] = field(default_factory=list)
    feature_types: dict[str, str] = field(default_factory=dict)
    n_rows: int = 0
    n_missing_label: int = 0
    stratified: bool = False
    raw_train: pd.DataFrame | None = None


def load_estimator(name: str) -> type:
    """The estimator class named ``name``, imported only if ``name`` is allow-listed."""
    if name not in ALLOWED_ESTIMATORS:
        close = difflib.get_close_matches(name, list(ALLOWED_ESTIMATORS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise MlctlError(f"estimator '{name}' is not in the allow-list{hint}")
    module_name, _, class_name = name.rpartition(".")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise MlctlError(f"estimator '{name}' is not available in this scikit-learn")
    return cls


def prepare_target(y: pd.Series, task: Task) -> tuple[np.ndarray, list[Any]]:
    """Encode a target column for fitting; return (y, classes).

    Regression: ``y`` as float64 and ``[]`` (non-numeric values are an error).
    Classification: class indices (int64) and the labels they stand for. A boolean-like
    target (bools, 0/1, yes/no, true/false, y/n, t/f in any case) is binary with the
    negative class first; other targets use the sorted distinct values. Labels are returned
    in their original spelling (the most common spelling when several map to one class) as
    plain Python values. The caller drops missing targets first; nulls are an error.
    """
    if y.isna().any():
        raise MlctlError(f"target '{y.name}' has {int(y.isna().sum())} missing values")
    if task == "regression":
        if pd.api.types.is_bool_dtype(y):
            return y.astype("float64").to_numpy(), []
        numbers = pd.to_numeric(y, errors="coerce")
        if numbers.isna().any():
            example = y[numbers.isna()].iloc[0]
            raise MlctlError(f"target '{y.name}' is not numeric (e.g. {example!r})")
        return numbers.astype("float64").to_numpy(), []
    values = [v.item() if isinstance(v, np.generic) else v for v in y.tolist()]
    if len(set(map(_key, values))) < 2:
        raise MlctlError(f"target '{y.name}' has a single class; a classifier needs two or more")
    flags = [to_bool(v) if _boolean_like(v) else None for v in values]
    if all(f is not None for f in flags):
        spellings: dict[bool, Counter[Any]] = {False: Counter(), True: Counter()}
        for value, flag in zip(values, flags, strict=True):
            spellings[bool(flag)][value] += 1
        if spellings[False] and spellings[True]:
            classes = [spellings[False].most_common(1)[0][0], spellings[True].most_common(1)[0][0]]
            return np.array([int(bool(f)) for f in flags], dtype=np.int64), classes
    distinct = sorted(set(values), key=_sort_key)
    index = {_key(v): i for i, v in enumerate(distinct)}
    return np.array([index[_key(v)] for v in values], dtype=np.int64), distinct


def _boolean_like(value: Any) -> bool:
    if isinstance(value, (bool, int, float)):
        return value in (0, 1)
    return isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS


def _key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


# -- casts: raw feature values -> the typed frame the pipeline takes ------------------------
# (Pipelines trained before issue 13 hold these functions as FunctionTransformer steps, so they
# stay importable under these names: old artifacts keep loading.)


def _columns(X: Any) -> list[np.ndarray]:
    if isinstance(X, pd.DataFrame):
        return [X.iloc[:, i].to_numpy() for i in range(X.shape[1])]
    array = np.asarray(X, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return [array[:, i] for i in range(array.shape[1])]


def _stack(columns: list[np.ndarray], n: int, dtype: Any) -> np.ndarray:
    if not columns:
        return np.empty((n, 0), dtype=dtype)
    return np.column_stack(columns).astype(dtype, copy=False)


def to_numeric_frame(X: Any) -> np.ndarray:
    """Numeric features as float64; unparseable values become NaN."""
    out = []
    for values in _columns(X):
        if values.dtype.kind in "biuf":
            out.append(values.astype("float64"))
        else:
            out.append(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float64"))
    return _stack(out, len(X), "float64")


def to_bool_frame(X: Any) -> np.ndarray:
    """Bool-like features as 1.0/0.0; anything else becomes NaN."""
    out = []
    for values in _columns(X):
        if values.dtype.kind == "b":
            out.append(values.astype("float64"))
        else:
            flags = [to_bool(v) for v in values]
            out.append(np.array([np.nan if f is None else float(f) for f in flags]))
    return _stack(out, len(X), "float64")


def to_epoch_frame(X: Any) -> np.ndarray:
    """Datetime features as seconds since the epoch (UTC); unparseable values become NaN."""
    from mlctl.ml.tables import to_utc_datetime

    out = []
    for values in _columns(X):
        stamps = to_utc_datetime(pd.Series(values)).astype("datetime64[ns, UTC]")
        seconds = stamps.astype("int64").astype("float64") / 1e9
        out.append(seconds.where(stamps.notna()).to_numpy())
    return _stack(out, len(X), "float64")


def to_text_frame(X: Any) -> np.ndarray:
    """Categorical features as Python strings (object array); nulls become NaN."""
    out = []
    for values in _columns(X):
        column = np.empty(len(values), dtype=object)
        column[:] = [np.nan if is_missing(v) else category_text(v) for v in values]
        out.append(column)
    return _stack(out, len(X), object)


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a null of any kind (None, NA, NaT, NaN): what imputers fill."""
    return (
        value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))
    )


def category_text(value: Any) -> str:
    """The string a categorical value is one-hot encoded as (``3.0`` and ``3`` read "3")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _group_of(kind: str) -> str:
    if kind in NUMERIC_TYPES:
        return "numeric"
    if kind in ("bool", "datetime"):
        return kind
    return "categorical"


def model_frame(X: pd.DataFrame, feature_types: Mapping[str, str]) -> pd.DataFrame:
    """The frame a pipeline from :func:`build_pipeline` takes, from raw feature values.

    Same columns, in order: int/float features as float64 (unparseable -> NaN), bool features
    as 1.0/0.0 (``yes``/``no`` and friends read as bools; anything else NaN), datetime features
    as float64 seconds since the epoch (UTC), string/category features as Python strings
    (``3.0`` reads "3") with NaN for nulls. A column without a declared type is typed from its
    dtype. This is the model's input contract (its MLflow signature says the same), and it
    lives outside the pickle so the artifact needs only scikit-learn to load.
    """
    columns: dict[str, Any] = {}
    for column in X.columns:
        name = str(column)
        group = _group_of(_column_kind(X, name, feature_types))
        values = X[[column]]
        if group == "numeric":
            columns[name] = to_numeric_frame(values)[:, 0]
        elif group == "bool":
            columns[name] = to_bool_frame(values)[:, 0]
        elif group == "datetime":
            columns[name] = to_epoch_frame(values)[:, 0]
        else:
            columns[name] = pd.Series(to_text_frame(values)[:, 0], dtype=object, index=X.index)
    frame = pd.DataFrame(
        {k: (v if isinstance(v, pd.Series) else pd.Series(v, index=X.index)) for k, v in columns.items()},
        index=X.index,
    )
    return frame


def input_kinds(pipeline: Any) -> dict[str, str]:
    """Each input column of a fitted :func:`build_pipeline` pipeline and its kind (the name of
    its branch: numeric, bool, datetime or categorical), in the pipeline's column order."""
    preprocess = pipeline.named_steps["preprocess"]
    kinds: dict[str, str] = {}
    for name, _transformer, columns in preprocess.transformers_:
        if name in BRANCHES:
            kinds.update(dict.fromkeys(map(str, columns), name))
    order = [str(c) for c in getattr(pipeline, "feature_names_in_", kinds)]
    return {c: kinds[c] for c in order if c in kinds}


def needs_raw_frame(pipeline: Any) -> bool:
    """Whether ``pipeline`` predates :func:`model_frame` (its casts are inside the pickle, so
    it takes raw values): True when any ColumnTransformer branch starts with a ``cast`` step."""
    steps = getattr(pipeline, "named_steps", {})
    preprocess = steps.get("preprocess") if isinstance(steps, Mapping) else None
    for _name, transformer, _columns in getattr(preprocess, "transformers", []):
        if isinstance(transformer, Pipeline) and "cast" in transformer.named_steps:
            return True
    return False


def _column_kind(X: pd.DataFrame, column: str, feature_types: Mapping[str, str]) -> str:
    declared = feature_types.get(column)
    if declared:
        return declared
    series = X[column]
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def build_pipeline(
    estimator: str, params: dict[str, Any], X: pd.DataFrame, feature_types: Mapping[str, str]
) -> Pipeline:
    """An unfitted ``Pipeline([('preprocess', ColumnTransformer), ('model', estimator)])``.

    ``X``'s columns are the features, in order; ``feature_types`` gives each one's declared
    type (a column without one is typed from its dtype). Raises :class:`MlctlError` for an
    estimator outside the allow-list or a parameter it does not accept (with a hint).
    """
    cls = load_estimator(estimator)
    groups: dict[str, list[str]] = {"numeric": [], "bool": [], "datetime": [], "categorical": []}
    for column in X.columns:
        kind = _column_kind(X, str(column), feature_types)
        if kind in NUMERIC_TYPES:
            groups["numeric"].append(str(column))
        elif kind == "bool":
            groups["bool"].append(str(column))
        elif kind == "datetime":
            groups["datetime"].append(str(column))
        else:
            groups["categorical"].append(str(column))

    # Distance- and penalty-based estimators need comparable scales; trees do not.
    # Only scikit-learn's own transformers: the pickle imports sklearn/numpy, never mlctl, and
    # the values arrive already typed by :func:`model_frame` (or by MLflow's signature).
    scale = estimator.startswith(SCALED_MODULES)

    def step(strategy: str, scaled: bool = False) -> Pipeline:
        parts: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy=strategy, keep_empty_features=True)),
        ]
        if scaled:
            parts.append(("scale", StandardScaler()))
        return Pipeline(parts)

    steps: list[tuple[str, Any, list[str]]] = []
    if groups["numeric"]:
        steps.append(("numeric", step("median", scale), groups["numeric"]))
    if groups["bool"]:  # the median of 0/1 (bool dtype is accepted too, as MLflow passes it)
        steps.append(("bool", step("median"), groups["bool"]))
    if groups["datetime"]:
        steps.append(("datetime", step("median", scale), groups["datetime"]))
    if groups["categorical"]:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        steps.append(("categorical", categorical, groups["categorical"]))
    preprocess = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)

    accepted = cls().get_params()
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise MlctlError(f"estimator {estimator} has no parameter '{key}'{hint}")
    try:
        model = cls(**params)
    except (TypeError, ValueError) as error:
        raise MlctlError(f"invalid parameters for {estimator}: {error}") from None
    return Pipeline([("preprocess", preprocess), ("model", model)])


def feature_origins(pipeline: Pipeline) -> list[str]:
    """For a fitted pipeline, the raw feature behind each column the estimator sees."""
    preprocess: ColumnTransformer = pipeline.named_steps["preprocess"]
    origins: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "categorical" and "onehot" in transformer.named_steps:
            encoder: OneHotEncoder = transformer.named_steps["onehot"]
            imputer: SimpleImputer = transformer.named_steps["impute"]
            kept = [c for c, ok in zip(columns, _kept(imputer, len(columns)), strict=True) if ok]
            for column, categories in zip(kept, encoder.categories_, strict=True):
                origins.extend([column] * len(categories))
        else:
            origins.extend(columns)
    return origins


def _kept(imputer: SimpleImputer, n: int) -> list[bool]:
    if imputer.keep_empty_features:
        return [True] * n
    stats = imputer.statistics_
    return [not is_missing(v) for v in stats]


def train(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    training: Training,
    feature_types: Mapping[str, str],
) -> TrainResult:
    """Split ``frame``, fit the pipeline ``training`` describes, and return both.

    ``features`` are column names of ``frame`` (the point-in-time join's output names).
    Rows with a missing target are dropped (counted in ``n_missing_label``). The split uses
    ``training.test_size`` and ``training.random_state``, stratified by class for
    classifiers when every class has at least two rows. ``random_state`` is also passed to
    the estimator when it takes one and ``params`` does not set it, so training is
    reproducible. Raises :class:`MlctlError` for missing columns, too few rows, a bad
    target or bad parameters (named).
    """
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise MlctlError(f"training frame has no column(s) {', '.join(missing)}")
    task = training.task
    has_label = frame[target].notna()
    n_missing = int((~has_label).sum())
    data = frame.loc[has_label]
    if len(data) < 4:
        raise MlctlError(f"only {len(data)} rows have a value for target '{target}'")
    y, classes = prepare_target(data[target], task)
    kinds = {c: _column_kind(data, c, feature_types) for c in features}
    raw = data[features]
    X = model_frame(raw, kinds)
    params = dict(training.params)
    pipeline = build_pipeline(training.estimator, params, X, feature_types)
    model = pipeline.named_steps["model"]
    if "random_state" in model.get_params() and "random_state" not in params:
        model.set_params(random_state=training.random_state)

    stratify = None
    if task == "classification":
        counts = np.bincount(y)
        n_test = int(np.ceil(training.test_size * len(y)))
        if counts.min() >= 2 and len(classes) <= n_test <= len(y) - len(classes):
            stratify = y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=training.test_size, random_state=training.random_state, stratify=stratify
    )
    if len(X_test) == 0 or len(X_train) == 0:
        raise MlctlError(f"test_size {training.test_size} leaves an empty split of {len(y)} rows")
    if task == "classification" and len(np.unique(y_train)) < 2:
        raise MlctlError("the training split holds a single class; more labelled rows needed")
    try:
        pipeline.fit(X_train, y_train)
    except (TypeError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise MlctlError(f"training {training.estimator} failed: {message}") from None
    return TrainResult(
        pipeline=pipeline,
        X_train=X_train,
        X_test=X_test,
        y_train=np.asarray(y_train),
        y_test=np.asarray(y_test),
        classes=classes,
        task=task,
        features=list(features),
        feature_types=kinds,
        raw_train=raw.loc[X_train.index],
        n_rows=len(y),
        n_missing_label=n_missing,
        stratified=stratify is not None,
    )
