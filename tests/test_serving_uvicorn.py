"""A real `mlctl serve` (uvicorn on 127.0.0.1): hot swap under load, rollback, schemathesis."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import edit, invoke
from mlctl.providers.local import LocalServing
from serving_helpers import ROW, Server


@pytest.fixture
def two_versions(applied: Path) -> Path:
    """v1 and v2 registered, v2 in production."""
    edit(applied / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 6")
    result = invoke(applied, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    return applied


def test_hot_swap_under_load_and_rollback(two_versions: Path) -> None:
    server = Server(two_versions)
    try:
        server.wait_ready()
        assert httpx.get(server.url + "/ready").json()["version"] == 2
        failures: list[str] = []
        versions: list[int] = []
        stop = threading.Event()

        def loop() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    r = client.post("/predict", json=ROW)
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        versions.append(r.json()["version"])

        threads = [threading.Thread(target=loop) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        result = invoke(two_versions, "rollback", "churn-predictor", "-e", "dev", "--reason", "test")
        returned = time.monotonic()
        assert result.exit_code == 0, result.output
        swapped = None
        while time.monotonic() - returned < 10:
            if httpx.post(server.url + "/predict", json=ROW).json()["version"] == 1:
                swapped = time.monotonic() - returned
                break
            time.sleep(0.01)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert swapped is not None, "the server never answered with the rolled-back version"
        print(f"\nrollback -> old version answering: {swapped:.3f} s (benchmarks/serving.py measures it)")
        assert not failures, failures[:3]
        assert 2 in versions and 1 in versions
        assert versions[-1] == 1
        # the versions move once, from 2 to 1: no request is answered by v2 after v1 answered
        first_one = versions.index(1)
        assert all(v == 1 for v in versions[first_one:])
        # plan sees what the local server really serves
        live = LocalServing(two_versions, "dev").live("churn-api")
        assert live is not None and live["version"] == 1 and live["model"] == "churn-predictor"
        metrics = httpx.get(server.url + "/metrics").text
        assert "mlctl_model_swaps_total 1.0" in metrics
    finally:
        assert server.stop() == 0
    # graceful stop flushed the log and removed the status file
    assert LocalServing(two_versions, "dev").live("churn-api") is None
    logged = list(
        (two_versions / ".mlctl" / "predictions" / "dev" / "churn-predictor").glob("date=*/*.jsonl")
    )
    assert logged and sum(len(p.read_text().splitlines()) for p in logged) >= len(versions)


def test_schemathesis_finds_no_server_error(applied: Path) -> None:
    assert shutil.which("st", path=str(Path(sys.executable).parent)), "schemathesis (a dev extra) is missing"
    server = Server(applied, "--no-prediction-log")
    try:
        server.wait_ready()
        st = str(Path(sys.executable).parent / "st")
        run = subprocess.run(
            [
                st,
                "run",
                server.url + "/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "60",
                "--phases",
                "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=applied,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    finally:
        server.stop()
