"""The shipped estimator parameter table against the installed scikit-learn, whichever
version from the declared floor (pyproject) to the newest release is installed.

``src/mlctl/spec/estimator_params.json`` holds, per allow-listed estimator, every constructor
parameter it has in *some* supported scikit-learn version, and the kinds of value some version
accepts for it (from ``_parameter_constraints``): what ``validate`` accepts, since the version
that will train (a runner, a Job's image) is not known at plan time.
:data:`PARAM_VERSIONS` dates the parameters that exist in part of that range only. From
both, the test derives the exact set the installed version must have and compares it with
``get_params()``: it holds on the floor (``make test-min``) and on the newest release, and
fails when a release adds or drops a parameter. The kinds are checked the same way: merging
the installed version into the table changes nothing, and no value the installed version
accepts is refused.

After such a release: ``python scripts/estimator_params.py`` (in a venv with that release)
merges the installed version's parameters and kinds into the table (a union: nothing is
dropped); then date the added or dropped parameters in :data:`PARAM_VERSIONS`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import warnings
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlctl.spec.estimators import ALLOWED_ESTIMATORS, estimator_params, param_problem

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "src" / "mlctl" / "spec" / "estimator_params.json"

#: estimator -> parameter -> (first version that has it, first version that no longer has it);
#: None: before the floor / still there. Every other parameter is in every supported version.
PARAM_VERSIONS: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "sklearn.linear_model.LinearRegression": {"tol": ("1.7", None)},  # scikit-learn#30521
    "sklearn.linear_model.LogisticRegression": {"multi_class": (None, "1.8")},  # deprecated in 1.5
}


def _release(version: str) -> tuple[int, int]:
    """``"1.9.1"`` -> ``(1, 9)``: parameters change in feature releases only."""
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return major, minor


def expected_params(estimator: str, installed: str) -> set[str]:
    """The table's parameters of ``estimator`` that scikit-learn ``installed`` has."""
    dated = PARAM_VERSIONS.get(estimator, {})
    release = _release(installed)
    found = set()
    for param in estimator_params(estimator):
        since, until = dated.get(param, (None, None))
        if (since is None or release >= _release(since)) and (until is None or release < _release(until)):
            found.add(param)
    return found


def installed_params(estimator: str) -> set[str]:
    """Constructor parameters of ``estimator`` in the installed scikit-learn."""
    module, cls = estimator.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(getattr(importlib.import_module(module), cls)().get_params(deep=False))


@pytest.mark.parametrize("name", sorted(ALLOWED_ESTIMATORS))
def test_params_table_matches_the_installed_scikit_learn(name: str) -> None:
    installed = metadata.version("scikit-learn")
    actual = installed_params(name)
    expected = expected_params(name, installed)
    assert actual == expected, (
        f"scikit-learn {installed}, {name}: not in the table {sorted(actual - expected)}, "
        f"in the table but not here {sorted(expected - actual)}: run "
        "`python scripts/estimator_params.py`, then date them in PARAM_VERSIONS"
    )


def test_dated_params_are_in_the_table() -> None:
    for name, dated in PARAM_VERSIONS.items():
        assert name in ALLOWED_ESTIMATORS
        assert set(dated) <= estimator_params(name), f"{name}: a dated parameter is missing from the table"
        for since, until in dated.values():
            assert since is not None or until is not None


def generator() -> ModuleType:
    """``scripts/estimator_params.py``, imported from its file (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "estimator_params_script", ROOT / "scripts" / "estimator_params.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_holds_the_installed_version() -> None:
    """Merging the installed scikit-learn into the table changes nothing: its parameters and
    every kind of value it accepts are already there (regenerate if this fails)."""
    script = generator()
    table = json.loads(TABLE.read_text())
    merged = script.merge(table, script.installed(), metadata.version("scikit-learn"))
    assert merged["estimators"] == table["estimators"], "run `python scripts/estimator_params.py`"
    assert TABLE.read_text() == script.render(table)  # the file is the generator's output


#: Values tried against every parameter: each must be refused by mlctl only if the installed
#: scikit-learn refuses it too (the table is a union, so it may accept more).
SAMPLES: list[Any] = [
    None, True, False, 0, 1, 2, -1, 3, 100, 2**32, 0.0, 0.5, 1.0, 1.5, -0.5, 1e9,
    "abc", "", "auto", "sqrt", "log2", "gini", "balanced", "l2", "lbfgs", "distance",
    "squared_error", "from_dtype", "uniform", [], [1, 2], {}, {"0": 1.0},
]  # fmt: skip


def installed_accepts(constraints: list[Any], value: Any) -> bool:
    from sklearn.utils._param_validation import make_constraint

    return any(make_constraint(c).is_satisfied_by(value) for c in constraints)


@pytest.mark.parametrize("name", sorted(ALLOWED_ESTIMATORS))
def test_no_value_the_installed_version_accepts_is_refused(name: str) -> None:
    from sklearn.utils._param_validation import Interval, StrOptions

    module, cls_name = name.rsplit(".", 1)
    constraints: dict[str, list[Any]] = getattr(
        importlib.import_module(module), cls_name
    )._parameter_constraints
    refused = 0
    for param in sorted(installed_params(name)):
        found = constraints.get(param)
        if found is None:
            continue
        samples = list(SAMPLES)
        for c in found:  # the installed version's own options and interval bounds
            c = getattr(c, "constraint", c)  # Hidden
            if isinstance(c, StrOptions):
                samples += sorted(c.options)
            if isinstance(c, Interval):
                samples += [b for b in (c.left, c.right) if b is not None and abs(b) != float("inf")]
        for value in samples:
            problem = param_problem(name, param, value)
            if problem is not None:
                refused += 1
                assert not installed_accepts(found, value), (
                    f"{name}.{param}={value!r}: scikit-learn {metadata.version('scikit-learn')} accepts "
                    f"it, mlctl refuses it ({problem})"
                )
    assert refused  # the check does refuse something for every estimator


def test_refusals_name_what_is_accepted() -> None:
    forest = "sklearn.ensemble.RandomForestClassifier"
    assert param_problem(forest, "max_depth", "abc") == "an int >= 1, or null"
    assert param_problem(forest, "max_depth", 1.5) == "an int >= 1, or null"
    assert param_problem(forest, "max_depth", 0) == "an int >= 1, or null"
    assert param_problem(forest, "max_depth", None) is None
    assert param_problem(forest, "criterion", "gini") is None
    assert param_problem(forest, "criterion", "bogus") == "one of 'entropy', 'gini', 'log_loss'"
    assert param_problem(forest, "class_weight", {"0": 1.0}) is None
    assert param_problem(forest, "min_weight_fraction_leaf", 0.6) == "a number in [0.0, 0.5]"
    # a value some supported version accepts is never refused: the union over the versions
    logistic = "sklearn.linear_model.LogisticRegression"
    assert param_problem(logistic, "multi_class", "ovr") is None  # dropped in 1.8
    assert param_problem("sklearn.linear_model.LinearRegression", "tol", 1e-6) is None  # added in 1.7
