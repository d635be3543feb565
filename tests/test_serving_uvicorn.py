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
        answers: list[tuple[float, float, int]] = []  # (sent, received, version) per request
        stop = threading.Event()

        def loop() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = client.post("/predict", json=ROW)
                    if r.status_code != 200:
                        failures.append(r.text)
                    else:
                        answers.append((sent, time.monotonic(), r.json()["version"]))

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
        versions = [v for _, _, v in answers]
        assert 2 in versions and 1 in versions
        assert max(answers)[2] == 1  # the last request sent
        # the versions move once, from 2 to 1: a request sent after any client received a v1
        # answer is never answered by v2 (requests in flight at the swap may be, in any order)
        first_one = min(received for _, received, v in answers if v == 1)
        assert all(v == 1 for sent, _, v in answers if sent > first_one)
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


def test_sigkill_mid_flush_loses_only_the_unflushed_tail(applied: Path) -> None:
    """A replica killed while it ships its log (flushing every 50 ms under load): every object
    it wrote is whole and readable, and what it logged is exactly the oldest requests it
    answered: only the tail not yet flushed is lost, never an object from the middle."""
    import json
    import os
    import signal

    from mlctl.providers.predlog import prediction_log_dir, read_requests

    directory = prediction_log_dir(applied, ".mlctl", "dev", "churn-predictor")
    server = Server(applied, "--log-flush-seconds", "0.05")
    answered: list[str] = []
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(40):
                answered.append(
                    client.post("/predict", json=dict(ROW, total_orders_30d=i)).json()["request_id"]
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the first 40 were shipped
                if set(answered) <= set(read_requests(directory)["request_id"]):
                    break
                time.sleep(0.05)
            stop = threading.Event()

            def traffic() -> None:
                with httpx.Client(base_url=server.url, timeout=10) as c:
                    while not stop.is_set():
                        try:
                            r = c.post("/predict/batch", json=[ROW] * 20)
                        except httpx.HTTPError:
                            return
                        answered.append(r.json()["predictions"][0]["request_id"])

            thread = threading.Thread(target=traffic)
            thread.start()
            time.sleep(1.5)
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)
            stop.set()
            thread.join(timeout=15)
    finally:
        server.stop()
    objects = sorted(directory.glob("date=*/part-*.jsonl"))
    assert len(objects) > 2
    lines = []
    for path in objects:
        data = path.read_text()
        assert data and data.endswith("\n"), path.name  # whole objects only
        lines += [json.loads(line) for line in data.splitlines()]
    logged = [r["request_id"] for r in sorted(lines, key=lambda r: r["ts"])]
    assert len(logged) == len(set(logged)) == len(read_requests(directory))
    # the last logged request may have been answered as the kill landed (its reply unread)
    assert logged[:-1] == answered[: len(logged) - 1], "a request in the middle was lost"
    assert len(logged) > 40
