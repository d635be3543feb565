"""A compiled form of the pipelines :func:`mlctl.ml.train.build_pipeline` fits: the serving
fast path and the numpy-only model artifact.

Why: a single-row ``Pipeline.predict_proba(pd.DataFrame([row]))`` spends 10-25 ms in
scikit-learn's per-call machinery (building a DataFrame, ColumnTransformer dispatch and
output checks, ``check_array`` on every step, a joblib ``Parallel`` dispatch and one
validated ``predict_proba`` call per tree), not in arithmetic. This module reads the fitted
objects once and evaluates the same arithmetic on plain numpy arrays:

* preprocessing: cast, impute (the imputer's fitted ``statistics_``), standardize
  (``(x - mean_) / scale_``) and one-hot encode (``categories_``, unknown -> all zeros);
* tree ensembles (random forest, extra trees, a single decision tree): the nodes of all trees
  are renumbered breadth first, level by level across trees (the top levels every request
  walks sit together in cache), with the two children of a node side by side, so one step
  is ``node = child[node] + (x[feature[node]] > threshold[node])`` for all trees at once;
  thresholds are stored as float32, rounded down (for a float32 ``x``, ``x <= t`` holds
  exactly when ``x <= round_down32(t)``), and the row is the float32 cast scikit-learn
  compares; NaN goes where ``missing_go_to_left`` says; a leaf steps onto itself. The
  memory walked per request is what bounds the speed (3,000 node visits for 200 trees of
  depth 15), hence one 16-byte record a node rather than scikit-learn's 64 bytes. Per-tree
  leaf probabilities are accumulated in tree order (``cumsum``, so the float additions
  happen in exactly scikit-learn's order) and divided by the number of trees;
* a single row (the ``/predict`` case) is preprocessed with Python floats (the same IEEE
  operations numpy does, without its per-call cost) and walked with 1-D gathers;
* any other allow-listed estimator gets the preprocessed float64 matrix directly (skipping
  ColumnTransformer and the DataFrame) under ``assume_finite``.

Exactness is not assumed: the loader (:func:`mlctl.serving.follower.choose_predictor`)
compares the compiled path with the fitted pipeline on sample rows, as one batch and row by
row (bitwise equal probabilities and equal predictions), and serves through the pipeline
itself when anything differs or the pipeline has a shape this module does not know.

The compiled artifact, an ``.npz`` file that needs only numpy to load, is written and read by
:mod:`mlctl.ml.compiled_artifact`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlctl.ml.values import to_bool

__all__ = [
    "SAVED_KINDS",
    "CompileError",
    "FastPredictor",
    "Forest",
    "Group",
    "PipelinePredictor",
    "Prediction",
    "Predictor",
    "Preprocessor",
    "compile_pipeline",
    "differs",
    "same_predictions",
    "with_holes",
]

#: the kinds of :class:`FastPredictor` that stand alone (no estimator needed), hence can be saved
SAVED_KINDS = ("compiled-forest", "compiled-tree")


class CompileError(Exception):
    """The pipeline has a shape the fast path does not cover (use the pipeline itself)."""


@dataclass
class Prediction:
    """Raw output of a model call for n rows.

    ``index``: predicted class indices (classifiers) or None; ``value``: regression outputs
    or None; ``proba``: (n, k) class probabilities or None.
    """

    index: np.ndarray | None
    value: np.ndarray | None
    proba: np.ndarray | None


class Predictor:
    """Rows (sequences of raw values in ``features`` order) in, :class:`Prediction` out."""

    features: list[str]
    kind: str = "pipeline"

    def predict(self, rows: Sequence[Sequence[Any]]) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_classifier(estimator: Any) -> bool:
    return hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba")


class PipelinePredictor(Predictor):
    """The fitted pipeline, called the documented way: a DataFrame of the raw values, typed by
    :func:`mlctl.ml.train.model_frame` (with the kinds the pipeline's branches name) unless
    the pipeline predates it and casts inside."""

    kind = "pipeline"

    def __init__(self, pipeline: Any, features: list[str]) -> None:
        from mlctl.ml.train import input_kinds, needs_raw_frame

        self.pipeline = pipeline
        self.features = features
        self.classifier = (
            _is_classifier(pipeline.steps[-1][1]) if hasattr(pipeline, "steps") else _is_classifier(pipeline)
        )
        self.kinds: dict[str, str] | None = None
        steps = getattr(pipeline, "named_steps", {})
        if "preprocess" in steps and not needs_raw_frame(pipeline):
            self.kinds = input_kinds(pipeline)

    def frame(self, rows: Sequence[Sequence[Any]]) -> Any:
        import pandas as pd

        raw = pd.DataFrame([list(r) for r in rows], columns=self.features)
        if self.kinds is None:
            return raw
        from mlctl.ml.train import model_frame

        return model_frame(raw, self.kinds)

    def predict(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        X = self.frame(rows)
        if self.classifier:
            proba = np.asarray(self.pipeline.predict_proba(X), dtype="float64")
            index = np.asarray(self.pipeline.predict(X))
            return Prediction(index=index.astype("int64"), value=None, proba=proba)
        value = np.asarray(self.pipeline.predict(X), dtype="float64")
        return Prediction(index=None, value=value, proba=None)


# -- preprocessing ---------------------------------------------------------------------------


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, np.generic):
        return float(value.item())
    try:
        return float(str(value).strip())
    except ValueError:
        return math.nan


def _is_missing(value: Any) -> bool:
    """:func:`mlctl.ml.train.is_missing` without importing pandas (its NA and NaT can only
    reach here when pandas is already loaded)."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def _category_text(value: Any) -> str:
    """:func:`mlctl.ml.train.category_text` (``3.0`` and ``3`` read "3")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _epoch_frame(raw: np.ndarray) -> np.ndarray:
    """:func:`mlctl.ml.train.to_epoch_frame` of an (n, k) object array, with pandas but
    without scikit-learn: seconds since the epoch (UTC), unparseable values NaN."""
    import pandas as pd

    from mlctl.ml.tables import to_utc_datetime

    out = []
    for i in range(raw.shape[1]):
        stamps = to_utc_datetime(pd.Series(raw[:, i])).astype("datetime64[ns, UTC]")
        seconds = stamps.astype("int64").astype("float64") / 1e9
        out.append(seconds.where(stamps.notna()).to_numpy())
    if not out:
        return np.empty((raw.shape[0], 0), dtype="float64")
    return np.column_stack(out).astype("float64", copy=False)


def _flag(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    flag = to_bool(value)
    return math.nan if flag is None else float(flag)


@dataclass
class Group:
    """One ColumnTransformer branch, compiled: positions of its inputs and the arithmetic."""

    kind: str  # numeric | bool | datetime | categorical
    positions: list[int]
    fill: np.ndarray | list[Any]
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    categories: list[dict[Any, int]] | None = None
    widths: list[int] | None = None
    width: int = 0


def _unwrap_cast(step: Any) -> Callable[..., Any]:
    from sklearn.preprocessing import FunctionTransformer

    if not isinstance(step, FunctionTransformer) or step.inverse_func is not None or step.kw_args:
        raise CompileError("unexpected cast step")
    return step.func


def _compile_group(name: str, transformer: Any, columns: list[str], features: list[str]) -> Group:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlctl.ml import train as T

    if not isinstance(transformer, Pipeline):
        raise CompileError(f"branch {name} is not a Pipeline")
    steps = dict(transformer.steps)
    names = [n for n, _ in transformer.steps]
    if names and names[0] == "cast":  # trained before issue 13: the casts are in the pickle
        func = _unwrap_cast(steps.get("cast"))
        kinds = {
            T.to_numeric_frame: "numeric",
            T.to_bool_frame: "bool",
            T.to_epoch_frame: "datetime",
            T.to_text_frame: "categorical",
        }
        kind = kinds.get(func)
        if kind is None:
            raise CompileError(f"branch {name}: unknown cast {func!r}")
        names = names[1:]
    else:  # scikit-learn only: the branch's name says its kind, model_frame typed the values
        kind = name if name in T.BRANCHES else None
        if kind is None:
            raise CompileError(f"branch {name}: unknown kind")
    imputer = steps.get("impute")
    if not isinstance(imputer, SimpleImputer) or imputer.add_indicator:
        raise CompileError(f"branch {name}: unexpected imputer")
    positions = [features.index(c) for c in columns]
    if kind == "categorical":
        if names != ["impute", "onehot"]:
            raise CompileError(f"branch {name}: unexpected steps {names}")
        encoder = steps["onehot"]
        if (
            not isinstance(encoder, OneHotEncoder)
            or encoder.drop is not None
            or encoder.handle_unknown != "ignore"
            or getattr(encoder, "_infrequent_enabled", False)
            or (not imputer.keep_empty_features and any(_is_missing(v) for v in imputer.statistics_))
        ):
            raise CompileError(f"branch {name}: unexpected encoder")
        categories = []
        widths = []
        for cats in encoder.categories_:
            table: dict[Any, int] = {}
            for i, c in enumerate(cats.tolist()):
                if not isinstance(c, str):
                    raise CompileError(f"branch {name}: non-text category {c!r}")
                table[c] = i
            categories.append(table)
            widths.append(len(cats))
        return Group(
            kind,
            positions,
            list(imputer.statistics_),
            categories=categories,
            widths=widths,
            width=sum(widths),
        )
    if names not in (["impute"], ["impute", "scale"]):
        raise CompileError(f"branch {name}: unexpected steps {names}")
    if not imputer.keep_empty_features:
        raise CompileError(f"branch {name}: imputer drops empty features")
    fill = np.asarray(imputer.statistics_, dtype="float64")
    group = Group(kind, positions, fill, width=len(columns))
    if "scale" in steps:
        scaler = steps["scale"]
        if not isinstance(scaler, StandardScaler):
            raise CompileError(f"branch {name}: unexpected scaler")
        group.mean = np.asarray(scaler.mean_, dtype="float64") if scaler.with_mean else None
        group.scale = np.asarray(scaler.scale_, dtype="float64") if scaler.with_std else None
    return group


#: a numeric or boolean branch for one row: (convert, fill, mean or None, scale or None)
_Plan = tuple[Callable[[Any], float], list[float], list[float] | None, list[float] | None]


class Preprocessor:
    """The ColumnTransformer's arithmetic on a list of raw rows -> float64 (n, width)."""

    def __init__(self, preprocess: Any, features: list[str]) -> None:
        from sklearn.compose import ColumnTransformer

        if not isinstance(preprocess, ColumnTransformer) or preprocess.sparse_output_:
            raise CompileError("preprocess step is not a dense ColumnTransformer")
        self.groups: list[Group] = []
        for name, transformer, columns in preprocess.transformers_:
            if name == "remainder" and transformer == "drop":
                continue
            if transformer == "drop" or transformer == "passthrough":
                raise CompileError(f"branch {name} is {transformer}")
            self.groups.append(_compile_group(name, transformer, list(columns), features))
        self.width = sum(g.width for g in self.groups)
        expected = getattr(preprocess, "n_features_out_", None)
        if expected is None:
            expected = len(preprocess.get_feature_names_out())
        if self.width != expected:
            raise CompileError("compiled width differs from the ColumnTransformer's output")
        self._plan()

    @classmethod
    def of_groups(cls, groups: list[Group]) -> Preprocessor:
        """A preprocessor from compiled groups (:func:`load_compiled`)."""
        self = cls.__new__(cls)
        self.groups = groups
        self.width = sum(g.width for g in groups)
        self._plan()
        return self

    def _plan(self) -> None:
        #: per group, for :meth:`transform_one`: (convert, fill, mean, scale) as Python floats
        self._plans: list[_Plan | None] = []
        for g in self.groups:
            if g.kind not in ("numeric", "bool"):
                self._plans.append(None)
                continue
            self._plans.append(
                (
                    _num if g.kind == "numeric" else _flag,
                    [float(v) for v in np.asarray(g.fill, dtype="float64")],
                    None if g.mean is None else [float(v) for v in g.mean],
                    None if g.scale is None else [float(v) for v in g.scale],
                )
            )

    def transform_one(self, row: Sequence[Any]) -> list[float]:
        """One row, with Python floats: the same IEEE operations as :meth:`transform`
        (impute, subtract the mean, divide by the scale), so the same bits."""
        out: list[float] = []
        for g, plan in zip(self.groups, self._plans, strict=True):
            if plan is None:  # one-hot and datetime branches: the array path, one row
                out.extend(self._block_one(g, row))
                continue
            convert, fill, mean, scale = plan
            for j, p in enumerate(g.positions):
                v = convert(row[p])
                if v != v:
                    v = fill[j]
                if mean is not None:
                    v = v - mean[j]
                if scale is not None:
                    v = v / scale[j]
                out.append(v)
        return out

    def _block_one(self, g: Group, row: Sequence[Any]) -> list[float]:
        out = np.empty((1, g.width), dtype="float64")
        self._fill([g], [row], out)
        return [float(v) for v in out[0]]

    def transform(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        out = np.empty((len(rows), self.width), dtype="float64")
        self._fill(self.groups, rows, out)
        return out

    def _fill(self, groups: list[Group], rows: Sequence[Sequence[Any]], out: np.ndarray) -> None:
        n = len(rows)
        offset = 0
        for g in groups:
            if g.kind == "categorical":
                self._onehot(g, rows, out, offset)
                offset += g.width
                continue
            if g.kind == "numeric":
                block = np.array([[_num(r[p]) for p in g.positions] for r in rows], dtype="float64")
            elif g.kind == "bool":
                block = np.array([[_flag(r[p]) for p in g.positions] for r in rows], dtype="float64")
            else:
                raw = np.empty((n, len(g.positions)), dtype=object)
                for i, r in enumerate(rows):
                    for j, p in enumerate(g.positions):
                        raw[i, j] = r[p]
                block = _epoch_frame(raw)
            block = block.reshape(n, len(g.positions))
            missing = np.isnan(block)
            if missing.any():
                block = np.where(missing, np.asarray(g.fill)[None, :], block)
            if g.mean is not None:
                block = block - g.mean
            if g.scale is not None:
                block = block / g.scale
            out[:, offset : offset + g.width] = block
            offset += g.width

    @staticmethod
    def _onehot(g: Group, rows: Sequence[Sequence[Any]], out: np.ndarray, offset: int) -> None:
        assert g.categories is not None and g.widths is not None
        out[:, offset : offset + g.width] = 0.0
        for i, r in enumerate(rows):
            start = offset
            for j, p in enumerate(g.positions):
                value = r[p]
                text = g.fill[j] if _is_missing(value) else _category_text(value)
                hit = g.categories[j].get(text) if isinstance(text, str) else None
                if hit is not None:
                    out[i, start + hit] = 1.0
                start += g.widths[j]


# -- tree ensembles --------------------------------------------------------------------------


class Forest:
    """All trees of a forest in one table of node records, walked together (see the module notes)."""

    def __init__(self, trees: list[Any], classifier: bool, n_classes: int) -> None:
        lefts, rights, feats, thrs, mleft, leaves, roots = [], [], [], [], [], [], []
        offset = 0
        depth = 0
        for tree in trees:  # scikit-learn's own numbering first, trees one after the other
            t = tree.tree_
            if t.n_outputs != 1:
                raise CompileError("multi-output trees")
            n = t.node_count
            left = t.children_left.astype("int64")
            is_leaf = left == -1
            lefts.append(np.where(is_leaf, -1, left + offset))
            rights.append(np.where(is_leaf, -1, t.children_right.astype("int64") + offset))
            feats.append(np.where(is_leaf, 0, t.feature).astype("int64"))
            thrs.append(np.where(is_leaf, np.inf, t.threshold).astype("float64"))
            missing = getattr(t, "missing_go_to_left", None)
            mleft.append(np.ones(n, dtype=bool) if missing is None else np.asarray(missing, dtype=bool))
            if classifier:
                value = t.value[:, 0, :n_classes]
                normalizer = value.sum(axis=1)[:, np.newaxis]
                normalizer[normalizer == 0.0] = 1.0
                leaves.append(value / normalizer)
            else:
                leaves.append(t.value[:, 0, :1])
            roots.append(offset)
            offset += n
            depth = max(depth, int(t.max_depth))
        left, right = np.concatenate(lefts), np.concatenate(rights)
        # Breadth first, level by level across trees; the children of a node side by side.
        level = np.asarray(roots, dtype="int64")
        order = [level]
        while True:
            inner = level[left[level] != -1]
            if not len(inner):
                break
            level = np.stack([left[inner], right[inner]], axis=1).reshape(-1)
            order.append(level)
        old = np.concatenate(order)
        if len(old) != offset:
            raise CompileError("a tree node is unreachable from its root")
        new = np.empty(offset, dtype="int64")
        new[old] = np.arange(offset, dtype="int64")
        left = left[old]
        inner = left != -1
        child = np.where(inner, new[np.where(inner, left, 0)], np.arange(offset, dtype="int64"))
        if not np.array_equal(child[inner] + 1, new[right[old][inner]]):
            raise CompileError("children are not side by side")  # cannot happen: checked anyway
        threshold = np.concatenate(thrs)[old]
        t32 = threshold.astype(np.float32)
        above = t32.astype("float64") > threshold
        t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
        #: one 16-byte record a node, so a step reads one place in memory: the threshold (the
        #: largest float32 <= scikit-learn's float64 one: the same test on a float32 x), the
        #: feature, and the left child (a leaf is its own child: +inf never sends it right)
        self.nodes = np.zeros(offset, dtype=[("threshold", "<f4"), ("feature", "<i4"), ("child", "<i8")])
        self.nodes["threshold"] = t32
        self.nodes["feature"] = np.concatenate(feats)[old]
        self.nodes["child"] = child
        self.go_right_missing = ~np.concatenate(mleft)[old] & inner  # a leaf never moves
        self.leaf_value = np.ascontiguousarray(np.concatenate(leaves)[old])
        self.roots = new[np.asarray(roots, dtype="int64")]
        self.depth = depth
        self.n_trees = len(trees)

    @classmethod
    def of_arrays(cls, arrays: dict[str, np.ndarray], depth: int) -> Forest:
        """A forest from the arrays :meth:`arrays` gave (:func:`load_compiled`)."""
        self = cls.__new__(cls)
        threshold, feature, child = arrays["threshold"], arrays["feature"], arrays["child"]
        n = len(threshold)
        if len(feature) != n or len(child) != n or len(arrays["go_right_missing"]) != n:
            raise ValueError("node arrays of different lengths")
        if n and (child.min() < 0 or child.max() >= n or feature.min() < 0):
            raise ValueError("node references out of range")
        self.nodes = np.zeros(n, dtype=[("threshold", "<f4"), ("feature", "<i4"), ("child", "<i8")])
        self.nodes["threshold"] = threshold
        self.nodes["feature"] = feature
        self.nodes["child"] = child
        self.go_right_missing = np.asarray(arrays["go_right_missing"], dtype=bool)
        self.leaf_value = np.ascontiguousarray(arrays["leaf_value"], dtype="float64")
        self.roots = np.asarray(arrays["roots"], dtype="int64")
        if len(self.leaf_value) != n or (len(self.roots) and (self.roots.min() < 0 or self.roots.max() >= n)):
            raise ValueError("leaf values or roots do not fit the nodes")
        self.depth = int(depth)
        self.n_trees = len(self.roots)
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """The forest as plain arrays (what :func:`save_compiled` stores)."""
        return {
            "threshold": np.ascontiguousarray(self.nodes["threshold"]),
            "feature": np.ascontiguousarray(self.nodes["feature"]),
            "child": np.ascontiguousarray(self.nodes["child"]),
            "go_right_missing": self.go_right_missing,
            "leaf_value": self.leaf_value,
            "roots": self.roots,
        }

    def leaves_one(self, x32: np.ndarray) -> np.ndarray:
        """(n_trees,) leaf indices for one float32 row without NaN: four numpy calls a level."""
        nodes = self.roots
        table = self.nodes
        for _ in range(self.depth):
            node = table.take(nodes)
            nodes = node["child"] + (x32.take(node["feature"]) > node["threshold"])
        return nodes

    def leaves(self, X32: np.ndarray) -> np.ndarray:
        """(n, n_trees) leaf indices for float32 rows ``X32``."""
        n = X32.shape[0]
        has_nan = bool(np.isnan(X32).any())
        if n == 1 and not has_nan:
            return self.leaves_one(X32[0])[None, :]
        table = self.nodes
        nodes = np.broadcast_to(self.roots, (n, self.n_trees)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            node = table[nodes]
            x = X32[rows, node["feature"]]
            go_right = x > node["threshold"]
            if has_nan:
                go_right = np.where(np.isnan(x), self.go_right_missing[nodes], go_right)
            nodes = node["child"] + go_right
        return nodes

    def accumulate(self, X32: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values in tree order, divided by the number of trees."""
        leaf = self.leaves(X32)  # (n, T)
        values = self.leaf_value[leaf]  # (n, T, k)
        total = np.cumsum(values, axis=1)[:, -1, :]  # sequential adds, scikit-learn's order
        return total / self.n_trees

    def accumulate_one(self, x32: np.ndarray) -> np.ndarray:
        """:meth:`accumulate` of one float32 row without NaN: (k,)."""
        values = self.leaf_value.take(self.leaves_one(x32), axis=0)  # (T, k)
        return values.cumsum(axis=0)[-1] / self.n_trees


class FastPredictor(Predictor):
    """Compiled preprocessing + (compiled trees | the estimator on a float64 matrix)."""

    #: class labels in index order when loaded from a compiled artifact that records them
    labels: list[Any] | None = None

    def __init__(self, pipeline: Any, features: list[str]) -> None:
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )
        from sklearn.pipeline import Pipeline
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        if not isinstance(pipeline, Pipeline) or [n for n, _ in pipeline.steps] != ["preprocess", "model"]:
            raise CompileError("not a preprocess+model pipeline")
        self.features = list(features)
        names_in = getattr(pipeline, "feature_names_in_", None)
        if names_in is not None and list(names_in) != self.features:
            raise CompileError("signature inputs differ from the pipeline's columns")
        self.pre = Preprocessor(pipeline.named_steps["preprocess"], self.features)
        model = pipeline.named_steps["model"]
        self.model = model
        self.classifier = _is_classifier(model)
        self.forest: Forest | None = None
        forests = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)
        if self.classifier and getattr(model, "n_outputs_", 1) != 1:
            raise CompileError("multi-output classifier")
        if isinstance(model, forests):
            self.n_classes = int(model.n_classes_) if self.classifier else 0
            self.forest = Forest(list(model.estimators_), self.classifier, self.n_classes)
            self.kind = "compiled-forest"
        elif isinstance(model, (DecisionTreeClassifier, DecisionTreeRegressor)):
            self.n_classes = int(model.n_classes_) if self.classifier else 0
            self.forest = Forest([model], self.classifier, self.n_classes)
            self.kind = "compiled-tree"
        else:
            self.kind = "compiled-preprocess"
        if self.classifier:
            classes = np.asarray(model.classes_)
            self.classes = classes

    def transform(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        return self.pre.transform(rows)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a shadow process) without the estimator when the forest replaces it."""
        state = dict(self.__dict__)
        if self.forest is not None:
            state["model"] = None
        return state

    def predict(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        if len(rows) == 1 and self.forest is not None:
            x = self.pre.transform_one(rows[0])
            if not any(v != v for v in x):  # a NaN reaching the forest takes the general path
                out = self.forest.accumulate_one(np.array(x, dtype=np.float32))[None, :]
                if self.classifier:
                    index = self.classes.take(out.argmax(axis=1))
                    return Prediction(index=index.astype("int64"), value=None, proba=out)
                return Prediction(index=None, value=out[:, 0], proba=None)
        X = self.pre.transform(rows)
        if self.forest is not None:
            X32 = X.astype(np.float32)
            out = self.forest.accumulate(X32)
            if self.classifier:
                index = self.classes.take(np.argmax(out, axis=1))
                return Prediction(index=np.asarray(index).astype("int64"), value=None, proba=out)
            return Prediction(index=None, value=out[:, 0], proba=None)
        import sklearn

        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if self.classifier:
                proba = np.asarray(self.model.predict_proba(X), dtype="float64")
                index = np.asarray(self.model.predict(X)).astype("int64")
                return Prediction(index=index, value=None, proba=proba)
            return Prediction(
                index=None, value=np.asarray(self.model.predict(X), dtype="float64").reshape(-1), proba=None
            )


def compile_pipeline(pipeline: Any, features: list[str]) -> FastPredictor:
    """The compiled predictor of ``pipeline``; :class:`CompileError` when not covered."""
    try:
        return FastPredictor(pipeline, features)
    except CompileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as error:
        raise CompileError(f"{type(error).__name__}: {error}") from None


def with_holes(rows: list[list[Any]]) -> list[list[Any]]:
    """``rows`` (at least two made up when empty) plus copies with one value missing each and a
    row of nothing: the rows a compiled form is checked on (imputation is part of it)."""
    rows = [list(r) for r in rows]
    if not rows:
        return rows
    width = len(rows[0])
    holes = [list(r) for r in rows[: min(len(rows), 20)]]
    for i, row in enumerate(holes):
        if width:
            row[i % width] = None
    return [*rows, *holes, [None] * width]


def _row_of(prediction: Prediction, i: int) -> Prediction:
    """Row ``i`` of a prediction of many rows, as a prediction of one."""
    pick = slice(i, i + 1)
    return Prediction(
        index=None if prediction.index is None else prediction.index[pick],
        value=None if prediction.value is None else prediction.value[pick],
        proba=None if prediction.proba is None else prediction.proba[pick],
    )


def differs(fast: Predictor, slow: Predictor, rows: list[list[Any]]) -> str | None:
    """None when ``fast`` reproduces ``slow`` exactly on ``rows``, as one batch and the first
    40 and last 21 rows one at a time (the ``/predict`` path); else what differs. An error
    raised by either is a difference."""
    try:
        expected = slow.predict(rows)
        difference = same_predictions(fast.predict(rows), expected)
        for i in [*range(min(len(rows), 40)), *range(max(0, len(rows) - 21), len(rows))]:
            if difference is not None:
                break
            difference = same_predictions(fast.predict([rows[i]]), _row_of(expected, i))
            if difference is not None:
                difference = f"one row at a time: {difference}"
    except Exception as error:
        difference = f"{type(error).__name__}: {error}"
    return difference


def same_predictions(a: Prediction, b: Prediction) -> str | None:
    """None when ``a`` and ``b`` are identical, else what differs."""
    if (a.proba is None) != (b.proba is None) or (a.value is None) != (b.value is None):
        return "different output kinds"
    if (
        a.proba is not None
        and b.proba is not None
        and (a.proba.shape != b.proba.shape or not np.array_equal(a.proba, b.proba))
    ):
        worst = float(np.max(np.abs(a.proba - b.proba))) if a.proba.shape == b.proba.shape else math.inf
        return f"probabilities differ (max abs difference {worst:.3g})"
    if a.index is not None and b.index is not None and not np.array_equal(a.index, b.index):
        return "predicted classes differ"
    if a.value is not None and b.value is not None and not np.array_equal(a.value, b.value):
        return "predicted values differ"
    return None
