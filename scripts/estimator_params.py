"""Merge the installed scikit-learn's estimator parameters into ``src/mlctl/spec/estimator_params.json``.

    .venv-min/bin/python scripts/estimator_params.py   # the floor (pyproject: scikit-learn 1.4)
    .venv/bin/python scripts/estimator_params.py       # the newest release

The table holds, per allow-listed estimator, every constructor parameter it has in some
supported scikit-learn version, and for each the kinds of YAML value some version accepts:
what ``validate`` checks without importing scikit-learn (:func:`mlctl.spec.estimators.param_problem`).
Each run is a union with what the table already holds: nothing is ever dropped, so running it
under each supported version (any order, any number of times) gives the same table, and a value
any of them accepts is never refused. The versions merged are listed under ``scikit-learn``.

A kind is read from the estimator's ``_parameter_constraints`` (``sklearn.utils._param_validation``):
``Interval(Integral|Real|RealNotInt, left, right, closed)`` -> ``int``/``real``/``float`` with its
bounds, ``StrOptions`` (hidden, i.e. deprecated, ones too) -> ``str`` with its options, ``str`` ->
any ``str``, ``"boolean"`` -> ``bool``, ``None`` -> ``null``, ``list`` -> ``list``, ``dict`` ->
``dict``, ``"array-like"`` -> ``list`` or ``dict`` (anything with a length), ``"random_state"`` ->
an int in [0, 2**32 - 1] or ``null``, ``"verbose"`` -> an int >= 0 or ``bool``, ``Options`` -> its
values. Constraints no YAML value can meet
(callables, classes such as ``HasMethods``, ``tuple``, ``numpy.ndarray``, sparse matrices)
add nothing; one this script does not know, or a parameter without constraints, is ``any``
(accept: when unsure, accept).
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "src" / "mlctl" / "spec" / "estimator_params.json"
sys.path.insert(0, str(ROOT / "src"))

from mlctl.spec.estimators import ALLOWED_ESTIMATORS  # noqa: E402

Kind = dict[str, Any]


def _bound(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def kinds_of(constraint: Any) -> list[Kind]:
    """The YAML kinds one scikit-learn constraint accepts (see the module doc)."""
    from sklearn.utils import _param_validation as pv

    if isinstance(constraint, pv.Hidden):
        return kinds_of(constraint.constraint)
    if constraint is None:
        return [{"type": "null"}]
    if isinstance(constraint, str):
        named: dict[str, list[Kind]] = {
            "boolean": [{"type": "bool"}],
            "array-like": [{"type": "list"}, {"type": "dict"}],  # anything with a length
            "random_state": [
                {"type": "int", "left": 0, "right": 2**32 - 1, "closed": "both"},
                {"type": "null"},
            ],
            "verbose": [{"type": "int", "left": 0, "right": None, "closed": "left"}, {"type": "bool"}],
            "sparse matrix": [],
            "nan": [],
        }
        return named.get(constraint, [{"type": "any"}])
    if constraint is callable:
        return []
    if isinstance(constraint, pv.Interval):
        real_not_int = getattr(pv, "RealNotInt", None)
        if constraint.type is numbers.Integral:
            kind = "int"
        elif real_not_int is not None and constraint.type is real_not_int:
            kind = "float"
        else:
            kind = "real"
        return [
            {
                "type": kind,
                "left": _bound(constraint.left),
                "right": _bound(constraint.right),
                "closed": constraint.closed,
            }
        ]
    if isinstance(constraint, pv.StrOptions):
        return [{"type": "str", "options": sorted(constraint.options)}]
    if isinstance(constraint, pv.Options):
        values = sorted(v for v in constraint.options if isinstance(v, (int, float, str, bool)))
        return [{"type": "options", "values": values}] if values else []
    if isinstance(constraint, type):
        by_type: dict[type, list[Kind]] = {
            str: [{"type": "str"}],
            bool: [{"type": "bool"}],
            list: [{"type": "list"}],
            dict: [{"type": "dict"}],
            numbers.Integral: [{"type": "int", "left": None, "right": None, "closed": "neither"}],
            int: [{"type": "int", "left": None, "right": None, "closed": "neither"}],
            numbers.Real: [{"type": "real", "left": None, "right": None, "closed": "neither"}],
            float: [{"type": "float", "left": None, "right": None, "closed": "neither"}],
        }
        return by_type.get(constraint, [])  # tuple, ndarray, BaseLoss, DistanceMetric: no YAML form
    if isinstance(constraint, pv.HasMethods):
        return []
    return [{"type": "any"}]


def installed() -> dict[str, dict[str, list[Kind]]]:
    """Estimator -> parameter -> kinds, from the installed scikit-learn."""
    found: dict[str, dict[str, list[Kind]]] = {}
    for name in sorted(ALLOWED_ESTIMATORS):
        module, cls_name = name.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = cls().get_params(deep=False)
        constraints = getattr(cls, "_parameter_constraints", {})
        found[name] = {}
        for param in sorted(params):
            if param not in constraints:
                found[name][param] = [{"type": "any"}]
                continue
            kinds: list[Kind] = []
            for constraint in constraints[param]:
                kinds += kinds_of(constraint)
            found[name][param] = kinds
    return found


def merge_kinds(*groups: list[Kind]) -> list[Kind]:
    """The union of kinds: deduplicated, ``str`` options merged (any ``str`` absorbs them),
    ``any`` absorbing everything; sorted for a stable file."""
    every = [kind for group in groups for kind in group]
    if any(kind["type"] == "any" for kind in every):
        return [{"type": "any"}]
    merged: list[Kind] = []
    options: set[str] = set()
    any_str = False
    for kind in every:
        if kind["type"] == "str":
            if "options" in kind:
                options.update(kind["options"])
            else:
                any_str = True
        elif kind not in merged:
            merged.append(kind)
    if any_str:
        merged.append({"type": "str"})
    elif options:
        merged.append({"type": "str", "options": sorted(options)})
    return sorted(merged, key=lambda kind: json.dumps(kind, sort_keys=True))


def merge(table: dict[str, Any], found: dict[str, dict[str, list[Kind]]], version: str) -> dict[str, Any]:
    """``table`` with ``found`` (one scikit-learn ``version``) merged in (a union)."""
    estimators: dict[str, dict[str, list[Kind]]] = {
        name: dict(params) for name, params in table.get("estimators", {}).items()
    }
    for name, params in found.items():
        into = estimators.setdefault(name, {})
        for param, kinds in params.items():
            into[param] = merge_kinds(into.get(param, []), kinds)
    versions = sorted(set(table.get("scikit-learn", [])) | {version}, key=_release)
    return {
        "scikit-learn": versions,
        "estimators": {name: dict(sorted(params.items())) for name, params in sorted(estimators.items())},
    }


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def render(table: dict[str, Any]) -> str:
    """The file's text: one parameter per line, so a diff shows what a release changed."""
    lines = ["{", f' "scikit-learn": {json.dumps(table["scikit-learn"])},', ' "estimators": {']
    names = list(table["estimators"])
    for i, name in enumerate(names):
        lines.append(f"  {json.dumps(name)}: {{")
        params = table["estimators"][name]
        for j, (param, kinds) in enumerate(params.items()):
            comma = "," if j < len(params) - 1 else ""
            lines.append(f"   {json.dumps(param)}: {json.dumps(kinds, sort_keys=True)}{comma}")
        lines.append("  }" + ("," if i < len(names) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Merge the installed version into the table file (see the module doc)."""
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    if "estimators" not in table:  # the earlier format: estimator -> [parameter names]
        table = {}
    version = metadata.version("scikit-learn")
    TABLE.write_text(render(merge(table, installed(), version)))
    print(f"{TABLE.relative_to(ROOT)}: merged scikit-learn {version}")


if __name__ == "__main__":
    main()
