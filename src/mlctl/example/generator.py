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

Churn follows a logistic function of the features of the latest snapshot at the label time,
plus noise, so a random forest reaches a ROC AUC of about 0.85 rather than 1.0. The output is
a pure function of ``customers`` and ``seed``: the same arguments give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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

# All snapshots start from this instant (UTC, seconds since the epoch of 2024-01-01).
_EPOCH = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
_DAY = 86_400
_MAX_SNAPSHOTS = 6
_TTL_DAYS = 90  # must match the ttl of feature view customer_features in the example
_BROKEN_LABEL_RATIO = 0.02  # labels the point-in-time join cannot serve (half early, half late)
_MISSING_RATIO = 0.01  # NaN share in avg_order_value and login_frequency_7d
_OUTCOME_RATIO = 0.3  # customers with a delayed outcome
_INTERCEPT = -2.0  # sets the churn rate to about 25 %
_SIGNAL = 1.35  # steepness of the churn curve
_LOGIT_NOISE = 0.6  # unobserved causes of churn: keeps the AUC well below 1


def generate(data_dir: Path, *, customers: int = 20000, seed: int = 7) -> dict[str, Path]:
    """Write the example CSV files into ``data_dir`` and return them by dataset name.

    Deterministic: the same ``customers`` and ``seed`` give byte-identical files.
    """
    import pandas as pd  # the CLI imports this module lazily; keep pandas off its path

    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    n = customers
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 6))

    # Snapshot times: first within the first month, then every 7-35 days.
    counts = rng.integers(3, _MAX_SNAPSHOTS + 1, size=n)
    first = rng.integers(0, 30 * _DAY, size=n)
    gaps = rng.integers(7 * _DAY, 35 * _DAY, size=(n, _MAX_SNAPSHOTS))
    gaps[:, 0] = 0
    times = _EPOCH + first[:, None] + np.cumsum(gaps, axis=1)  # (n, 6) seconds, increasing
    valid = np.arange(_MAX_SNAPSHOTS)[None, :] < counts[:, None]

    # Behaviour: a latent engagement per customer that trends up or down over the months.
    months = (times - times[:, :1]) / (30.0 * _DAY)
    base = rng.normal(0.0, 1.0, size=(n, 1))
    trend = rng.normal(0.0, 0.25, size=(n, 1))
    engagement = base + trend * months + rng.normal(0.0, 0.35, size=times.shape)
    shape = times.shape
    orders = rng.poisson(np.exp(0.9 + 0.55 * engagement))
    aov = np.round(rng.lognormal(3.7 + 0.1 * engagement, 0.45, size=shape), 2)
    idle_scale = np.where(orders > 0, 30.0 / (orders + 1.0), 45.0)
    days_since = np.minimum(rng.exponential(idle_scale) + np.where(orders > 0, 0.0, 30.0), 365.0).astype(
        np.int64
    )
    tickets = rng.poisson(np.exp(-0.4 - 0.35 * engagement))
    logins = np.minimum(rng.poisson(np.exp(1.3 + 0.5 * engagement)), 60)
    behaviour = np.stack([orders, aov, days_since, tickets, logins], axis=-1).astype(float)

    # Labels: some days after a random snapshot; a few before the first or after the ttl.
    pick = (rng.random(n) * counts).astype(np.int64)
    rows = np.arange(n)
    label_time = times[rows, pick] + rng.integers(3600, 30 * _DAY, size=n)
    broken = rng.random(n) < _BROKEN_LABEL_RATIO
    early = broken & (rng.random(n) < 0.5)
    late = broken & ~early
    last = times[rows, counts - 1]
    label_time[early] = times[early, 0] - rng.integers(_DAY, 20 * _DAY, size=int(early.sum()))
    late_offset = rng.integers((_TTL_DAYS + 5) * _DAY, (_TTL_DAYS + 50) * _DAY, size=int(late.sum()))
    label_time[late] = last[late] + late_offset
    # Latest snapshot at or before the label (the first one for early labels: the truth
    # exists, the join just cannot see it).
    seen = (times <= label_time[:, None]) & valid
    latest = np.maximum(seen.sum(axis=1) - 1, 0)
    churned = _churn(rng, behaviour[rows, latest])

    # Delayed outcomes: observed later, after both the customer's training label and its
    # last snapshot (still within the ttl, so the served features are that snapshot's).
    outcome_rows = np.flatnonzero((rng.random(n) < _OUTCOME_RATIO) & ~broken)
    after = np.maximum(last, label_time)[outcome_rows]
    outcome_time = after + rng.integers(_DAY, 30 * _DAY, size=outcome_rows.size)
    outcome = _churn(rng, behaviour[outcome_rows, counts[outcome_rows] - 1])

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
            "login_frequency_7d": pd.array(
                np.where(missing_logins, 0, flat[:, 4]).astype(np.int64), dtype="Int64"
            ),
        }
    )
    activity.loc[missing_logins, "login_frequency_7d"] = pd.NA
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


def _churn(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Draw churn (bool) from a noisy logistic function of feature rows ``x`` (m, 5)."""
    orders, aov, days_since, tickets, logins = x.T
    risk = (
        -0.35 * np.log1p(orders)
        - 0.004 * (aov - 40.0)
        + 1.6 * np.log1p(days_since / 10.0)
        + 0.45 * np.minimum(tickets, 5.0)
        - 0.55 * np.log1p(logins)
    )
    logit = _INTERCEPT + _SIGNAL * risk + rng.normal(0.0, _LOGIT_NOISE, size=len(x))
    return rng.random(len(x)) < 1.0 / (1.0 + np.exp(-logit))


def _iso(seconds: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC strings (``2024-01-15T08:23:11Z``) for epoch seconds."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return np.char.add(text.astype(str), "Z")
