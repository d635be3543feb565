"""A canary set up on the example repository, and the keyed requests it is driven with.

:func:`prepare` pins production to v1, trains a v2 into staging and declares a canary whose
steps and analysis a test can drive quickly (:data:`ROLLOUT`); :func:`row` is the ``i``-th of
a deterministic stream of prediction requests, each with its own entity key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conftest import edit, invoke, state_of
from serving_helpers import ROW

ROLLOUT = """    rollout:
      strategy: canary
      candidate: staging
      steps: [20, 50, 100]
      analysis: {min_samples: 150, max_latency_increase: 0.25, max_prediction_drift: 0.35, alpha: 0.05}
"""


def prepare(repo: Path, *edits: tuple[str, str]) -> None:
    """Production pinned to v1, a v2 trained into staging after ``edits`` (regular
    expression, replacement) of models.yaml, a canary declared."""
    models = repo / "environments" / "dev" / "models.yaml"
    edit(models, "      production: staging ", "      production: 1       ")
    text = models.read_text()
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, pattern
    models.write_text(text)
    deployments = repo / "environments" / "dev" / "deployments.yaml"
    declared, count = re.subn(r"    rollout:\n(      .*\n)+", ROLLOUT, deployments.read_text())
    assert count == 1  # the example's canary, with steps and analysis a test can drive quickly
    deployments.write_text(declared)
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    registry = state_of(repo)["models"]["churn-predictor"]
    assert registry["stages"] == {"staging": 2, "production": 1}


def row(i: int, customer_id: str | None = None) -> dict[str, Any]:
    """The ``i``-th prediction request: the example's row with customer ``customer_id``
    (default ``C{i:06d}``) and feature values that vary with ``i`` (the same ``i`` always gives
    the same request)."""
    return dict(
        ROW,
        customer_id=customer_id or f"C{i:06d}",
        total_orders_30d=(i * 7) % 23,
        avg_order_value=20.0 + (i * 37) % 1000 / 10.0,
        days_since_last_order=(i * 13) % 120,
        support_tickets_90d=(i * 3) % 6,
        login_frequency_7d=i % 8,
    )
