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
