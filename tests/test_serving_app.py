"""The serving app in-process (TestClient): API, validation, auth, limits, metrics, log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlctl.providers.predlog import prediction_log_dir, read_predictions, read_requests
from mlctl.serving.app import create_app
from mlctl.state.document import State
from serving_helpers import ROW


@pytest.fixture
def client(applied: Path):
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as c:
        yield c


def test_predict_happy_path(client: TestClient, applied: Path) -> None:
    r = client.post("/predict", json=ROW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer_id"] == "C000001"
    assert body["prediction"] in ("Yes", "No")
    assert 0.0 <= body["probability"] <= 1.0
    assert body["model"] == "churn-predictor" and body["version"] == 1
    expected = "high" if body["probability"] >= 0.7 else "medium" if body["probability"] >= 0.4 else "low"
    assert body["risk_level"] == expected
    assert (body["prediction"] == "Yes") == (body["probability"] >= 0.5)


def test_prediction_equals_the_pipeline(client: TestClient, applied: Path) -> None:
    import joblib
    import pandas as pd

    state = State.from_json((applied / "state" / "dev.json").read_text())
    artifact = state.models["churn-predictor"].get(1).artifact  # type: ignore[union-attr]
    pipeline = joblib.load(applied / artifact.uri)
    rows = [
        dict(ROW, total_orders_30d=i, avg_order_value=10.0 * i, days_since_last_order=5 * i)
        for i in range(30)
    ]
    r = client.post("/predict/batch", json=rows)
    assert r.status_code == 200, r.text
    frame = pd.DataFrame([{k: v for k, v in row.items() if k != "customer_id"} for row in rows])
    proba = pipeline.predict_proba(frame)[:, -1]
    got = [p["probability"] for p in r.json()["predictions"]]
    assert got == [float(p) for p in proba]


def test_integral_floats_are_integers(client: TestClient) -> None:
    exact = client.post("/predict", json=ROW).json()
    r = client.post("/predict", json=dict(ROW, total_orders_30d=3.0))
    assert r.status_code == 200, r.text
    assert r.json()["probability"] == exact["probability"]


def test_batch_is_one_call_and_keeps_order(client: TestClient) -> None:
    rows = [dict(ROW, customer_id=f"C{i}", days_since_last_order=i) for i in range(50)]
    r = client.post("/predict/batch", json=rows)
    assert r.status_code == 200
    out = r.json()
    assert [p["customer_id"] for p in out["predictions"]] == [f"C{i}" for i in range(50)]
    assert out["version"] == 1
    single = [client.post("/predict", json=row).json()["probability"] for row in rows[:5]]
    assert single == [p["probability"] for p in out["predictions"][:5]]
    assert client.post("/predict/batch", json=[]).json()["predictions"] == []


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        (
            {k: v for k, v in ROW.items() if k not in ("avg_order_value", "customer_id")},
            "avg_order_value",
            "missing",
        ),
        (dict(ROW, total_orders_30d="many"), "total_orders_30d", "int_type"),
        (dict(ROW, total_orders_30d=2.5), "total_orders_30d", "int_type"),
        (dict(ROW, avg_order_value="55"), "avg_order_value", "float_type"),
        (dict(ROW, avg_order_value=1e300), "avg_order_value", "less_than_equal"),
        (dict(ROW, login_frequency_7d=True), "login_frequency_7d", "float_type"),
        (dict(ROW, customer_id=17), "customer_id", "string_type"),
    ],
)
def test_invalid_input_is_422_naming_the_field(client: TestClient, body: dict, field: str, kind: str) -> None:
    r = client.post("/predict", json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and e["type"] == kind for e in errors), errors


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b"null", b"42", b'"text"', b"\xff\xfe", b'{"avg_order_value": NaN}']
)
def test_malformed_bodies_never_500(client: TestClient, raw: bytes) -> None:
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    r = client.post("/predict/batch", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text


def test_batch_errors_name_row_and_field(client: TestClient) -> None:
    r = client.post("/predict/batch", json=[ROW, dict(ROW, avg_order_value="x")])
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", 1, "avg_order_value"]


def test_missing_features_without_entity_key_is_422(client: TestClient) -> None:
    r = client.post("/predict", json={"total_orders_30d": 1})
    assert r.status_code == 422, r.text
    fields = {e["loc"][-1] for e in r.json()["detail"]}
    assert {"avg_order_value", "days_since_last_order"} <= fields


def stale_and_live_customers(repo: Path, ttl_days: int = 90) -> tuple[str, str]:
    """A customer whose latest snapshot is older than the view's ttl, and one within it."""
    import pandas as pd

    frame = pd.read_csv(repo / "data" / "customer_activity.csv")
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    age = pd.Timestamp.now(tz="UTC") - frame.groupby("customer_id")["event_timestamp"].max()
    stale = age[age > pd.Timedelta(days=ttl_days + 1)]
    live = age[age < pd.Timedelta(days=ttl_days - 30)]
    assert len(stale) and len(live), "the example data has both quiet and active customers"
    return str(stale.index[0]), str(live.index[0])


def test_entity_key_only_with_expired_online_values_is_a_clear_422(client: TestClient, applied: Path) -> None:
    """A customer quiet for longer than the view's ttl: the store withholds the values and the
    answer names the feature and why, instead of predicting on stale or imputed values."""
    stale, _ = stale_and_live_customers(applied)
    r = client.post("/predict", json={"customer_id": stale})
    assert r.status_code == 422, r.text
    assert "total_orders_30d" in r.text


def test_entity_key_only_with_live_online_values_predicts(client: TestClient, applied: Path) -> None:
    """The example data ends the day it is generated, so an active customer is answered from
    the online store alone (the guide's request by customer id)."""
    _, live = stale_and_live_customers(applied)
    r = client.post("/predict", json={"customer_id": live})
    assert r.status_code == 200, r.text
    assert r.json()["customer_id"] == live and 0.0 <= r.json()["probability"] <= 1.0


def test_health_ready_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["version"] == 1 and ready["verified"] is True
    info = client.get("/model").json()
    assert info["name"] == "churn-predictor" and info["version"] == 1
    assert info["metrics"]["auc"] > 0.5
    assert info["signature"]["inputs"][0]["name"] == "total_orders_30d"
    assert info["predictor"] == "compiled-forest" and info["predictor_note"] is None


def test_metrics_content(client: TestClient) -> None:
    client.post("/predict", json=ROW)
    client.post("/predict", json={"total_orders_30d": "x"})
    text = client.get("/metrics").text
    assert 'mlctl_requests_total{route="/predict",status="200"} 1.0' in text
    assert 'mlctl_requests_total{route="/predict",status="422"} 1.0' in text
    assert 'mlctl_request_duration_seconds_bucket{le="0.01",route="/predict"}' in text
    assert 'mlctl_predictions_total{model="churn-predictor"' in text
    assert "mlctl_prediction_value_bucket" in text
    assert 'mlctl_model_info{model="churn-predictor"' in text and 'version="1"' in text
    assert "mlctl_model_ready 1.0" in text


def test_openapi_describes_the_signature(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    features = {
        "total_orders_30d",
        "avg_order_value",
        "days_since_last_order",
        "support_tickets_90d",
        "login_frequency_7d",
    }
    assert features | {"customer_id"} == set(schema["properties"])
    assert schema["properties"]["total_orders_30d"]["anyOf"][0]["type"] == "integer" or (
        schema["properties"]["total_orders_30d"]["type"] == "integer"
    )
    batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["type"] == "array"


def test_bearer_token(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", token="s3cret")
    with TestClient(app) as c:
        assert c.post("/predict", json=ROW).status_code == 401
        assert c.post("/predict", json=ROW, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/predict", json=ROW, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/model").status_code == 401
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200


def test_token_from_environment(applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCTL_SERVE_TOKEN", "from-env")
    with TestClient(create_app(applied, "dev", "churn-predictor")) as c:
        assert c.post("/predict", json=ROW).status_code == 401
        assert c.post("/predict", json=ROW, headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_body_size_limit(applied: Path) -> None:
    with TestClient(create_app(applied, "dev", "churn-predictor", max_body_bytes=2048)) as c:
        rows = [ROW] * 100
        r = c.post("/predict/batch", json=rows)
        assert r.status_code == 413
        r = c.post(
            "/predict/batch",
            content=json.dumps(rows).encode(),
            headers={"content-type": "application/json", "transfer-encoding": "chunked"},
        )
        assert r.status_code == 413
        assert c.post("/predict", json=ROW).status_code == 200


def test_prediction_log_contents(applied: Path) -> None:
    """One record per request: its own latency and status (failures included, logged by the
    middleware), the rows of a batch tied to it; the readers give one row per request and
    one per prediction."""
    app = create_app(applied, "dev", "churn-predictor", flush_interval=0.05, token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(app) as c:
        first = c.post("/predict", json=ROW, headers=auth).json()
        batch = c.post(
            "/predict/batch", json=[dict(ROW, customer_id="C2"), dict(ROW, customer_id="C3")], headers=auth
        ).json()
        assert c.post("/predict", json={"total_orders_30d": "bad"}, headers=auth).status_code == 422
        assert c.post("/predict", json=ROW).status_code == 401
        assert c.get("/health").status_code == 200  # not a prediction route: not logged
    directory = prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor")
    files = sorted(directory.glob("date=*/part-*.jsonl"))
    assert files and all(f.name.endswith(".jsonl") and f"-{os.getpid()}-" in f.name for f in files)
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [(r["route"], r["status"], r["rows"]) for r in lines] == [
        ("/predict", 200, 1),
        ("/predict/batch", 200, 2),
        ("/predict", 422, 0),
        ("/predict", 401, 0),
    ]
    record = lines[0]
    assert record["request_id"] == first["request_id"]
    assert record["endpoint"] == "churn-api" and record["model"] == "churn-predictor"
    assert all(r["version"] == 1 and r["latency_ms"] > 0 for r in lines)
    (item,) = record["predictions"]
    assert item["entity"] == {"customer_id": "C000001"}
    assert item["inputs"] == {k: v for k, v in ROW.items() if k != "customer_id"}
    assert item["prediction"] == first["prediction"] and item["probability"] == first["probability"]
    assert files[0].parent.name == f"date={record['ts'][:10]}"
    batch_ids = {p["request_id"] for p in batch["predictions"]}
    assert batch_ids == {lines[1]["request_id"]}
    requests = read_requests(directory)
    assert list(requests["status"]) == [200, 200, 422, 401]
    assert list(requests["rows"]) == [1, 2, 0, 0]
    frame = read_predictions(directory)
    assert list(frame["customer_id"]) == ["C000001", "C2", "C3"]
    assert list(frame["row"]) == [0, 0, 1]
    assert list(frame["request_id"])[1:] == [lines[1]["request_id"]] * 2
    assert str(frame["ts"].dt.tz) == "UTC"
    assert {"avg_order_value", "request_id", "probability"} <= set(frame.columns)
    assert "latency_ms" not in frame.columns  # a batch's latency is its request's, once


def test_server_error_is_logged_with_status_500(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", flush_interval=0.05)
    service = app.state.service

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        service.predict = broken
        assert c.post("/predict", json=ROW).status_code == 500
    requests = read_requests(prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor"))
    assert list(requests["status"]) == [500] and list(requests["version"]) == [1]


@pytest.mark.parametrize("route", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("shape", ["array", "object", "field"])
def test_deeply_nested_body_is_4xx_not_500(client: TestClient, route: str, shape: str) -> None:
    depth = 100_000
    if shape == "array":
        body = "[" * depth + "]" * depth
    elif shape == "object":
        body = '{"a":' * depth + "1" + "}" * depth
    else:  # nested just below the JSON decoder's limit, inside a field the model validates
        body = '{"avg_order_value": ' + "[" * 900 + "]" * 900 + "}"
        if route == "/predict/batch":
            body = "[" + body + "]"
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text[:300]
    assert client.post("/predict", json=ROW).status_code == 200


def test_no_production_version_is_503_not_500(repo: Path) -> None:
    with TestClient(create_app(repo, "dev", "churn-predictor")) as c:
        assert c.get("/ready").status_code == 503
        r = c.post("/predict", json=ROW)
        assert r.status_code == 503 and "no production version" in r.json()["detail"]
        assert c.get("/health").status_code == 200


def test_tampered_artifact_is_never_loaded(applied: Path) -> None:
    state = State.from_json((applied / "state" / "dev.json").read_text())
    artifact = state.models["churn-predictor"].get(1).artifact  # type: ignore[union-attr]
    path = applied / artifact.uri
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with TestClient(create_app(applied, "dev", "churn-predictor")) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503 and "tampered" in ready.json()["error"]
        assert c.post("/predict", json=ROW).status_code == 503


def test_unknown_model_is_a_user_error(applied: Path) -> None:
    from mlctl.errors import MlctlError

    with pytest.raises(MlctlError, match="did you mean 'churn-predictor'"):
        create_app(applied, "dev", "churn-predicter")


def test_entity_key_only_reads_fresh_online_features(applied: Path) -> None:
    """A request with only the entity key is answered from the online store, with the same
    prediction as when the client sends the stored feature values itself."""
    from datetime import UTC, datetime, timedelta

    from conftest import invoke

    fresh = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {"total_orders_30d": 7, "avg_order_value": 42.5, "days_since_last_order": 3,
              "support_tickets_90d": 4, "login_frequency_7d": 6}  # fmt: skip
    with (applied / "data" / "customer_activity.csv").open("a") as handle:
        handle.write(f"C000001,{fresh},7,42.5,3,4,6\n")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "materialize" in result.output
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as c:
        by_key = c.post("/predict", json={"customer_id": "C000001"})
        assert by_key.status_code == 200, by_key.text
        explicit = c.post("/predict", json={"customer_id": "C000001", **values})
        assert explicit.status_code == 200, explicit.text
        assert by_key.json()["probability"] == explicit.json()["probability"]
        unknown = c.post("/predict", json={"customer_id": "NOBODY"})
        assert unknown.status_code == 422 and "NOBODY" in unknown.text
