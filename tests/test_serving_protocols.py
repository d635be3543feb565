"""The standard inference protocols next to /predict: MLflow's scoring protocol
(``/invocations``) and the Open Inference Protocol v2 (KServe ``/v2``).

Payloads are those the protocols' documentation shows (MLflow's "Deploy MLflow models"
request formats; the Open Inference Protocol's REST inference request example), with the
example model's columns. Every answer must equal /predict's for the same rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import edit, invoke
from mlctl.example.generator import FEATURES as EXAMPLE_FEATURES
from mlctl.providers.predlog import prediction_log_dir, read_requests
from mlctl.serving.app import create_app
from serving_helpers import ROW

FEATURES = list(EXAMPLE_FEATURES)  # the example model's inputs, in signature order
ROWS = [
    dict(
        ROW,
        customer_id=f"C{i:06d}",
        total_orders_30d=i,
        avg_order_value=10.0 * i + 0.5,
        days_since_last_order=7 * i,
    )
    for i in range(4)
]


@pytest.fixture
def client(applied: Path) -> Iterator[TestClient]:
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as c:
        yield c


def expected(client: TestClient, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = client.post("/predict/batch", json=rows)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


# -- MLflow ---------------------------------------------------------------------------------


def mlflow_payloads() -> dict[str, Any]:
    """The four JSON request formats of MLflow's scoring server, as its docs write them."""
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": FEATURES, "data": [[r[f] for f in FEATURES] for r in ROWS]}
        },
        "dataframe_records": {"dataframe_records": [{f: r[f] for f in FEATURES} for r in ROWS]},
        "instances": {"instances": [{f: r[f] for f in FEATURES} for r in ROWS]},
        "inputs": {"inputs": {f: [r[f] for r in ROWS] for f in FEATURES}},
        "inputs_lists": {"inputs": [[r[f] for f in FEATURES] for r in ROWS]},
    }


@pytest.mark.parametrize(
    "form", ["dataframe_split", "dataframe_records", "instances", "inputs", "inputs_lists"]
)
def test_mlflow_invocations_equal_predict(client: TestClient, form: str) -> None:
    want = [p["prediction"] for p in expected(client, ROWS)]
    r = client.post("/invocations", json=mlflow_payloads()[form])
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}


def test_mlflow_csv_and_charset(client: TestClient) -> None:
    want = [p["prediction"] for p in expected(client, ROWS)]
    csv = ",".join(FEATURES) + "\n" + "\n".join(",".join(str(r[f]) for f in FEATURES) for r in ROWS) + "\n"
    r = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want}
    r = client.post(
        "/invocations",
        content=json.dumps(mlflow_payloads()["dataframe_split"]),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json() == {"predictions": want}
    r = client.post("/invocations", content=csv, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error_code"] == "BAD_REQUEST"
    r = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv; charset=latin-1"})
    assert r.status_code == 415


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"dataframe_records": [dict(ROW, avg_order_value="lots")]}, "dataframe_records[0].avg_order_value"),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [[1, 2.0, "x", 1, 1]]}},
            "dataframe_split.data[0][2] (days_since_last_order)",
        ),
        ({"dataframe_split": {"columns": FEATURES[:4], "data": [[1, 2.0, 3, 1]]}}, "login_frequency_7d"),
        ({"inputs": {"total_orders_30d": [1, 2], "avg_order_value": [1.0]}}, "avg_order_value has 1"),
        ({"instances": [[1, 2, 3]]}, "instances[0]"),
        ({"inputs": [[1, 2.0, 3, 4, 1e300]]}, "inputs[0][4] (login_frequency_7d)"),
        ({"dataframe_records": [ROW], "instances": [ROW]}, "exactly one of"),
        ({"data": [ROW]}, "exactly one of"),
        ([ROW], "got a list"),
    ],
)
def test_mlflow_bad_payload_is_400_naming_the_field(client: TestClient, body: Any, named: str) -> None:
    r = client.post("/invocations", json=body)
    assert r.status_code == 400, r.text
    error = r.json()
    assert set(error) == {"error_code", "message"} and error["error_code"] == "BAD_REQUEST"
    assert named in error["message"], error["message"]


def test_mlflow_malformed_and_csv_errors(client: TestClient) -> None:
    for raw in (b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        r = client.post("/invocations", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST", r.text[:200]
    csv = ",".join(FEATURES) + "\n1,2.0,many,1,1\n"
    r = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "CSV row 1, column days_since_last_order" in r.json()["message"]


# -- Open Inference Protocol ----------------------------------------------------------------


def oip_request(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The protocol's inference request example: one tensor per input, with the model's columns."""
    types = {"avg_order_value": "FP64"}
    return {
        "id": "42",
        "inputs": [
            {"name": f, "shape": [len(rows)], "datatype": types.get(f, "INT64"), "data": [r[f] for r in rows]}
            for f in FEATURES
        ],
        **extra,
    }


def test_oip_health_metadata_and_ready(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "mlctl"
    meta = client.get("/v2/models/churn-predictor").json()
    assert meta["name"] == "churn-predictor" and meta["versions"] == ["1"]
    signature = client.get("/model").json()["signature"]
    kinds = {"int": "INT64", "float": "FP64", "bool": "BOOL"}
    want = {"customer_id": "BYTES"} | {i["name"]: kinds.get(i["type"], "BYTES") for i in signature["inputs"]}
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == want
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]][:2] == ["predict", "probability"]
    assert client.get("/v2/models/churn-predictor/ready").json() == {"name": "churn-predictor", "ready": True}
    assert client.get("/v2/models/churn-predictor/versions/1/ready").json()["ready"] is True
    missing = client.get("/v2/models/other")
    assert missing.status_code == 404 and "other" in missing.json()["error"]
    assert client.get("/v2/models/churn-predictor/versions/9").status_code == 404


@pytest.mark.parametrize(
    "path", ["/v2/models/churn-predictor/infer", "/v2/models/churn-predictor/versions/1/infer"]
)
def test_oip_infer_equals_predict(client: TestClient, path: str) -> None:
    want = expected(client, ROWS)
    r = client.post(path, json=oip_request(ROWS))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "churn-predictor" and body["model_version"] == "1" and body["id"] == "42"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["data"] == [p["prediction"] for p in want]
    assert outputs["predict"]["datatype"] == "BYTES" and outputs["predict"]["shape"] == [len(ROWS)]
    assert outputs["probability"]["data"] == [p["probability"] for p in want]
    assert outputs["probability"]["datatype"] == "FP64"


def test_oip_outputs_entity_key_and_one_row_tensor(client: TestClient) -> None:
    want = expected(client, ROWS)
    request = oip_request(ROWS, outputs=[{"name": "probability"}])
    request["inputs"].append({"name": "customer_id", "shape": [len(ROWS), 1], "datatype": "BYTES",
                              "data": [[r["customer_id"]] for r in ROWS]})  # fmt: skip
    r = client.post("/v2/models/churn-predictor/infer", json=request)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["probability"]
    assert r.json()["outputs"][0]["data"] == [p["probability"] for p in want]
    # the KServe sklearn example: one [N, F] tensor of rows in the signature's input order
    rows = {"inputs": [{"name": "input-0", "shape": [len(ROWS), len(FEATURES)], "datatype": "FP64",
                        "data": [[r[f] for f in FEATURES] for r in ROWS]}]}  # fmt: skip
    r = client.post("/v2/models/churn-predictor/infer", json=rows)
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outputs["probability"] == [p["probability"] for p in want]
    assert len(r.json()["id"]) == 32  # no id given: the request id of the prediction log


def bad(rows: list[dict[str, Any]], change: Any) -> dict[str, Any]:
    request = oip_request(rows)
    change(request)
    return request


@pytest.mark.parametrize(
    ("request_body", "named"),
    [
        (
            bad(ROWS, lambda q: q["inputs"][1]["data"].__setitem__(2, "x")),
            "inputs[1] (avg_order_value).data[2]",
        ),
        (bad(ROWS, lambda q: q["inputs"].pop(3)), "support_tickets_90d"),
        (bad(ROWS, lambda q: q["inputs"][0].__setitem__("shape", [3])), "inputs[0] (total_orders_30d).data"),
        (
            bad(ROWS, lambda q: q["inputs"][1].__setitem__("datatype", "BYTES")),
            "inputs[1] (avg_order_value).datatype",
        ),
        (
            bad(ROWS, lambda q: q["inputs"][2].__setitem__("datatype", "FP128")),
            "inputs[2] (days_since_last_order).datatype",
        ),
        (bad(ROWS, lambda q: q["inputs"][0].__setitem__("name", "orders")), "inputs[0] (orders)"),
        (bad(ROWS, lambda q: q.__setitem__("outputs", [{"name": "output0"}])), "outputs[0].name"),
        (bad(ROWS, lambda q: q.__setitem__("outputs", [{"name": {}}])), "outputs[0].name"),
        (
            bad(ROWS, lambda q: q["inputs"][0].__setitem__("datatype", ["INT64"])),
            "inputs[0] (total_orders_30d).datatype",
        ),
        ({"inputs": []}, "inputs"),
        ([1, 2], "inputs"),
    ],
)
def test_oip_bad_request_is_400_naming_the_field(client: TestClient, request_body: Any, named: str) -> None:
    r = client.post("/v2/models/churn-predictor/infer", json=request_body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and named in r.json()["error"], r.json()
    other = client.post("/v2/models/other/infer", json=oip_request(ROWS))
    assert other.status_code == 404 and set(other.json()) == {"error"}
    version = client.post("/v2/models/churn-predictor/versions/7/infer", json=oip_request(ROWS))
    assert version.status_code == 404


# -- the same guard, metrics, log and OpenAPI document as /predict ---------------------------


def test_log_metrics_token_and_openapi(applied: Path) -> None:
    app = create_app(applied, "dev", "churn-predictor", flush_interval=0.05, token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(app) as c:
        ok = c.post("/invocations", json=mlflow_payloads()["dataframe_records"], headers=auth)
        assert ok.status_code == 200, ok.text
        assert c.post("/invocations", json={"data": []}, headers=auth).status_code == 400
        denied = c.post("/invocations", json=mlflow_payloads()["dataframe_records"])
        assert denied.status_code == 401 and denied.json()["error_code"] == "UNAUTHENTICATED"
        infer = c.post("/v2/models/churn-predictor/infer", json=oip_request(ROWS[:2]), headers=auth)
        assert infer.status_code == 200, infer.text
        denied = c.post("/v2/models/churn-predictor/infer", json=oip_request(ROWS))
        assert denied.status_code == 401 and "error" in denied.json()
        assert c.get("/v2/health/ready").status_code == 200  # probes need no token
        assert c.get("/ping").status_code == 200
        metrics = c.get("/metrics", headers=auth).text
        spec = c.get("/openapi.json").json()
    assert 'mlctl_requests_total{route="/invocations",status="200"} 1.0' in metrics
    assert 'mlctl_requests_total{route="/invocations",status="400"} 1.0' in metrics
    assert 'mlctl_requests_total{route="/v2/models/{name}/infer",status="200"} 1.0' in metrics
    assert 'mlctl_predictions_total{model="churn-predictor"' in metrics
    lines = [
        json.loads(line)
        for f in sorted(
            prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor").glob("date=*/part-*.jsonl")
        )
        for line in f.read_text().splitlines()
    ]
    assert [(r["route"], r["status"], r["rows"]) for r in lines] == [
        ("/invocations", 200, len(ROWS)),
        ("/invocations", 400, 0),
        ("/invocations", 401, 0),
        ("/v2/models/{name}/infer", 200, 2),
        ("/v2/models/{name}/infer", 401, 0),
    ]
    assert lines[3]["predictions"][0]["inputs"] == {f: ROWS[0][f] for f in FEATURES}
    assert all(r["version"] == 1 for r in lines)
    requests = read_requests(prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor"))
    assert list(requests["rows"]) == [len(ROWS), 0, 0, 2, 0]
    for path in ("/invocations", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        assert "requestBody" in spec["paths"][path]["post"], path
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready"):
        assert "get" in spec["paths"][path], path


def test_protocols_follow_a_hot_swap(applied: Path) -> None:
    edit(applied / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 6")
    assert invoke(applied, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    app = create_app(applied, "dev", "churn-predictor", token=None, flush_interval=0.05)
    with TestClient(app) as c:
        assert (
            c.post("/v2/models/churn-predictor/infer", json=oip_request(ROWS)).json()["model_version"] == "2"
        )
        result = invoke(applied, "rollback", "churn-predictor", "-e", "dev", "--reason", "test")
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = c.post("/v2/models/churn-predictor/infer", json=oip_request(ROWS))
            if r.json()["model_version"] == "1":
                break
            time.sleep(0.05)
        assert r.json()["model_version"] == "1"
        want = [p["prediction"] for p in expected(c, ROWS)]
        assert c.post("/invocations", json=mlflow_payloads()["dataframe_split"]).json() == {
            "predictions": want
        }
        assert c.get("/v2/models/churn-predictor").json()["versions"] == ["1"]
