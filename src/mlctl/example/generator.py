"""Synthetic churn-prediction data for the example repository and the demo.

:func:`generate` writes three CSV files that the example ``environments/*/data.yaml`` declares:

``customer_activity.csv``
    3-6 behaviour snapshots per customer over about six months (the feature source).
``churn_labels.csv``
    one training label per customer, taken some days after one of its snapshots, so a
    point-in-time join finds the latest snapshot at or before the label time. About 2 % of
    the labels fall before the customer's first snapshot or more than the feature view's ttl
    after its last one: the join finds nothing for them and the pipeline must impute.
``churn_outcomes.csv``
    delayed labels observed after the last snapshot, for the performance monitor.

**Timeline.** Everything happens before the *as-of* day (default: today, UTC), which the data
ends at: each customer's latest snapshot is 1-30 days old, so the online store holds live
values (within the views' 90-day ttl) for weeks after ``make demo`` or ``mlctl init``. The few
customers whose labels the join cannot serve went quiet long ago, and their online values are
expired, as they would be.

Churn follows a logistic function of the features of the latest snapshot at the label time,
plus noise, so a random forest reaches a ROC AUC of about 0.87 rather than 1.0. The output is
a pure function of ``customers``, ``seed`` and the as-of day: the same arguments give
byte-identical files.

:func:`shifted_population` and :func:`churn_outcome` are the same world after a change (a
promotion brings in bargain hunters who leave when it ends): ``mlctl demo traffic`` draws
requests and their true outcomes from them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from mlctl.example.init import as_of_day

ACTIVITY_FILE = "customer_activity.csv"
LABELS_FILE = "churn_labels.csv"
OUTCOMES_FILE = "churn_outcomes.csv"

FEATURES = (
    "total_orders_30d",
    "avg_order_value",
    "days_since_last_order",
    "support_tickets_90d",
    "login_frequency_7d",
)
# The columns the guide's request model declares as floats (the others are counts).
FLOAT_FEATURES = ("avg_order_value", "login_frequency_7d")

_DAY = 86_400
_MAX_SNAPSHOTS = 6
_TTL_DAYS = 90  # must match the ttl of feature view customer_features in the example
_LAST_SNAPSHOT_AGE = (1, 30)  # days before the as-of day: online values stay live for 60+ days
_BROKEN_LABEL_RATIO = 0.02  # labels the point-in-time join cannot serve (half early, half late)
_MISSING_RATIO = 0.01  # NaN share in avg_order_value and login_frequency_7d
_OUTCOME_RATIO = 0.3  # customers with a delayed outcome
_INTERCEPT = -2.0  # sets the churn rate to about 25 %
_SIGNAL = 1.35  # steepness of the churn curve
_LOGIT_NOISE = 0.6  # unobserved causes of churn: keeps the AUC well below 1


def generate(
    data_dir: Path,
    *,
    customers: int = 20000,
    seed: int = 7,
    as_of: dt.date | str | None = None,
) -> dict[str, Path]:
    """Write the example CSV files into ``data_dir`` and return them by dataset name.

    The timeline ends at the start (00:00 UTC) of the ``as_of`` day (default: today).
    Deterministic: the same ``customers``, ``seed`` and as-of day give byte-identical files.
    """
    import pandas as pd  # the CLI imports this module lazily; keep pandas off its path

    if customers < 1:
        raise ValueError("customers must be at least 1")
    day = as_of_day(as_of)
    anchor = int(np.datetime64(day.isoformat(), "s").astype(np.int64))
    rng = np.random.default_rng(seed)
    n = customers
    ids = customer_ids(np.arange(1, n + 1))
    rows = np.arange(n)

    # Snapshot times, 7-35 days apart, laid back from each customer's latest snapshot.
    counts = rng.integers(3, _MAX_SNAPSHOTS + 1, size=n)
    gaps = rng.integers(7 * _DAY, 35 * _DAY, size=(n, _MAX_SNAPSHOTS))
    gaps[:, 0] = 0
    offsets = np.cumsum(gaps, axis=1)  # (n, 6) seconds since the customer's first snapshot
    age = rng.integers(_LAST_SNAPSHOT_AGE[0] * _DAY, _LAST_SNAPSHOT_AGE[1] * _DAY, size=n)
    broken = rng.random(n) < _BROKEN_LABEL_RATIO
    early = broken & (rng.random(n) < 0.5)
    late = broken & ~early
    # Customers whose label comes more than the ttl after their last snapshot went quiet long ago.
    late_gap = rng.integers((_TTL_DAYS + 5) * _DAY, (_TTL_DAYS + 50) * _DAY, size=n)
    age = np.where(late, late_gap + rng.integers(_DAY, 10 * _DAY, size=n), age)
    last = anchor - age
    times = last[:, None] - offsets[rows, counts - 1][:, None] + offsets  # (n, 6), increasing
    valid = np.arange(_MAX_SNAPSHOTS)[None, :] < counts[:, None]

    # Behaviour: a latent engagement per customer that trends up or down over the months.
    months = (times - times[:, :1]) / (30.0 * _DAY)
    base = rng.normal(0.0, 1.0, size=(n, 1))
    trend = rng.normal(0.0, 0.25, size=(n, 1))
    engagement = base + trend * months + rng.normal(0.0, 0.35, size=times.shape)
    behaviour = _behaviour(rng, engagement)

    # Labels: some days after a random snapshot (never after the as-of day); a few before
    # the first snapshot or more than the ttl after the last.
    pick = (rng.random(n) * counts).astype(np.int64)
    picked = times[rows, pick]
    room = np.minimum(30 * _DAY, anchor - 3600 - picked)
    label_time = picked + 3600 + (rng.random(n) * (room - 3600)).astype(np.int64)
    label_time[early] = times[early, 0] - rng.integers(_DAY, 20 * _DAY, size=int(early.sum()))
    label_time[late] = last[late] + late_gap[late]
    # Latest snapshot at or before the label (the first one for early labels: the truth
    # exists, the join just cannot see it).
    seen = (times <= label_time[:, None]) & valid
    latest = np.maximum(seen.sum(axis=1) - 1, 0)
    churned = churn_outcome(rng, behaviour[rows, latest])

    # Delayed outcomes: observed later, after both the customer's training label and its
    # last snapshot, by the as-of day (within the ttl, so the served features are that
    # snapshot's).
    outcome_rows = np.flatnonzero((rng.random(n) < _OUTCOME_RATIO) & ~broken)
    after = np.maximum(last, label_time)[outcome_rows]
    outcome_time = after + 1 + (rng.random(outcome_rows.size) * (anchor - after - 1)).astype(np.int64)
    outcome = churn_outcome(rng, behaviour[outcome_rows, counts[outcome_rows] - 1])

    # Observation gaps: a little missingness for imputation to handle.
    flat = behaviour[valid]
    missing_aov = rng.random(flat.shape[0]) < _MISSING_RATIO
    missing_logins = rng.random(flat.shape[0]) < _MISSING_RATIO

    activity = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, counts),
            "event_timestamp": _iso(times[valid]),
            "total_orders_30d": flat[:, 0].astype(np.int64),
            "avg_order_value": np.where(missing_aov, np.nan, flat[:, 1]),
            "days_since_last_order": flat[:, 2].astype(np.int64),
            "support_tickets_90d": flat[:, 3].astype(np.int64),
            "login_frequency_7d": np.where(missing_logins, np.nan, flat[:, 4]),
        }
    )
    labels = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": _iso(label_time),
            "churned": np.where(churned, "Yes", "No"),
        }
    )
    outcomes = pd.DataFrame(
        {
            "customer_id": ids[outcome_rows],
            "event_timestamp": _iso(outcome_time),
            "churned": np.where(outcome, "Yes", "No"),
        }
    )

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in (
        ("customer_activity", activity),
        ("churn_labels", labels),
        ("churn_outcomes", outcomes),
    ):
        path = data_dir / f"{name}.csv"
        frame.to_csv(path, index=False, lineterminator="\n")
        written[name] = path
    return written


def customer_ids(numbers: np.ndarray) -> np.ndarray:
    """``C000042``-style ids for customer numbers."""
    return np.char.add("C", np.char.zfill(np.asarray(numbers).astype(str), 6))


def _behaviour(rng: np.random.Generator, engagement: np.ndarray) -> np.ndarray:
    """Feature values (..., 5) in :data:`FEATURES` order for latent ``engagement`` values."""
    shape = engagement.shape
    orders = rng.poisson(np.exp(0.9 + 0.55 * engagement))
    aov = np.round(rng.lognormal(3.7 + 0.1 * engagement, 0.45, size=shape), 2)
    idle_scale = np.where(orders > 0, 30.0 / (orders + 1.0), 45.0)
    days_since = np.floor(np.minimum(rng.exponential(idle_scale) + np.where(orders > 0, 0.0, 30.0), 365.0))
    tickets = rng.poisson(np.exp(-0.4 - 0.35 * engagement))
    # Average logins per day over the last week (a float, as the guide's request declares it).
    logins = np.round(np.minimum(rng.poisson(np.exp(1.3 + 0.5 * engagement)), 60) / 7.0, 2)
    return np.stack([orders, aov, days_since, tickets, logins], axis=-1).astype(float)


def churn_outcome(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Draw churn (bool) from a noisy logistic function of feature rows ``x`` (m, 5).

    Missing values (NaN) count as the population's typical value.
    """
    x = np.where(np.isnan(x), np.array([2.0, 40.0, 10.0, 1.0, 0.5]), x)
    orders, aov, days_since, tickets, logins = x.T
    risk = (
        -0.35 * np.log1p(orders)
        - 0.004 * (aov - 40.0)
        + 1.6 * np.log1p(days_since / 10.0)
        + 0.45 * np.minimum(tickets, 5.0)
        - 0.55 * np.log1p(7.0 * logins)
    )
    logit = _INTERCEPT + _SIGNAL * risk + rng.normal(0.0, _LOGIT_NOISE, size=len(x))
    return rng.random(len(x)) < 1.0 / (1.0 + np.exp(-logit))


def shifted_population(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` customers of a changed world: feature rows (size, 5) and their churn (bool).

    A promotion brought in bargain hunters: many small orders, recent, frequent logins. The
    model has learnt that such engagement means loyalty, but these customers leave when the
    promotion ends, about nine in ten whatever their activity says, the cheaper their
    baskets the likelier (concept drift), so the features drift *and* the served
    predictions turn out wrong. Their baskets (about a third of the usual value) set them
    apart from the customers the model knows, so a version retrained on data that includes
    them learns the new lesson without unlearning the old one.
    """
    engagement = rng.normal(1.5, 0.5, size=size)
    x = _behaviour(rng, engagement)
    x[:, 1] = np.round(rng.lognormal(2.6, 0.25, size=size), 2)  # discounted baskets
    logit = 2.5 - 0.15 * (x[:, 1] - 13.5) + rng.normal(0.0, _LOGIT_NOISE, size=size)
    return x, rng.random(size) < 1.0 / (1.0 + np.exp(-logit))


def _iso(seconds: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC strings (``2024-01-15T08:23:11Z``) for epoch seconds."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return np.char.add(text.astype(str), "Z")
