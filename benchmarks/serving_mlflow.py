"""Serving benchmark against a peer: mlctl serve vs `mlflow models serve`, same model, same load, same rows.

Trains the example model with prod params (RandomForest, 200 trees, max_depth 15), logs the
very same fitted pipeline to MLflow (installed by this script in its own venv under /tmp),
serves it with both on 127.0.0.1, checks both return the same predictions, then drives each
with the same bounded asyncio load generator (httpx, keep-alive) for DURATION seconds at
concurrency 1 and 8 with single-row requests. Prints req/s, p50/p95/p99 and the ratios.

    python benchmarks/serving.py [--duration 20] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from example_requests import request_rows

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_VENV = Path("/tmp/mlctl-bench-mlflow-venv")


def sh(*args: str, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    result = subprocess.run(args, text=True, capture_output=True, **kw)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_python() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("installing mlflow into", MLFLOW_VENV, flush=True)
        sh(sys.executable, "-m", "venv", str(MLFLOW_VENV))
        import sklearn

        sh(
            str(MLFLOW_VENV / "bin" / "pip"),
            "install",
            "-q",
            "mlflow",
            f"scikit-learn=={sklearn.__version__}",
            "pandas",
            "pyarrow",
        )
    return python


def wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready")


async def load(
    url: str, bodies: list[bytes], concurrency: int, duration: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=30, headers={"content-type": "application/json"}
    ) as client:
        end = time.perf_counter() + duration

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < end:
                body = bodies[i % len(bodies)]
                i += concurrency
                t = time.perf_counter()
                r = await client.post(url, content=body)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors += 1

        # warm-up
        for body in bodies[:20]:
            await client.post(url, content=body)
        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return int(len(latencies) / elapsed), sorted(latencies), errors


WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('MLCTLJSON {"requests": %%d, "duration_us": %%d, ' ..
    '"p50": %%f, "p95": %%f, "p99": %%f, ' ..
    '"errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def run_wrk(
    url: str, bodies: list[bytes], concurrency: int, duration: float, work: Path
) -> tuple[int, dict, int]:
    """wrk (closed loop, keep-alive): requests/s, {p50, p95, p99} in ms, errors (incl. non-2xx)."""
    body_file = work / f"bodies-{abs(hash(url))}.txt"
    body_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT % body_file)
    threads = 1 if concurrency == 1 else 2
    subprocess.run(["wrk", "-t1", "-c1", "-d2s", "-s", str(script), url], capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{int(duration)}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("MLCTLJSON "))
    data = json.loads(line.removeprefix("MLCTLJSON "))
    rps = int(data["requests"] / (data["duration_us"] / 1e6))
    return rps, {k: data[k] / 1000 for k in ("p50", "p95", "p99")}, int(data["errors"])


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio client even if wrk exists")
    args = parser.parse_args()
    mlctl = [sys.executable, "-m", "mlctl"]
    work = Path(tempfile.mkdtemp(prefix="mlctl-bench-serving-"))
    repo = work / "repo"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print("training the example model (prod params: 200 trees, max_depth 15)", flush=True)
        sh(*mlctl, "init", str(repo))
        models = repo / "environments" / "dev" / "models.yaml"
        models.write_text(
            models.read_text()
            .replace("n_estimators: 100 ", "n_estimators: 200 ")
            .replace("max_depth: 10", "max_depth: 15")
            .replace("max_latency_ms: 100 ", "max_latency_ms: 5000")
        )
        sh(*mlctl, "-C", str(repo), "apply", "-e", "dev", "--auto-approve")
        state = json.loads((repo / "state" / "dev.json").read_text())

        rows = request_rows(repo / "data" / "customer_activity.csv")
        mlctl_bodies = [json.dumps(r).encode() for r in rows]
        mlflow_bodies = [json.dumps({"dataframe_records": [r]}).encode() for r in rows]

        py = mlflow_python()
        # every version is an MLflow model (issue 13): serve the directory mlctl stored with it,
        # verified against the state; its pickle needs only scikit-learn (no PYTHONPATH=src)
        from mlctl.ml.mlflow_model import restore_mlflow_model
        from mlctl.providers import artifact_store
        from mlctl.spec.loader import load_environment
        from mlctl.state.document import Artifact

        record = Artifact.model_validate(state["models"]["churn-predictor"]["versions"][0]["mlflow_model"])
        model_dir = restore_mlflow_model(
            artifact_store(load_environment(repo, "dev")), record, work / "mlflow-model"
        )

        port_a, port_b = free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [
                    *mlctl,
                    "-C",
                    str(repo),
                    "serve",
                    "churn-predictor",
                    "-e",
                    "dev",
                    "--port",
                    str(port_a),
                    "--log-level",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        env_b = {**os.environ, "PATH": f"{py.parent}:{os.environ['PATH']}"}
        env_b.pop("PYTHONPATH", None)
        procs.append(
            subprocess.Popen(
                [
                    str(py.parent / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    str(model_dir),
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port_b),
                ],
                env=env_b,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait(f"http://127.0.0.1:{port_a}/ready", procs[0])
        wait(f"http://127.0.0.1:{port_b}/ping", procs[1])
        a_url, b_url = f"http://127.0.0.1:{port_a}/predict", f"http://127.0.0.1:{port_b}/invocations"

        same = 0
        for body_a, body_b in zip(mlctl_bodies[:200], mlflow_bodies[:200], strict=True):
            ra_ = httpx.post(a_url, content=body_a, headers={"content-type": "application/json"})
            if ra_.status_code != 200:
                raise SystemExit(f"mlctl answered {ra_.status_code}: {ra_.text}")
            pa = ra_.json()["probability"]
            pb = httpx.post(b_url, content=body_b, headers={"content-type": "application/json"}).json()[
                "predictions"
            ][0][-1]
            same += pa == pb
        print(f"same predictions: {same}/200 rows (positive-class probability, exact equality)")

        table = []
        use_wrk = shutil.which("wrk") is not None and not args.asyncio
        print("load generator:", "wrk" if use_wrk else "asyncio/httpx", flush=True)
        for concurrency in (1, 8):
            if use_wrk:
                ra = run_wrk(a_url, mlctl_bodies, concurrency, args.duration, work)
                rb = run_wrk(b_url, mlflow_bodies, concurrency, args.duration, work)
            else:
                la = asyncio.run(load(a_url, mlctl_bodies, concurrency, args.duration))
                lb = asyncio.run(load(b_url, mlflow_bodies, concurrency, args.duration))
                ra = (la[0], {k: pct(la[1], q) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}, la[2])
                rb = (lb[0], {k: pct(lb[1], q) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}, lb[2])
            table.append((concurrency, ra, rb))
        print()
        print(
            f"{'conc':>4} {'server':<7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
        )
        for concurrency, ra, rb in table:
            for name, (rps, lat, err) in (("mlctl", ra), ("mlflow", rb)):
                print(
                    f"{concurrency:>4} {name:<7} {rps:>8} {lat['p50']:>8.2f} {lat['p95']:>8.2f} "
                    f"{lat['p99']:>8.2f} {err:>6}"
                )
            print(
                f"{concurrency:>4} ratio   throughput x{ra[0] / max(rb[0], 1):.1f}, "
                f"p95 {ra[1]['p95'] / rb[1]['p95']:.2f}x of mlflow's"
            )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
