"""read_table, fingerprint_file and the data checks."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlctl.errors import MlctlError
from mlctl.ml.datachecks import run_checks
from mlctl.ml.fingerprint import fingerprint_file
from mlctl.ml.tables import read_table
from mlctl.spec.models import Dataset

CSV = """customer_id,event_timestamp,total_orders_30d,avg_order_value,plan,premium
00123,2024-01-01 10:00:00,3,12.5,gold,yes
00124,2024-01-02T11:00:00+02:00,,-4.2,silver,no
00125,2024-01-03,5,,bronze,
00126,2024-01-04,2,7.0,platinum,true
"""

SCHEMA = {
    "customer_id": "string",
    "total_orders_30d": "int",
    "avg_order_value": "float",
    "plan": "category",
    "premium": "bool",
}


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "activity.csv"
    path.write_text(CSV)
    return path


def test_fingerprint_is_sha256_of_bytes_and_imports_no_pandas(csv_path: Path) -> None:
    assert fingerprint_file(csv_path) == "sha256:" + hashlib.sha256(csv_path.read_bytes()).hexdigest()
    code = "import sys, mlctl.ml.fingerprint; print('pandas' in sys.modules or 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(MlctlError, match=r"nope\.csv"):
        fingerprint_file(csv_path.parent / "nope.csv")


def test_read_table_types_and_utc(csv_path: Path) -> None:
    df = read_table(csv_path, "csv", SCHEMA, "event_timestamp")
    assert len(df) == 4
    assert df["customer_id"].tolist()[0] == "00123"  # leading zeros kept
    assert str(df["event_timestamp"].dt.tz) == "UTC"
    assert df["event_timestamp"].iloc[1] == pd.Timestamp("2024-01-02T09:00", tz="UTC")
    assert df["total_orders_30d"].dtype == "float64"  # int with a null
    assert df["premium"].tolist()[:2] == [True, False]
    assert pd.isna(df["premium"].iloc[2])


def test_read_table_keeps_uncoercible_column_and_all_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x,t\n1,2024-01-01\nabc,2024-01-02\n")
    df = read_table(path, "csv", {"x": "int"}, "t")
    assert df["x"].tolist() == ["1", "abc"]
    assert len(df) == 2


def test_read_table_parquet_round_trip(tmp_path: Path, csv_path: Path) -> None:
    df = read_table(csv_path, "csv", SCHEMA, "event_timestamp")
    path = tmp_path / "a.parquet"
    df.to_parquet(path)
    again = read_table(path, "parquet", SCHEMA, "event_timestamp")
    assert again["event_timestamp"].equals(df["event_timestamp"])


def test_read_table_errors(tmp_path: Path) -> None:
    with pytest.raises(MlctlError, match=r"missing\.csv"):
        read_table(tmp_path / "missing.csv", "csv", None, None)
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(MlctlError, match=r"junk\.parquet"):
        read_table(junk, "parquet", None, None)


def dataset(**checks: object) -> Dataset:
    return Dataset.model_validate(
        {"path": "x.csv", "timestamp": "event_timestamp", "schema": SCHEMA, "checks": checks}
    )


def by_name(results: list) -> dict:
    return {r.name: r for r in results}


def test_checks_each_kind(csv_path: Path) -> None:
    df = read_table(csv_path, "csv", SCHEMA, "event_timestamp")
    spec = dataset(
        min_rows=10000,
        max_null_ratio=0.1,
        columns={
            "avg_order_value": {"min": 0, "max": 100, "not_null": True},
            "plan": {"allowed": ["gold", "silver", "bronze"], "max_null_ratio": 0.5},
            "ghost": {"not_null": True},
        },
    )
    results = by_name(run_checks(df, spec))
    assert results["schema"].passed
    assert not results["min_rows"].passed
    assert results["min_rows"].detail == "4 rows < min_rows 10000"
    assert not results["max_null_ratio"].passed
    low = results["columns.avg_order_value.min"]
    assert not low.passed
    assert low.detail == "avg_order_value has 1 values below min 0 (e.g. -4.2)"
    assert results["columns.avg_order_value.max"].passed
    assert not results["columns.avg_order_value.not_null"].passed
    allowed = results["columns.plan.allowed"]
    assert not allowed.passed and "'platinum'" in allowed.detail
    assert results["columns.plan.max_null_ratio"].passed
    assert not results["columns.ghost.not_null"].passed
    assert "missing" in results["columns.ghost.not_null"].detail


def test_checks_pass_on_good_data(csv_path: Path) -> None:
    df = read_table(csv_path, "csv", SCHEMA, "event_timestamp")
    spec = dataset(min_rows=2, max_null_ratio=0.5, columns={"total_orders_30d": {"min": 0}})
    assert all(r.passed for r in run_checks(df, spec))


def test_schema_check_reports_missing_and_uncoercible(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,event_timestamp,total_orders_30d\n1,2024-01-01,abc\n2,soon,3\n")
    df = read_table(path, "csv", SCHEMA, "event_timestamp")
    result = by_name(run_checks(df, dataset()))["schema"]
    assert not result.passed
    assert "missing columns avg_order_value, plan, premium" in result.detail
    assert "total_orders_30d has 1 values that are not int (e.g. 'abc')" in result.detail
    assert "event_timestamp has 1 values that are not datetime" in result.detail
