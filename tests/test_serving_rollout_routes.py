"""Rollouts on every prediction route: ``/predict``, ``/predict/batch``, MLflow's
``/invocations`` and the Open Inference Protocol's ``/v2/models/{name}/infer`` split traffic
the same way (sticky by entity key, one stable hash), answer with the arm in ``X-Mlctl-Arm``
and record it in the prediction log; in shadow mode the candidate scores the rows of every
route after the answer, logged as ``arm: shadow`` under the request's id.

Real apps (TestClient), real versions: v1 as the example trains it, v2 trained by a second
apply with shallower trees, so the two arms give different numbers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import rollout_support
from conftest import edit, invoke
from mlctl.example.generator import FEATURES as EXAMPLE_FEATURES
from mlctl.providers.predlog import iter_records, prediction_log_dir
from mlctl.serving.app import create_app
from mlctl.serving.service import bucket
from mlctl.state.document import RolloutRecord, State

FEATURES = list(EXAMPLE_FEATURES)  # the example model's inputs, in signature order


def row(i: int) -> dict[str, Any]:
    return rollout_support.row(i, customer_id=f"K{i:05d}")


def with_rollout(repo: Path, strategy: str, weight: float) -> None:
    """v2 trained into both stages by apply; production set back to v1 in state, and a
    rollout of v2 (the candidate) at ``weight`` percent recorded, as the operations do."""
    edit(repo / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 5")
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    path = repo / "state" / "dev.json"
    state = State.from_json(path.read_text())
    registry = state.models["churn-predictor"]
    assert registry.stages == {"staging": 2, "production": 2}
    registry.stages["production"] = 1
    state.rollouts["churn-api"] = RolloutRecord(
        strategy=strategy,
        stable_version=1,
        candidate_version=2,
        weight=weight,
    )
    path.write_text(state.to_json())


@pytest.fixture
def canary(applied: Path) -> Iterator[TestClient]:
    with_rollout(applied, "canary", 50.0)
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as client:
        wait_for_arms(client)
        yield client


def wait_for_arms(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.app.state.service.follower.arms is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the rollout candidate never loaded"
        time.sleep(0.05)


def oip(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tensors = [
        {
            "name": "customer_id",
            "shape": [len(rows)],
            "datatype": "BYTES",
            "data": [r["customer_id"] for r in rows],
        }
    ]
    for name in FEATURES:
        kind = "FP64" if name == "avg_order_value" else "INT64"
        data = [r[name] for r in rows]
        tensors.append({"name": name, "shape": [len(rows)], "datatype": kind, "data": data})
    return {"inputs": tensors}


def records(repo: Path) -> list[dict[str, Any]]:
    return list(iter_records(prediction_log_dir(repo, ".mlctl", "dev", "churn-predictor")))


def test_every_route_splits_by_the_same_sticky_hash(canary: TestClient, applied: Path) -> None:
    """Each key lands on the arm its hash gives, on all four routes; the candidate answers
    with its own version and numbers; the log records the arm and the arm's version."""
    seen: dict[str, set[str]] = {}
    probability: dict[tuple[str, str], float] = {}
    for i in range(120):
        one = row(i)
        key = one["customer_id"]
        want = "candidate" if bucket(key) < 5000 else "stable"
        version = "2" if want == "candidate" else "1"
        answers = {
            "/predict": canary.post("/predict", json=one),
            "/predict/batch": canary.post("/predict/batch", json=[one]),
            "/invocations": canary.post("/invocations", json={"dataframe_records": [one]}),
            "/v2": canary.post("/v2/models/churn-predictor/infer", json=oip([one])),
        }
        for route, response in answers.items():
            assert response.status_code == 200, (route, response.text)
            assert response.headers["x-mlctl-arm"] == want, (route, key)
            assert response.headers["x-mlctl-version"] == version, (route, key)
            seen.setdefault(want, set()).add(route)
        assert answers["/predict"].json()["version"] == int(version)
        assert answers["/predict/batch"].json()["version"] == int(version)
        assert answers["/v2"].json()["model_version"] == version
        label = answers["/predict"].json()["prediction"]
        assert answers["/invocations"].json() == {"predictions": [label]}
        outputs = {o["name"]: o["data"][0] for o in answers["/v2"].json()["outputs"]}
        assert outputs["predict"] == label
        assert outputs["probability"] == answers["/predict"].json()["probability"]
        probability[(want, key)] = answers["/predict"].json()["probability"]
    routes = {"/predict", "/predict/batch", "/invocations", "/v2"}
    assert seen == {"stable": routes, "candidate": routes}
    canary.app.state.service.writer.flush()  # type: ignore[attr-defined]
    logged = [r for r in records(applied) if r["status"] == 200]
    assert len(logged) == 4 * 120
    for record in logged:
        key = record["predictions"][0]["entity"]["customer_id"]
        arm = "candidate" if bucket(key) < 5000 else "stable"
        assert record["arm"] == arm and record["version"] == (2 if arm == "candidate" else 1), record
        assert record["predictions"][0]["probability"] == probability[(arm, key)]
    assert {r["route"] for r in logged} == {
        "/predict",
        "/predict/batch",
        "/invocations",
        "/v2/models/{name}/infer",
    }


def test_the_arms_are_different_models(canary: TestClient) -> None:
    """Not a tautology: v1 and v2 give different probabilities for some keys."""
    by_arm: dict[str, list[float]] = {"stable": [], "candidate": []}
    service = canary.app.state.service  # type: ignore[attr-defined]
    stable, candidate = service.follower.current, service.follower.arms.candidate
    assert (stable.version, candidate.version) == (1, 2)
    rows = [[row(i)[f] for f in FEATURES] for i in range(50)]
    by_arm["stable"] = [p for _, p in service.predict(stable, rows)]
    by_arm["candidate"] = [p for _, p in service.predict(candidate, rows)]
    assert by_arm["stable"] != by_arm["candidate"]


def test_shadow_scores_the_rows_of_every_route_after_the_answer(applied: Path) -> None:
    with_rollout(applied, "shadow", 0.0)
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    rows = [row(i) for i in range(6)]
    with TestClient(app) as client:
        wait_for_arms(client)
        service = client.app.state.service  # type: ignore[attr-defined]
        candidate = service.follower.arms.candidate
        answers = [
            client.post("/predict", json=rows[0]),
            client.post("/predict/batch", json=rows[:3]),
            client.post("/invocations", json={"dataframe_records": rows}),
            client.post("/v2/models/churn-predictor/infer", json=oip(rows[:2])),
        ]
        for response in answers:
            assert response.status_code == 200, response.text
            assert response.headers["x-mlctl-arm"] == "stable"
            assert response.headers["x-mlctl-version"] == "1"
        expected = service.predict(candidate, [[r[f] for f in FEATURES] for r in rows])
    logged = records(applied)
    served = {r["request_id"]: r for r in logged if r.get("arm") == "stable"}
    shadow = {r["request_id"]: r for r in logged if r.get("arm") == "shadow"}
    assert len(served) == 4 and set(shadow) == set(served)
    for request_id, record in shadow.items():
        assert record["version"] == 2 and record["status"] == 200 and record["route"] == "shadow"
        assert record["rows"] == served[request_id]["rows"]
        got = [(p["prediction"], p["probability"]) for p in record["predictions"]]
        assert got == expected[: record["rows"]]
        assert served[request_id]["version"] == 1
    assert service.shadow_dropped == 0


def test_no_rollout_no_arm(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as client:
        for response in (
            client.post("/predict", json=row(1)),
            client.post("/invocations", json={"dataframe_records": [row(1)]}),
            client.post("/v2/models/churn-predictor/infer", json=oip([row(1)])),
        ):
            assert response.status_code == 200 and "x-mlctl-arm" not in response.headers
    assert all("arm" not in r for r in records(applied))
