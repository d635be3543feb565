"""S3 state backend round trips against a local SeaweedFS (started and stopped here).

Measures, for the example repository's dev environment with its state in S3 (artifacts and
data local, so only the state path differs) next to the same repository on a local state file:

- ``mlctl plan -e dev`` (no changes) as a whole process: read state, refresh, diff;
- ``mlctl apply -e dev --auto-approve`` with nothing to do: lock, read, plan, unlock;
- ``mlctl apply`` that changes one endpoint setting: lock, read, one checkpoint write, unlock;
- 100 sequential lock/unlock cycles (conditional create + delete of the lock object);
- 100 sequential checkpoints (``persist``: a conditional ``put_object(IfMatch=etag)``).

    .venv/bin/python benchmarks/s3_state.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import seaweed  # noqa: E402
from mlctl.example.init import init_repo  # noqa: E402
from mlctl.state.backend import LockInfo, locked, persist  # noqa: E402
from mlctl.state.local import LocalBackend  # noqa: E402
from mlctl.state.s3 import S3Backend  # noqa: E402

MLCTL = [sys.executable, "-m", "mlctl"]


def run(repo: Path, *args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([*MLCTL, "-C", str(repo), *args], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mlctl {' '.join(args)} failed: {done.stderr}")
    return elapsed


def stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{statistics.median(ms):8.1f} {p95:8.1f}"


def make_repo(base: Path, name: str) -> Path:
    repo = base / name
    init_repo(repo)
    models = repo / "environments" / "dev" / "models.yaml"
    text = models.read_text().replace("n_estimators: 100 ", "n_estimators: 25  ")
    models.write_text(text)
    return repo


def to_s3(repo: Path, bucket: str, endpoint_url: str) -> None:
    env_file = repo / "environments" / "dev" / "environment.yaml"
    text = env_file.read_text().replace(
        "  type: local\n  path: state/dev.json",
        f"  type: s3\n  bucket: {bucket}\n  key: state/dev.json\n  endpoint_url: {endpoint_url}",
    )
    env_file.write_text(text)


def toggle_replicas(repo: Path, i: int) -> None:
    path = repo / "environments" / "dev" / "deployments.yaml"
    text = path.read_text()
    old, new = ("replicas: 1", "replicas: 2") if i % 2 == 0 else ("replicas: 2", "replicas: 1")
    path.write_text(text.replace(old, new, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=100)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mlctl-bench-s3-"))
    server = seaweed.start(base / "seaweedfs")
    try:
        env = {**os.environ, **server.env()}
        os.environ.update(server.env())
        bucket = server.make_bucket("bench-state", versioned=True)
        repos = {"local file": make_repo(base, "local"), "S3 (SeaweedFS)": make_repo(base, "s3")}
        to_s3(repos["S3 (SeaweedFS)"], bucket, server.endpoint_url)
        for repo in repos.values():
            run(repo, "apply", "-e", "dev", "--auto-approve", env=env)  # trains v1 once

        rows: list[tuple[str, str, str]] = []
        for label, repo in repos.items():
            plans = [run(repo, "plan", "-e", "dev", env=env) for _ in range(args.repeat)]
            noops = [run(repo, "apply", "-e", "dev", "--auto-approve", env=env) for _ in range(args.repeat)]
            writes = []
            for i in range(args.repeat):
                toggle_replicas(repo, i)
                writes.append(run(repo, "apply", "-e", "dev", "--auto-approve", env=env))
            rows += [
                (label, "mlctl plan (no changes), process", stats(plans)),
                (label, "mlctl apply (nothing to do), process", stats(noops)),
                (label, "mlctl apply (1 change, 1 checkpoint)", stats(writes)),
            ]

        backends = {
            "local file": LocalBackend(base / "direct" / "dev.json"),
            "S3 (SeaweedFS)": S3Backend(bucket, "direct/dev.json", endpoint_url=server.endpoint_url),
        }
        for label, backend in backends.items():
            cycles = []
            for _ in range(args.cycles):
                started = time.perf_counter()
                info = LockInfo.new("bench", "dev")
                backend.lock(info)
                backend.unlock(info.id)
                cycles.append(time.perf_counter() - started)
            from mlctl.state.document import State

            checkpoints = []
            with locked(backend, "bench", "dev"):
                state = backend.read() or State(environment="dev")
                for _ in range(args.cycles):
                    started = time.perf_counter()
                    persist(backend, state)
                    checkpoints.append(time.perf_counter() - started)
            rows += [
                (
                    label,
                    f"lock + unlock ({args.cycles} sequential)",
                    stats(cycles) + f"   total {sum(cycles):.2f} s",
                ),
                (label, f"checkpoint write ({args.cycles} sequential)", stats(checkpoints)),
            ]

        print(
            f"\nS3 state backend vs local file (median / p95 in ms; "
            f"{args.repeat} runs, {args.cycles} cycles)\n"
        )
        print(f"{'backend':<16} {'operation':<40} {'median':>8} {'p95':>8}")
        for label, what, figures in rows:
            print(f"{label:<16} {what:<40} {figures}")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
