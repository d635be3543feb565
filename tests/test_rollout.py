"""A canary end to end through the real serving app (TestClient) and the real operations.

A candidate that is as good is promoted through every step (the pin written back to git's
YAML); a candidate that is slower (a forest sixteen times larger) is aborted once both arms
hold the minimum samples. The split over 5,000 keyed requests is within 3 points of the
declared weight, routing is sticky by entity key, and no request fails while weights move.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import invoke, state_of
from mlctl.operations import rollout
from mlctl.serving.app import create_app
from mlctl.workspace import open_workspace
from rollout_support import prepare, row

DECISIONS: list[str] = []  # printed at the end of the session for the report


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Traffic:
    """Keyed requests through the app; every status and arm kept."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.statuses: list[int] = []
        self.arms: dict[str, str] = {}
        self.sent = 0

    def send(self, n: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _ in range(n):
            i = self.sent % 20_000
            self.sent += 1
            response = self.client.post("/predict", json=row(i))
            self.statuses.append(response.status_code)
            arm = response.headers.get("x-mlctl-arm", "none")
            counts[arm] = counts.get(arm, 0) + 1
            self.arms[f"C{i:06d}"] = arm
            if arm == "candidate":
                assert response.headers["x-mlctl-version"] == "2" and response.json()["version"] == 2
        return counts


def step(repo: Path, client: TestClient) -> rollout.RolloutResult:
    client.app.state.service.writer.flush()  # type: ignore[attr-defined]
    result = rollout.step(open_workspace(repo, "dev"), "churn-api", actor="test")
    if result.verdict != "wait":
        tests = result.statistics.get("tests", {})
        stats = ", ".join(
            f"{name}: stat={t['statistic']} p={t['p_value']} effect={t['effect']} rejected={t['rejected']}"
            for name, t in tests.items()
        )
        arms = " ".join(
            f"{a}[n={result.statistics[a]['requests']} p95={result.statistics[a]['p95_ms']}ms "
            f"err={result.statistics[a]['error_rate']}]"
            for a in ("stable", "candidate")
            if a in result.statistics
        )
        DECISIONS.append(f"{repo.parent.name}: {result.verdict} -- {result.reason} | {arms} | {stats}")
    return result


def weight_is(client: TestClient, weight: float | None) -> Any:
    def check() -> bool:
        arms = client.app.state.service.follower.arms  # type: ignore[attr-defined]
        return (arms is None and weight is None) or (arms is not None and arms.weight == weight)

    return check


def drive(repo: Path, client: TestClient, traffic: Traffic, limit: int = 40) -> rollout.RolloutResult:
    """Send traffic and step until the analysis gives a verdict other than wait."""
    for _ in range(limit):
        traffic.send(100)
        result = step(repo, client)
        if result.verdict != "wait":
            return result
    raise AssertionError("the analysis never decided")


@pytest.mark.slow
def test_as_good_candidate_is_promoted_through_every_step(applied: Path) -> None:
    prepare(applied, ("random_state: 42", "random_state: 7"))  # another forest, as good
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05, poll_interval=0.05)
    with TestClient(app) as client:
        traffic = Traffic(client)
        assert traffic.send(20) == {"none": 20}  # no rollout yet: no arm header
        started = step(applied, client)
        assert started.verdict == "start" and started.record is not None and started.record.weight == 20
        wait_for(weight_is(client, 20.0), "the 20% step to be served")

        # weights change while requests are in flight: none may fail
        stop = threading.Event()
        background: list[int] = []

        def hammer() -> None:
            i = 50_000
            while not stop.is_set():
                background.append(client.post("/predict", json=row(i)).status_code)
                i += 1

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            advanced = drive(applied, client, traffic)
            assert advanced.verdict == "advance", advanced.reason
            assert advanced.record is not None and advanced.record.weight == 50
            wait_for(weight_is(client, 50.0), "the 50% step to be served")
        finally:
            stop.set()
            thread.join()
        assert background and set(background) == {200}

        # the split over 5,000 keyed requests, and stickiness
        before = dict(traffic.arms)
        offset = traffic.sent
        counts = traffic.send(5000)
        share = counts.get("candidate", 0) / 5000
        assert abs(share - 0.50) <= 0.03, counts
        again = Traffic(client)
        again.sent = offset
        again.send(300)
        assert all(again.arms[k] == traffic.arms[k] for k in again.arms)  # sticky at one weight
        moved_back = [k for k, arm in before.items() if arm == "candidate" and traffic.arms[k] == "stable"]
        assert not moved_back  # a growing weight never sends a customer back to stable

        promoted = drive(applied, client, traffic)
        assert promoted.verdict == "promote", promoted.reason
        wait_for(weight_is(client, None), "the rollout to end")
        wait_for(lambda: client.get("/model").json()["version"] == 2, "v2 to serve production")
        assert traffic.send(50) == {"none": 50}
    assert set(traffic.statuses) == {200}

    state = state_of(applied)
    assert state["models"]["churn-predictor"]["stages"]["production"] == 2
    record = state["rollouts"]["churn-api"]
    assert record["status"] == "promoted" and record["weight"] == 100
    assert [d["verdict"] for d in record["decisions"]] == ["advance", "advance", "promote"]
    assert [d["weight"] for d in record["decisions"]] == [20, 50, 100]
    assert record["decisions"][1]["statistics"]["tests"]["latency"]["rejected"] is False
    models = (applied / "environments" / "dev" / "models.yaml").read_text()
    assert "production: 2" in models and "# Stage pins." in models  # written back, comments kept
    status = invoke(applied, "rollout", "status", "churn-api", "-e", "dev", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["rollout"]["status"] == "promoted"


@pytest.mark.slow
def test_slower_candidate_is_aborted_after_the_minimum_samples(applied: Path) -> None:
    # a genuinely slower model: brute-force nearest neighbours over the training set, through
    # the whole pipeline (no compiled fast path); its gates relaxed so that it is registered
    prepare(
        applied,
        ("ensemble.RandomForestClassifier", "neighbors.KNeighborsClassifier"),
        (r"      params:\n(        .*\n)+", "      params: {n_neighbors: 200, algorithm: brute}\n"),
        (r"min_accuracy: 0\.75", "min_accuracy: 0.5"),
        (r"min_auc: 0\.80", "min_auc: 0.5"),
        (r"max_regression: 0\.02", "max_regression: 0.5"),
    )
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05, poll_interval=0.05)
    with TestClient(app) as client:
        traffic = Traffic(client)
        assert step(applied, client).verdict == "start"
        wait_for(weight_is(client, 20.0), "the 20% step to be served")
        sent_before_verdict = 0
        for _ in range(40):
            counts = traffic.send(100)
            sent_before_verdict += counts.get("candidate", 0)
            result = step(applied, client)
            if result.verdict != "wait":
                break
        assert result.verdict == "abort", result.reason
        assert "latency" in (result.reason or "")
        assert result.statistics["candidate"]["requests"] >= 150
        assert result.statistics["stable"]["requests"] >= 150
        wait_for(weight_is(client, None), "the candidate to leave the traffic")
        assert traffic.send(100) == {"none": 100}
    assert set(traffic.statuses) == {200}
    state = state_of(applied)
    assert state["models"]["churn-predictor"]["stages"]["production"] == 1
    record = state["rollouts"]["churn-api"]
    assert record["status"] == "aborted" and record["weight"] == 0 and "latency" in record["reason"]
    assert "production: 1" in (applied / "environments" / "dev" / "models.yaml").read_text()
    # a person cannot abort what has ended: one clear line, exit 1
    again = invoke(applied, "rollout", "abort", "churn-api", "-e", "dev")
    assert again.exit_code == 1 and "no running rollout" in again.output


def test_rollout_commands_refuse_what_is_not_declared(applied: Path) -> None:
    idle = invoke(applied, "rollout", "step", "churn-api", "-e", "dev")  # the example's canary
    assert idle.exit_code == 0 and "staging v1 already serves production" in idle.output
    deployments = applied / "environments" / "dev" / "deployments.yaml"
    deployments.write_text(re.sub(r"    rollout:\n(      .*\n)+", "", deployments.read_text()))
    result = invoke(applied, "rollout", "step", "churn-api", "-e", "dev")
    assert result.exit_code == 1 and "declares no rollout" in result.output
    result = invoke(applied, "rollout", "status", "nope", "-e", "dev")
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_print_decisions() -> None:
    """Not a check: shows the canary's decisions (pytest -s) for the record."""
    for line in DECISIONS:
        print(line)


def test_shadow_scores_every_request_off_the_response_path(applied: Path) -> None:
    """Shadow: the stable arm answers every request; the candidate scores the same rows in
    the shadow process after the answer is sent, logged as ``arm: shadow`` (here the candidate
    is v1 itself, set in state)."""
    from mlctl.providers.predlog import iter_records, prediction_log_dir
    from mlctl.state.document import RolloutRecord, State

    path = applied / "state" / "dev.json"
    state = State.from_json(path.read_text())
    state.rollouts["churn-api"] = RolloutRecord(strategy="shadow", stable_version=1, candidate_version=1)
    path.write_text(state.to_json())
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as client:
        wait_for(lambda: client.app.state.service.follower.arms is not None, "the shadow to load")  # type: ignore[attr-defined]
        answers = [client.post("/predict", json=row(i)) for i in range(30)]
        assert {r.status_code for r in answers} == {200}
        assert {r.headers["x-mlctl-arm"] for r in answers} == {"stable"}
    records = list(iter_records(prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor")))
    shadow = {r["request_id"]: r for r in records if r.get("arm") == "shadow"}
    served = {r["request_id"]: r for r in records if r.get("arm") == "stable"}
    assert len(served) == 30 and set(shadow) == set(served)
    for request_id, record in shadow.items():
        assert record["status"] == 200
        assert record["predictions"][0]["probability"] == served[request_id]["predictions"][0]["probability"]
