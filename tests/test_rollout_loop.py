"""A rollout in the loop: ``plan`` shows its next step and why without changing anything, and
``monitor run`` steps it (start, advance, promote with the pin written back, or abort on the
delayed labels' verdict), through the real operations on the applied example. The prediction
log is written in the serving log's format with an ``arm`` per request (what the serving app
records during a rollout, see test_rollout.py for the app itself)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from conftest import invoke, state_of
from monitor_support import FEATURES, activity_rows, log_dir
from rollout_support import prepare


def write_arms(repo: Path, n: int, *, wrong: str = "", part: str = "a", seed: int = 0) -> None:
    """``n`` requests per arm (stable v1, candidate v2), 5 ms each, keyed by customer; each
    prediction is the label written to churn_outcomes unless its arm is ``wrong``."""
    rows = activity_rows(repo, 2 * n, seed=seed)
    now = datetime.now(UTC)
    folder = log_dir(repo) / f"date={now.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    with (folder / f"part-{now:%Y%m%dT%H%M%S%f}Z-{part}.jsonl").open("w") as out:
        for i, row in enumerate(rows.itertuples(index=False)):
            values = row._asdict()
            arm, version = ("stable", 1) if i % 2 == 0 else ("candidate", 2)
            customer = f"L{part}{i:05d}"
            truth = "Yes" if i % 4 < 2 else "No"
            predicted = truth if arm != wrong or i % 10 < 3 else ("No" if truth == "Yes" else "Yes")
            record = {
                "ts": (now + timedelta(microseconds=i)).isoformat(),
                "request_id": f"{part}{i}",
                "endpoint": "churn-api",
                "model": "churn-predictor",
                "version": version,
                "arm": arm,
                "route": "/predict",
                "status": 200,
                "latency_ms": 5.0 + (i % 7) * 0.1,
                "rows": 1,
                "predictions": [
                    {
                        "entity": {"customer_id": customer},
                        "inputs": {f: float(values[f]) for f in FEATURES},
                        "prediction": predicted,
                        "probability": 0.3 + (i % 5) * 0.01,
                    }
                ],
            }
            out.write(json.dumps(record) + "\n")
            labels.append((customer, (now + timedelta(days=1)).isoformat(), truth))
    outcomes = repo / "data" / "churn_outcomes.csv"
    frame = pd.DataFrame(labels, columns=["customer_id", "event_timestamp", "churned"])
    frame.to_csv(outcomes, mode="a", header=not outcomes.exists(), index=False)


def rollout_json(repo: Path) -> dict:
    result = invoke(repo, "plan", "-e", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    (rollout,) = json.loads(result.stdout)["mlctl"]["rollouts"]
    return dict(rollout)


def test_plan_shows_the_next_step_and_why_and_changes_nothing(applied: Path) -> None:
    prepare(applied, ("random_state: 42", "random_state: 7"))
    state_file = applied / "state" / "dev.json"

    text = invoke(applied, "plan", "-e", "dev")
    assert text.exit_code == 0, text.output
    assert "endpoint.churn-api rollout canary of staging v2 next to v1: start at 20%" in text.stdout
    assert text.stdout.rstrip().endswith("No changes. The environment matches the configuration.")
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0  # not a change

    assert invoke(applied, "rollout", "step", "churn-api", "-e", "dev").exit_code == 0
    write_arms(applied, 100)
    before = state_file.read_bytes()
    waiting = invoke(applied, "plan", "-e", "dev").stdout
    assert "endpoint.churn-api rollout canary of staging v2 next to v1: waiting at 20%" in waiting
    assert "waiting for 150 requests per arm (stable 100, candidate 100)" in waiting

    write_arms(applied, 200, part="b", seed=1)
    text = invoke(applied, "plan", "-e", "dev").stdout
    assert "endpoint.churn-api rollout canary of staging v2 next to v1: step 20% -> 50%" in text
    assert "candidate v2 vs v1: 300 vs 300 requests, p95" in text
    assert "accuracy 100.00% vs 100.00% (300 vs 300 labelled)" in text
    assert "advance: no test rejected at alpha 0.05 (Holm, 4 tests)" in text
    rollout = rollout_json(applied)
    assert rollout["verdict"] == "advance" and (rollout["weight"], rollout["next_weight"]) == (20, 50)
    assert rollout["statistics"]["tests"]["accuracy"]["rejected"] is False
    comment = invoke(applied, "plan", "-e", "dev", "--format", "markdown").stdout
    assert "**Rollouts**" in comment and "`endpoint.churn-api`: step 20% -&gt; 50%" in comment
    no_refresh = invoke(applied, "plan", "-e", "dev", "--no-refresh").stdout
    assert "not analyzed (--no-refresh" in no_refresh
    assert state_file.read_bytes() == before  # plan never writes


def test_monitor_run_advances_and_promotes_with_the_pin_written_back(applied: Path) -> None:
    prepare(applied, ("random_state: 42", "random_state: 7"))
    named = invoke(applied, "monitor", "run", "-e", "dev", "churn-serving")
    assert "rollout" not in named.stdout and "rollouts" not in state_of(applied)  # named: not stepped
    started = invoke(applied, "monitor", "run", "-e", "dev")
    assert "endpoint.churn-api rollout canary of staging v2 next to v1: start at 20%" in started.stdout
    decisions = []
    for part in "bcd":
        write_arms(applied, 200, part=part, seed=ord(part))
        ran = invoke(applied, "monitor", "run", "-e", "dev")
        assert ran.exit_code in (0, 2), ran.output
        decisions.append([line for line in ran.stdout.splitlines() if "rollout" in line or "vs v1" in line])
        if "promote" in ran.stdout:
            break
    print("\n".join(line for block in decisions for line in block))
    record = state_of(applied)["rollouts"]["churn-api"]
    assert [d["verdict"] for d in record["decisions"]] == ["advance", "advance", "promote"]
    assert state_of(applied)["models"]["churn-predictor"]["stages"]["production"] == 2
    assert "production: 2" in (applied / "environments" / "dev" / "models.yaml").read_text()
    assert "wrote production: 2 to environments/dev/models.yaml" in ran.stdout
    assert "accuracy" in record["decisions"][-1]["statistics"]["tests"]


def test_monitor_run_aborts_a_less_accurate_candidate_once_labels_arrive(applied: Path) -> None:
    prepare(applied, ("random_state: 42", "random_state: 7"))
    assert invoke(applied, "rollout", "step", "churn-api", "-e", "dev").exit_code == 0
    write_arms(applied, 300, wrong="candidate", part="w", seed=5)
    ran = invoke(applied, "monitor", "run", "-e", "dev", "--json")
    assert ran.exit_code in (0, 2), ran.output
    (outcome,) = json.loads(ran.stdout)["rollouts"]
    assert outcome["verdict"] == "abort" and "accuracy" in outcome["reason"], outcome
    assert outcome["statistics"]["tests"]["accuracy"]["rejected"] is True
    record = state_of(applied)["rollouts"]["churn-api"]
    assert record["status"] == "aborted" and record["weight"] == 0 and "accuracy" in record["reason"]
    assert state_of(applied)["models"]["churn-predictor"]["stages"]["production"] == 1
