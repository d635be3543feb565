"""The shipped estimator parameter table against the installed scikit-learn, whichever
version from the declared floor (pyproject) to the newest release is installed.

``src/mlctl/spec/estimator_params.json`` holds, per allow-listed estimator, every constructor
parameter it has in *some* supported scikit-learn version: what ``validate`` accepts, since
the version that will train (a runner, a Job's image) is not known at plan time.
:data:`PARAM_VERSIONS` dates the parameters that exist in part of that range only. From
both, the test derives the exact set the installed version must have and compares it with
``get_params()``: it holds on the floor (``make test-min``) and on the newest release, and
fails when a release adds or drops a parameter.

After such a release: ``python tests/test_spec_estimator_params.py`` merges the installed
version's parameters into the table (a union: nothing is dropped); then date the added or
dropped ones in :data:`PARAM_VERSIONS`.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from importlib import metadata
from pathlib import Path

import pytest

from mlctl.spec.estimators import ALLOWED_ESTIMATORS, estimator_params

TABLE = Path(__file__).resolve().parents[1] / "src" / "mlctl" / "spec" / "estimator_params.json"

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
        "`python tests/test_spec_estimator_params.py`, then date them in PARAM_VERSIONS"
    )


def test_dated_params_are_in_the_table() -> None:
    for name, dated in PARAM_VERSIONS.items():
        assert name in ALLOWED_ESTIMATORS
        assert set(dated) <= estimator_params(name), f"{name}: a dated parameter is missing from the table"
        for since, until in dated.values():
            assert since is not None or until is not None


def main() -> None:
    """Merge the installed scikit-learn's parameters into the table (see the module doc)."""
    table = json.loads(TABLE.read_text())
    for name in sorted(ALLOWED_ESTIMATORS):
        table[name] = sorted(set(table.get(name, [])) | installed_params(name))
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{TABLE}: merged scikit-learn {metadata.version('scikit-learn')}")


if __name__ == "__main__":
    main()
