"""The allow-list of estimators a training spec may name: the one place it lives.

YAML from a pull request is untrusted, so ``estimator`` is looked up here by its exact
dotted name and nothing outside this table is ever imported. Validation reads this table
without importing scikit-learn; :func:`mlctl.ml.train.load_estimator` imports only its keys.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["classification", "regression"]

ALLOWED_ESTIMATORS: dict[str, Task] = {
    "sklearn.ensemble.RandomForestClassifier": "classification",
    "sklearn.ensemble.ExtraTreesClassifier": "classification",
    "sklearn.ensemble.GradientBoostingClassifier": "classification",
    "sklearn.ensemble.HistGradientBoostingClassifier": "classification",
    "sklearn.linear_model.LogisticRegression": "classification",
    "sklearn.tree.DecisionTreeClassifier": "classification",
    "sklearn.neighbors.KNeighborsClassifier": "classification",
    "sklearn.naive_bayes.GaussianNB": "classification",
    "sklearn.ensemble.RandomForestRegressor": "regression",
    "sklearn.ensemble.ExtraTreesRegressor": "regression",
    "sklearn.ensemble.GradientBoostingRegressor": "regression",
    "sklearn.ensemble.HistGradientBoostingRegressor": "regression",
    "sklearn.linear_model.LinearRegression": "regression",
    "sklearn.linear_model.Ridge": "regression",
    "sklearn.linear_model.Lasso": "regression",
    "sklearn.tree.DecisionTreeRegressor": "regression",
    "sklearn.neighbors.KNeighborsRegressor": "regression",
}


def task_of(estimator: str) -> Task:
    """Return the task of an allow-listed estimator; ``KeyError`` if it is not allowed."""
    return ALLOWED_ESTIMATORS[estimator]


_PARAMS: dict[str, frozenset[str]] | None = None


def estimator_params(estimator: str) -> frozenset[str]:
    """Constructor parameter names of an allow-listed estimator, without importing it.

    Read from ``estimator_params.json`` (shipped with the package, generated from
    scikit-learn's ``get_params()``): every parameter the estimator has in some supported
    scikit-learn version, floor to newest (``tests/test_spec_estimator_params.py`` dates
    the ones a version added or dropped and checks the installed version against them).
    """
    global _PARAMS
    if _PARAMS is None:
        import json
        from importlib import resources

        text = resources.files("mlctl.spec").joinpath("estimator_params.json").read_text()
        _PARAMS = {name: frozenset(params) for name, params in json.loads(text).items()}
    return _PARAMS.get(estimator, frozenset())
