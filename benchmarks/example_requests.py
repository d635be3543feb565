"""Request rows drawn from the example's data, shared by the serving benchmarks: the
example model's inputs, floats where the guide's request model declares floats, ints for the
counts."""

from __future__ import annotations

from pathlib import Path

from mlctl.example.generator import FEATURES as EXAMPLE_FEATURES
from mlctl.example.generator import FLOAT_FEATURES

FEATURES = list(EXAMPLE_FEATURES)


def request_rows(csv: Path, n: int = 500) -> list[dict[str, float | int]]:
    """The first ``n`` rows of ``csv`` (the example's customer activity) with every feature
    present, as ``/predict`` bodies."""
    import pandas as pd

    sample = pd.read_csv(csv).head(n).dropna(subset=FEATURES)
    return [
        {f: (float(r[f]) if f in FLOAT_FEATURES else int(r[f])) for f in FEATURES}
        for _, r in sample.iterrows()
    ]
