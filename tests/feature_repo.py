"""A minimal feature repository for the feature-store tests: one dataset ``activity``
(customer_id, event_timestamp, orders, value), entity ``customer``, feature view ``cf``
(orders, value), written by :func:`write_repo`; :data:`ROWS` are its usual rows."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd


def write_repo(
    root: Path,
    rows: list[tuple[str, str, Any, Any]] | pd.DataFrame,
    *,
    ttl: str | None = "2d",
    online: bool = True,
    online_provider: str | None = None,
    extra_providers: dict[str, str] | None = None,
) -> Path:
    """A minimal repository: one dataset (customer_id, event_timestamp, orders, value),
    entity customer, feature view cf (orders, value)."""
    env = root / "environments" / "dev"
    env.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    frame = (
        rows
        if isinstance(rows, pd.DataFrame)
        else pd.DataFrame(rows, columns=["customer_id", "event_timestamp", "orders", "value"])
    )
    frame.to_csv(root / "data" / "activity.csv", index=False)
    providers = {"online": online_provider} if online_provider else {}
    (env / "environment.yaml").write_text(
        "backend: {type: local, path: state/dev.json}\n"
        + (f"providers: {providers}\n".replace("'", "") if providers else "")
    )
    (env / "data.yaml").write_text(
        textwrap.dedent(
            """\
            datasets:
              activity:
                path: data/activity.csv
                timestamp: event_timestamp
                schema: {customer_id: string, event_timestamp: datetime, orders: int, value: float}
            """
        )
    )
    (env / "features.yaml").write_text(
        textwrap.dedent(
            f"""\
            entities:
              customer: {{join_key: customer_id}}
            feature_views:
              cf:
                entities: [customer]
                source: activity
                {"ttl: " + ttl if ttl else ""}
                online: {"true" if online else "false"}
                features: {{orders: int, value: float}}
            """
        )
    )
    if extra_providers:
        (root / "providers").mkdir(exist_ok=True)
        for name, text in extra_providers.items():
            (root / "providers" / f"{name}.yaml").write_text(text)
    return root


ROWS = [
    ("a", "2024-01-01T00:00:00Z", 1, 1.5),
    ("a", "2024-01-02T00:00:00Z", 2, 2.5),
    ("a", "2024-01-05T00:00:00Z", 3, 3.5),
    ("b", "2024-01-01T00:00:00Z", 10, 10.5),
    ("b", "2024-01-01T00:00:00Z", 11, None),  # same time as the row above: last wins
    ("c", "2024-01-03T00:00:00Z", 7, 7.5),
]
