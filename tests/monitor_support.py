"""Helpers shared by the monitor tests: prediction logs in the serving log's exact format,
built from the example data and the real production model (test_monitor_support.py checks
that the format round-trips through the serving package's reader)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from conftest import state_of
from mlctl.example.generator import FEATURES as EXAMPLE_FEATURES

FEATURES = list(EXAMPLE_FEATURES)  # the example model's inputs, in signature order


def log_dir(repo: Path, env: str = "dev", model: str = "churn-predictor") -> Path:
    return repo / ".mlctl" / "predictions" / env / model


def production(repo: Path, model: str = "churn-predictor") -> dict[str, Any]:
    registry = state_of(repo)["models"][model]
    number = registry["stages"]["production"]
    return next(v for v in registry["versions"] if v["version"] == number)


def activity_rows(repo: Path, n: int, seed: int = 0) -> pd.DataFrame:
    frame = pd.read_csv(repo / "data" / "customer_activity.csv")
    return frame.sample(n=n, random_state=seed, replace=len(frame) < n).reset_index(drop=True)


def write_log(
    repo: Path,
    rows: pd.DataFrame,
    *,
    version: int | None = None,
    latency_ms: float | Any = 5.0,
    status: int | Any = 200,
    when: datetime | None = None,
    part: str = "a",
    predict: bool = True,
) -> Path:
    """Write ``rows`` (feature columns + customer_id) as prediction-log lines of the production
    model (predictions computed by the real artifact unless ``predict`` is False)."""
    version_record = production(repo)
    version = version or version_record["version"]
    if predict:
        pipeline = joblib.load(repo / version_record["artifact"]["uri"])
        probability = pipeline.predict_proba(rows[FEATURES].astype(float))[:, -1]
    else:
        probability = np.full(len(rows), 0.5)
    when = when or datetime.now(UTC) - timedelta(minutes=5)
    folder = log_dir(repo) / f"date={when.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{when:%Y%m%dT%H%M%S%f}Z-{part}.jsonl"
    latencies = np.broadcast_to(np.asarray(latency_ms, dtype=float), (len(rows),))
    statuses = np.broadcast_to(np.asarray(status), (len(rows),))
    with path.open("a") as out:
        for i, row in enumerate(rows.itertuples(index=False)):
            values = row._asdict()
            p = float(probability[i])
            ok = int(statuses[i]) < 400
            record = {  # one /predict request (the log's format: mlctl.providers.predlog)
                "ts": (when + timedelta(milliseconds=i)).isoformat(),
                "request_id": f"r{part}{i}",
                "endpoint": "churn-api",
                "model": "churn-predictor",
                "version": version,
                "route": "/predict",
                "status": int(statuses[i]),
                "latency_ms": float(latencies[i]),
                "rows": 1 if ok else 0,
                "predictions": [
                    {
                        "entity": {"customer_id": values["customer_id"]},
                        "inputs": {f: _plain(values[f]) for f in FEATURES},
                        "prediction": "Yes" if p >= 0.5 else "No",
                        "probability": p,
                    }
                ]
                if ok
                else [],
            }
            out.write(json.dumps(record) + "\n")
    return path


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
