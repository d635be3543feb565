"""The shipped estimator parameter table matches the installed scikit-learn."""

from __future__ import annotations

import importlib

import pytest

from mlctl.spec.estimators import ALLOWED_ESTIMATORS, estimator_params


@pytest.mark.parametrize("name", sorted(ALLOWED_ESTIMATORS))
def test_params_table_matches_scikit_learn(name: str) -> None:
    module, cls = name.rsplit(".", 1)
    actual = set(getattr(importlib.import_module(module), cls)().get_params(deep=False))
    assert estimator_params(name) == actual, (
        "regenerate src/mlctl/spec/estimator_params.json for this scikit-learn version"
    )
