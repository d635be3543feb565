"""Serving benchmark, side by side in one run: the S3 prediction log vs the local one, the
whole /predict path vs the framework's own ceiling, and a shadow rollout vs none.

Trains the example model with the example's prod params (read from its
``environments/prod/models.yaml``: RandomForest, 200 trees, max_depth 15) twice: in a
repository with local artifacts (prediction log on local disk) and in one whose artifacts
provider is S3 on a SeaweedFS this script starts (tests/seaweed.py; the prediction log is
shipped to the bucket). Same spec, same data, same random_state: the same model. Four servers
run at once on 127.0.0.1, all on the same uvicorn (uvloop, httptools, no access log):

* ``mlctl-local``: ``mlctl serve`` (prediction log to local disk);
* ``mlctl-s3``: ``mlctl serve`` (prediction log shipped to S3);
* ``mlctl-shadow``: ``mlctl serve`` of a copy of the local repository whose state holds a
  running shadow rollout (the candidate is the same version, so it costs what a candidate of
  the same size costs): the stable arm answers, the candidate scores every request after the
  answer and its predictions are logged (``arm: shadow``);
* ``ceiling``: a FastAPI app answering the same pydantic request schema (generated from the
  same signature) with a constant: what the framework costs with no model and no mlctl.

Checks first that the mlctl servers answer the same bits (and the pipeline's own
``predict_proba``), then drives each with the same single-row requests at concurrency 1 (and 8
with ``--concurrency 1 8``), rotating the order every round, ``--rounds`` times, so load on the
machine falls on every server alike, and prints the median req/s, p50/p95/p99 and the ratios
(each a median of per-round ratios). The load generator is wrk when installed (Debian:
``apt-get install wrk``), otherwise a Python asyncio client (slower: it compresses the ratios).

    python benchmarks/serving.py [--duration 5] [--rounds 3] [--concurrency 1 8] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from example_requests import FEATURES, request_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CEILING = """
import json, os
from pathlib import Path
from fastapi import FastAPI
from mlctl.serving.schemas import request_model

SIGNATURE = json.loads(Path(os.environ["CEILING_SIGNATURE"]).read_text())
Request = request_model("churn-predictor", SIGNATURE)
ANSWER = {"customer_id": None, "prediction": "No", "probability": 0.25, "risk_level": "low",
          "model": "churn-predictor", "version": 1, "request_id": "0" * 32}


def make() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: Request) -> dict:
        return ANSWER

    return app
"""


def sh(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, text=True, capture_output=True, **kw)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def prod_params(repo: Path) -> dict[str, int]:
    """``n_estimators`` and ``max_depth`` of the example's prod environment."""
    import yaml

    models = yaml.safe_load((repo / "environments" / "prod" / "models.yaml").read_text())
    params = models["models"]["churn-predictor"]["training"]["params"]
    return {"n_estimators": int(params["n_estimators"]), "max_depth": int(params["max_depth"])}


def prod_repo(path: Path, mlctl: list[str]) -> dict[str, int]:
    """``mlctl init`` at ``path``, its dev model trained with the prod params (returned)."""
    sh(*mlctl, "init", str(path))
    params = prod_params(path)
    models = path / "environments" / "dev" / "models.yaml"
    text = models.read_text()
    for pattern, value in (
        (r"n_estimators: \d+", f"n_estimators: {params['n_estimators']}"),
        (r"max_depth: \d+", f"max_depth: {params['max_depth']}"),
        (r"max_latency_ms: \d+", "max_latency_ms: 5000"),  # the gate is not what is measured
    ):
        text, count = re.subn(pattern, value, text)
        if count != 1:
            raise SystemExit(f"the example's dev models.yaml no longer has one {pattern!r}")
    models.write_text(text)
    return params


def with_shadow(source: Path, target: Path) -> None:
    """A copy of the applied repository ``source`` whose state runs a shadow rollout of the
    production version onto itself (the candidate costs what the model costs)."""
    from mlctl.state.document import RolloutRecord, State

    shutil.copytree(source, target, symlinks=True)
    path = target / "state" / "dev.json"
    state = State.from_json(path.read_text())
    version = state.models["churn-predictor"].stages["production"]
    state.rollouts["churn-api"] = RolloutRecord(
        strategy="shadow", stable_version=version, candidate_version=version
    )
    path.write_text(state.to_json())
    shutil.rmtree(target / ".mlctl" / "predictions", ignore_errors=True)


def use_s3_artifacts(repo: Path, bucket: str, endpoint_url: str) -> None:
    environment = repo / "environments" / "dev" / "environment.yaml"
    (repo / "providers" / "s3.yaml").write_text(
        f"type: s3\nbucket: {bucket}\nprefix: artifacts\nendpoint_url: {endpoint_url}\n"
    )
    text = environment.read_text()
    if "artifacts: local" not in text:
        raise SystemExit("the example environment no longer names `artifacts: local`")
    environment.write_text(text.replace("artifacts: local", "artifacts: s3"))


async def python_load(url: str, bodies: list[bytes], concurrency: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        limits=limits, timeout=30, headers={"content-type": "application/json"}
    ) as c:
        for body in bodies[:20]:
            await c.post(url, content=body)
        end = time.perf_counter() + duration

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await c.post(url, content=bodies[i % len(bodies)])
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"rps": len(latencies) / elapsed, "p50": pct(50), "p95": pct(95), "p99": pct(99), "errors": errors}


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
  io.write(string.format('MLCTLJSON {"requests": %%d, "duration_us": %%d, "p50": %%f, "p95": %%f, ' ..
    '"p99": %%f, "errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def wrk_load(url: str, body_file: Path, concurrency: int, duration: float, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT % body_file)
    threads = 1 if concurrency == 1 else 2
    subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", str(script), url], capture_output=True, check=True)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("MLCTLJSON "))
    data = json.loads(line.removeprefix("MLCTLJSON "))
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50": data["p50"] / 1000,
        "p95": data["p95"] / 1000,
        "p99": data["p99"] / 1000,
        "errors": data["errors"],
    }


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the servers gracefully (their prediction logs flushed), then for good."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1])
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--python-client", action="store_true", help="use the asyncio client even if wrk exists"
    )
    args = parser.parse_args()
    import seaweed

    mlctl = [sys.executable, "-m", "mlctl"]
    work = Path(tempfile.mkdtemp(prefix="mlctl-bench-serving-"))
    procs: list[subprocess.Popen[bytes]] = []
    server = seaweed.start(work / "seaweedfs")
    os.environ.update(server.env())
    try:
        bucket = server.make_bucket("mlctl-bench")
        local, remote = work / "local", work / "s3"
        params = prod_repo(local, mlctl)
        prod_repo(remote, mlctl)
        print(
            f"training the example model twice with its prod params ({params['n_estimators']} trees, "
            f"max_depth {params['max_depth']})",
            flush=True,
        )
        use_s3_artifacts(remote, bucket, server.endpoint_url)
        for repo in (local, remote):
            sh(*mlctl, "-C", str(repo), "apply", "-e", "dev", "--auto-approve")
        shadow_repo = work / "shadow"
        with_shadow(local, shadow_repo)
        state = json.loads((local / "state" / "dev.json").read_text())
        version = state["models"]["churn-predictor"]["versions"][0]
        signature = next(
            (local / ".mlctl" / "runs" / "dev").glob(f"{version['run_id']}/artifacts/signature.json")
        )

        import joblib
        import pandas as pd

        rows = request_rows(local / "data" / "customer_activity.csv")
        bodies = [json.dumps(r).encode() for r in rows]
        body_file = work / "bodies.txt"
        body_file.write_bytes(b"\n".join(bodies) + b"\n")
        expected = joblib.load(local / version["artifact"]["uri"]).predict_proba(
            pd.DataFrame(rows)[FEATURES]
        )[:, -1]

        (work / "ceiling.py").write_text(CEILING)
        uvicorn_options = (
            "log_level='warning', access_log=False, loop='uvloop', http='httptools', server_header=False"
        )
        ports = {
            "mlctl-local": free_port(),
            "mlctl-s3": free_port(),
            "mlctl-shadow": free_port(),
            "ceiling": free_port(),
        }
        for name, repo in (("mlctl-local", local), ("mlctl-s3", remote), ("mlctl-shadow", shadow_repo)):
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
                        str(ports[name]),
                        "--log-level",
                        "warning",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"import uvicorn; uvicorn.run('ceiling:make', factory=True, host='127.0.0.1', "
                    f"port={ports['ceiling']}, {uvicorn_options})",
                ],
                cwd=work,
                env={**os.environ, "CEILING_SIGNATURE": str(signature), "PYTHONPATH": str(work)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for (name, port), proc in zip(ports.items(), procs, strict=True):
            wait(f"http://127.0.0.1:{port}/{'ready' if name != 'ceiling' else 'docs'}", proc)
        urls = {name: f"http://127.0.0.1:{port}/predict" for name, port in ports.items()}

        for name in ("mlctl-local", "mlctl-s3", "mlctl-shadow"):
            answers = [httpx.post(urls[name], content=b) for b in bodies[:200]]
            got = [a.json()["probability"] for a in answers]
            same = sum(g == float(e) for g, e in zip(got, expected[:200], strict=True))
            seen = sorted({a.headers.get("x-mlctl-arm", "none") for a in answers})
            print(
                f"{name}: {same}/200 predictions bitwise equal to the pipeline's predict_proba (arm: {seen})"
            )

        use_wrk = shutil.which("wrk") is not None and not args.python_client
        print(
            "load generator:", "wrk" if use_wrk else "python asyncio client (install wrk for tighter numbers)"
        )
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        names = list(urls)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for concurrency in args.concurrency:
                for name in order:
                    if use_wrk:
                        r = wrk_load(urls[name], body_file, concurrency, args.duration, work)
                    else:
                        r = asyncio.run(python_load(urls[name], bodies, concurrency, args.duration))
                    results.setdefault((name, concurrency), []).append(r)
                    print(
                        f"  round {round_ + 1} c={concurrency} {name:<12} {r['rps']:8.0f} req/s", flush=True
                    )

        def med(name: str, c: int, key: str) -> float:
            return statistics.median(r[key] for r in results[(name, c)])

        def ratio(a: str, b: str, c: int, key: str) -> float:
            """Median over rounds of ``a``'s figure over ``b``'s (measured back to back)."""
            return statistics.median(
                x[key] / y[key] for x, y in zip(results[(a, c)], results[(b, c)], strict=True)
            )

        print()
        print(
            f"{'conc':>4} {'server':<13} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
        )
        for c in args.concurrency:
            for name in names:
                print(
                    f"{c:>4} {name:<13} {med(name, c, 'rps'):>8.0f} {med(name, c, 'p50'):>8.2f} "
                    f"{med(name, c, 'p95'):>8.2f} {med(name, c, 'p99'):>8.2f} "
                    f"{int(sum(r['errors'] for r in results[(name, c)])):>6}"
                )
            print(
                f"{c:>4} log shipping: S3 log {med('mlctl-s3', c, 'rps'):.0f} req/s, local log "
                f"{med('mlctl-local', c, 'rps'):.0f} req/s: S3 / local = "
                f"{ratio('mlctl-s3', 'mlctl-local', c, 'rps'):.2f}"
            )
            print(
                f"{c:>4} framework ceiling: mlctl /predict / FastAPI constant = "
                f"{ratio('mlctl-local', 'ceiling', c, 'rps'):.0%} (req/s)"
            )
            print(
                f"{c:>4} shadow rollout: p95 {med('mlctl-shadow', c, 'p95'):.2f} ms vs "
                f"{med('mlctl-local', c, 'p95'):.2f} ms with none (medians); per-round p95 ratio "
                f"{ratio('mlctl-shadow', 'mlctl-local', c, 'p95') - 1:+.0%}, p50 ratio "
                f"{ratio('mlctl-shadow', 'mlctl-local', c, 'p50') - 1:+.0%}, req/s ratio "
                f"{ratio('mlctl-shadow', 'mlctl-local', c, 'rps') - 1:+.0%} (medians over rounds)"
            )
        shipped = server.client().list_objects_v2(Bucket=bucket, Prefix="artifacts/dev/predictions/")
        print(f"\nS3 prediction log objects written during the run: {shipped.get('KeyCount', 0)}")
        stop(procs)
        from mlctl.providers.predlog import iter_records, prediction_log_dir

        arms: dict[str, int] = {}
        for record in iter_records(prediction_log_dir(shadow_repo, ".mlctl", "dev", "churn-predictor")):
            arms[str(record.get("arm"))] = arms.get(str(record.get("arm")), 0) + 1
        print(
            f"shadow server's prediction log: {arms.get('stable', 0)} requests answered by the stable arm, "
            f"{arms.get('shadow', 0)} scored by the shadow candidate"
        )
    finally:
        stop(procs)
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
