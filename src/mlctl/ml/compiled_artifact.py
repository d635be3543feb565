"""The compiled model artifact: one ``.npz`` file holding a compiled tree model
(:class:`~mlctl.ml.compiled.FastPredictor` of kind ``compiled-forest`` or ``compiled-tree``).

Contract: ``compiled-preprocess`` needs its estimator and is not saved. The file holds the
node and leaf arrays, each preprocessing branch's fill/mean/scale arrays, and ``header``, a
uint8 array holding UTF-8 JSON (``format_version``, ``kind``, ``features``, ``classifier``,
``labels``, the branches' kinds, positions, categories and text fills). :func:`load_compiled`
reads it with ``np.load(..., allow_pickle=False)`` -- no object arrays, nothing is unpickled --
into a :class:`~mlctl.ml.compiled.FastPredictor` that needs only numpy: loading or predicting
with it never imports scikit-learn or pandas (a datetime branch imports pandas to parse
timestamps). The predictor computes exactly what it computed before saving (the arrays are
stored bit for bit); callers verify it against the pipeline before storing
(:func:`mlctl.engine.training.train_candidate`) and the artifact's sha256 at load (through the
artifact store).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlctl.ml.compiled import SAVED_KINDS, CompileError, FastPredictor, Forest, Group, Preprocessor

__all__ = ["FORMAT_VERSION", "load_compiled", "save_compiled"]

#: the version of the ``.npz`` layout :func:`save_compiled` writes and :func:`load_compiled` reads
FORMAT_VERSION = 1


def save_compiled(predictor: FastPredictor, labels: Sequence[Any] | None = None) -> bytes:
    """The ``.npz`` bytes of a compiled tree model (see the module notes); ``labels``: the class
    labels in index order, recorded for readers. :class:`CompileError` for a kind that needs
    its estimator (``compiled-preprocess``) or values that do not fit the format."""
    if predictor.kind not in SAVED_KINDS or predictor.forest is None:
        raise CompileError(f"a {predictor.kind} predictor needs its estimator and is not saved")
    arrays: dict[str, np.ndarray] = {f"forest_{k}": v for k, v in predictor.forest.arrays().items()}
    groups: list[dict[str, Any]] = []
    for i, g in enumerate(predictor.pre.groups):
        entry: dict[str, Any] = {"kind": g.kind, "positions": [int(p) for p in g.positions], "width": g.width}
        if g.kind == "categorical":
            assert g.categories is not None
            fill = [v if isinstance(v, str) else None for v in g.fill]
            if any(f is None for f in fill):
                raise CompileError("a categorical branch fills with a non-text value")
            entry["fill"] = fill
            entry["categories"] = [sorted(table, key=table.__getitem__) for table in g.categories]
        else:
            arrays[f"group{i}_fill"] = np.asarray(g.fill, dtype="float64")
            for name in ("mean", "scale"):
                value = getattr(g, name)
                entry[name] = value is not None
                if value is not None:
                    arrays[f"group{i}_{name}"] = np.asarray(value, dtype="float64")
        groups.append(entry)
    if predictor.classifier:
        classes = np.asarray(predictor.classes)
        if classes.dtype.kind not in "iub":
            raise CompileError("class indices are not integers")
        arrays["classes"] = classes.astype("int64")
    header = {
        "format_version": FORMAT_VERSION,
        "kind": predictor.kind,
        "features": list(predictor.features),
        "classifier": bool(predictor.classifier),
        "n_classes": int(predictor.n_classes),
        "depth": int(predictor.forest.depth),
        "labels": None if labels is None else [_plain(v) for v in labels],
        "groups": groups,
    }
    try:
        text = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CompileError(f"header: {error}") from None
    arrays["header"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # uncompressed: a load is a read
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def load_compiled(data: bytes) -> FastPredictor:
    """The :class:`FastPredictor` ``data`` (what :func:`save_compiled` wrote) holds, read with
    ``allow_pickle=False`` and needing only numpy. The caller verifies the bytes' sha256
    first. :class:`ValueError` naming what is wrong when ``data`` is not such a file."""
    import zipfile

    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz")
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"not a compiled model: {error}") from None
    try:
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
        return _from_arrays(header, arrays)
    except (
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ) as error:
        raise ValueError(f"not a compiled model: {type(error).__name__}: {error}") from None


def _from_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> FastPredictor:
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"compiled model format {header.get('format_version')!r} is not {FORMAT_VERSION}")
    kind = header["kind"]
    if kind not in SAVED_KINDS:
        raise ValueError(f"compiled model kind {kind!r} is not one of {', '.join(SAVED_KINDS)}")
    features = [str(f) for f in header["features"]]
    groups: list[Group] = []
    for i, entry in enumerate(header["groups"]):
        positions = [int(p) for p in entry["positions"]]
        if any(p < 0 or p >= len(features) for p in positions):
            raise ValueError("a branch reads a feature that does not exist")
        if entry["kind"] == "categorical":
            categories = [{str(c): j for j, c in enumerate(cats)} for cats in entry["categories"]]
            widths = [len(c) for c in categories]
            groups.append(
                Group(
                    "categorical",
                    positions,
                    [str(v) for v in entry["fill"]],
                    categories=categories,
                    widths=widths,
                    width=sum(widths),
                )
            )
        elif entry["kind"] in ("numeric", "bool", "datetime"):
            groups.append(
                Group(
                    entry["kind"],
                    positions,
                    arrays[f"group{i}_fill"],
                    mean=arrays[f"group{i}_mean"] if entry.get("mean") else None,
                    scale=arrays[f"group{i}_scale"] if entry.get("scale") else None,
                    width=len(positions),
                )
            )
        else:
            raise ValueError(f"unknown branch kind {entry['kind']!r}")
    forest = Forest.of_arrays(
        {k[len("forest_") :]: v for k, v in arrays.items() if k.startswith("forest_")}, header["depth"]
    )
    if len(forest.nodes) and int(forest.nodes["feature"].max()) >= sum(g.width for g in groups):
        raise ValueError("a tree reads a column the preprocessing does not make")
    predictor = FastPredictor.__new__(FastPredictor)
    predictor.features = features
    predictor.pre = Preprocessor.of_groups(groups)
    predictor.model = None
    predictor.classifier = bool(header["classifier"])
    predictor.forest = forest
    predictor.kind = kind
    predictor.n_classes = int(header["n_classes"])
    predictor.labels = header.get("labels")
    if predictor.classifier:
        predictor.classes = arrays["classes"]
        if (
            forest.leaf_value.shape[1:] != (predictor.n_classes,)
            or len(predictor.classes) != predictor.n_classes
        ):
            raise ValueError("leaf values do not match the classes")
    return predictor
