"""Issue 12's proof: the whole production loop on one machine playing several.

* a real SeaweedFS holds prod's state, artifacts and prediction log (``mlctl init --backend``);
* ``origin`` is a bare git repository: what GitHub holds;
* "runner A" (a fresh clone, ``CI=true``) applies prod: v1; a merged change, applied by
  another fresh clone, makes v2 (the state outlived the first runner: v2, not v1 again);
* a "pod" (a directory holding nothing but the image's view: the repository's files and the
  S3 credentials; no state, no data, no artifacts) runs ``mlctl serve`` (a real uvicorn
  process on 127.0.0.1) against the S3 state;
* traffic from a shifted population is sent, with bad requests and a batch;
* "runner B" (another fresh clone) runs monitor.yml's own steps (``mlctl monitor run
  --commit``, then the push): it reads the prediction log from S3, the drift monitor fires on
  the shifted features and rolls back; the pod swaps to the previous version within 5 s; the
  write-back commit (``rollback --commit``'s format) reaches the origin;
* a fresh runner then plans "No changes".

Every mlctl here is a real process; the runners never share a directory.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import seaweed
from conftest import MLCTL
from seaweed import Seaweed, fresh_bucket

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)

pytestmark = pytest.mark.slow

AS_OF = "2026-03-15"  # the example data's last day: every runner generates the same bytes
CUSTOMERS = 12_000  # prod's checks want at least 10,000 labels
MODEL = "churn-predictor"
PREFIX = "loop"
SWAP_DEADLINE = 5.0  # seconds: the bound for the pod to serve the rolled-back version


# -- machines --------------------------------------------------------------------------------


def machine_env(server: Seaweed, home: Path, *, ci: bool) -> dict[str, str]:
    """What a machine has: PATH with this virtualenv, S3 credentials, a git identity; on a
    runner ``CI=true``. Nothing from the host's mlctl, git or AWS settings leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCTL_", "GIT_", "AWS_", "PYTEST_")) and k not in ("CI", "GITHUB_ACTIONS")
    }
    env.update(
        {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent/mlctl-loop-aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/mlctl-loop-aws-credentials",
            "MPLCONFIGDIR": str(home / ".matplotlib"),
        }
    )
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"] = "github-actions[bot]" if ci else "Data Scientist"
        env[f"GIT_{who}_EMAIL"] = "bot@example.com" if ci else "ds@example.com"
    if ci:
        env["CI"] = "true"
        env["MLCTL_ACTOR"] = "loop-runner"
    home.mkdir(parents=True, exist_ok=True)
    return env


def sh(args: list[str], cwd: Path, env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode in ok, (
        f"$ {' '.join(args)}  (in {cwd})\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout + done.stderr


def mlctl(cwd: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> str:
    return sh([*MLCTL, *args], cwd, env, ok=ok)


class Runner:
    """A fresh CI runner: its own HOME, a clone of origin, the example data generated (the
    workflows' "Example data" step), ``CI=true``."""

    def __init__(self, name: str, root: Path, origin: Path, server: Seaweed, data: Path) -> None:
        self.dir = root / name
        self.env = machine_env(server, root / f"{name}-home", ci=True)
        sh(["git", "clone", "-q", str(origin), str(self.dir)], root, self.env)
        shutil.copytree(data, self.dir / "data", dirs_exist_ok=True)

    def mlctl(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        return mlctl(self.dir, self.env, *args, ok=ok)

    def git(self, *args: str) -> str:
        return sh(["git", *args], self.dir, self.env)

    def step(self, workflow: str, name: str) -> subprocess.CompletedProcess[str]:
        """Run the ``run:`` script of step ``name`` of this clone's ``workflow`` as GitHub
        does with ``shell: bash``, with the job's variables set as the workflow sets them."""
        document = yaml.safe_load((self.dir / ".github" / "workflows" / workflow).read_text())
        (job,) = document["jobs"].values()
        assert document["defaults"]["run"]["shell"] == "bash"
        script = next(s for s in job["steps"] if s.get("name") == name)["run"]
        env = {
            **self.env,
            "ENV_NAME": "prod",  # ${{ inputs.environment || 'prod' }} on a schedule
            "BRANCH": "main",  # ${{ github.ref_name }}
            "MLCTL_ACTOR": "github-actions[bot]",
            "GITHUB_OUTPUT": str(self.dir / "github-output.txt"),
            "GITHUB_STEP_SUMMARY": str(self.dir / "step-summary.md"),
        }
        assert set(job["env"]) >= {"ENV_NAME", "BRANCH", "MLCTL_ACTOR", "AWS_ACCESS_KEY_ID"}
        path = self.dir.parent / f"{self.dir.name}-step.sh"
        path.write_text(script)
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )


# -- the pod ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pod:
    """``mlctl serve`` in a directory holding only the repository's files (as the image
    ships them) and credentials in its environment."""

    def __init__(self, root: Path, origin: Path, server: Seaweed) -> None:
        self.dir = root / "pod"
        self.env = machine_env(server, root / "pod-home", ci=False)
        archive = root / "image.tar"
        sh(["git", "--git-dir", str(origin), "archive", "-o", str(archive), "main"], root, self.env)
        self.dir.mkdir()
        sh(["tar", "-xf", str(archive), "-C", str(self.dir)], root, self.env)
        self.port = free_port()
        self.log = root / "pod.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.env["MLCTL_SERVE_LOG_FLUSH_SECONDS"] = "0.5"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*MLCTL, "serve", MODEL, "-e", "prod", "--port", str(self.port), "--log-level", "warning"],
                cwd=self.dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = (
                None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            )
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def serving(self) -> int | None:
        """The version ``/ready`` reports, None while not ready or unreachable."""
        try:
            status, body = self.request("GET", "/ready")
        except OSError:
            return None
        return int(body["version"]) if status == 200 else None

    def wait_for(self, version: int, deadline: float, what: str) -> float:
        """Poll until the pod serves ``version``; seconds it took. Fails past ``deadline`` s."""
        started = time.monotonic()
        while True:
            assert self.process is not None and self.process.poll() is None, f"the pod died:\n{self.output()}"
            if self.serving() == version:
                return time.monotonic() - started
            if time.monotonic() - started > deadline:
                pytest.fail(
                    f"{what}: the pod still serves v{self.serving()} after {deadline} s\n{self.output()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# -- traffic ---------------------------------------------------------------------------------


def shifted_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Full-feature requests of new customers from the changed world of the example
    (:func:`mlctl.example.generator.shifted_population`): their features drift."""
    import numpy as np

    from mlctl.example.generator import FEATURES, FLOAT_FEATURES, shifted_population

    x, _ = shifted_population(np.random.default_rng(seed), count)
    rows = []
    for i, values in enumerate(x):
        row: dict[str, Any] = {"customer_id": f"NEW-{seed}-{i:05d}"}
        for name, value in zip(FEATURES, values, strict=True):
            row[name] = float(value) if name in FLOAT_FEATURES else int(np.rint(value))
        rows.append(row)
    return rows


def send_traffic(pod: Pod) -> dict[str, int]:
    """Single requests, one batch and bad requests; the statuses seen, by class."""
    seen: dict[str, int] = {"ok": 0, "bad": 0}
    for row in shifted_rows(240, seed=7):
        status, body = pod.request("POST", "/predict", row)
        assert status == 200 and body["prediction"] in ("Yes", "No"), body
        seen["ok"] += 1
    batch = shifted_rows(60, seed=8)
    status, body = pod.request("POST", "/predict/batch", batch)
    assert status == 200 and len(body["predictions"]) == 60, body
    seen["ok"] += 1
    good = shifted_rows(1, seed=9)[0]
    bad_requests: list[Any] = [
        {k: v for k, v in good.items() if k not in ("avg_order_value", "customer_id")},  # no feature, no key
        {**good, "total_orders_30d": "many"},  # a wrong type
        b"{not json",  # not JSON at all
        [good, {"customer_id": "X"}],  # to /predict: an array
    ]
    for body_ in bad_requests:
        status, _ = pod.request("POST", "/predict", body_)
        assert 400 <= status < 500, (status, body_)
        seen["bad"] += 1
    status, _ = pod.request("POST", "/predict/batch", [good, {**good, "avg_order_value": "x"}])
    assert status == 422
    seen["bad"] += 1
    return seen


def log_records(server: Seaweed, bucket: str) -> list[dict[str, Any]]:
    """Every record of the prediction log objects in the bucket (one per request)."""
    client = server.client()
    records = []
    for key in log_objects(server, bucket):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        records += [json.loads(line) for line in body.splitlines() if line.strip()]
    return records


def log_objects(server: Seaweed, bucket: str) -> list[str]:
    client = server.client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        keys += [o["Key"] for o in page.get("Contents", []) if "/predictions/" in o["Key"]]
    return keys


# -- the repository on origin ----------------------------------------------------------------


def make_origin(root: Path, server: Seaweed, bucket: str, env: dict[str, str]) -> tuple[Path, Path]:
    """``mlctl init --backend s3://BUCKET/loop --endpoint-url URL``, trained fast, its drift
    monitor set to roll back, pushed to a bare ``origin``; returns (origin, the generated data)."""
    work = root / "laptop"
    mlctl(
        root,
        env,
        "init",
        str(work),
        "--no-data",
        "--backend",
        f"s3://{bucket}/{PREFIX}",
        "--endpoint-url",
        server.endpoint_url,
    )
    models = work / "environments" / "prod" / "models.yaml"
    text = models.read_text()
    for old, new in (
        ("n_estimators: 200 ", "n_estimators: 25  "),
        ("max_depth: 15", "max_depth: 8 "),
        ("max_latency_ms: 100 ", "max_latency_ms: 2000"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    models.write_text(text)
    monitors = work / "environments" / "prod" / "monitors.yaml"
    text = monitors.read_text()
    old = "    threshold: 0.15\n    actions: [alert, retrain]"
    assert old in text
    text = text.replace(old, "    threshold: 0.15\n    actions: [alert, rollback]")
    old = "max_p95_latency_ms: 100"
    assert old in text
    monitors.write_text(text.replace(old, "max_p95_latency_ms: 0.01  # no server meets it: fires too"))
    sh(["git", "init", "-q", "-b", "main"], work, env)
    sh(["git", "add", "-A"], work, env)
    sh(["git", "commit", "-q", "-m", "mlctl init --backend s3"], work, env)
    origin = root / "origin.git"
    sh(["git", "clone", "-q", "--bare", str(work), str(origin)], root, env)
    data = root / "data"
    from mlctl.example.generator import generate

    generate(data, customers=CUSTOMERS, as_of=AS_OF)
    return origin, data


def merge_change(root: Path, origin: Path, env: dict[str, str]) -> None:
    """A reviewed pull request merged into main: a shallower forest (a new version)."""
    work = root / "laptop"
    models = work / "environments" / "prod" / "models.yaml"
    models.write_text(models.read_text().replace("max_depth: 8 ", "max_depth: 6 ", 1))
    sh(["git", "commit", "-q", "-am", "prod: max_depth 6"], work, env)
    sh(["git", "push", "-q", str(origin), "main"], work, env)


@pytest.fixture
def loop_root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_the_production_loop_across_machines(loop_root: Path, s3_server: Seaweed) -> None:
    root, server = loop_root, s3_server
    bucket = fresh_bucket(server, versioned=True)
    laptop = machine_env(server, root / "laptop-home", ci=False)
    origin, data = make_origin(root, server, bucket, laptop)

    # runner A applies prod (CI=true: the S3 backend is what lets it)
    runner_a = Runner("runner-a", root, origin, server, data)
    out = runner_a.mlctl("apply", "-e", "prod", "--auto-approve")
    assert "Apply complete!" in out and f"trained {MODEL} v1" in out, out
    shutil.rmtree(runner_a.dir)  # the runner is gone; what it did lives in the bucket

    pod = Pod(root, origin, server)
    try:
        pod.start()
        pod.wait_for(1, 60, "start-up")

        # a merged change, applied by another fresh runner: v2 (the state outlived runner A)
        merge_change(root, origin, laptop)
        runner_a2 = Runner("runner-a2", root, origin, server, data)
        out = runner_a2.mlctl("apply", "-e", "prod", "--auto-approve")
        assert f"trained {MODEL} v2" in out, out
        shutil.rmtree(runner_a2.dir)
        pod.wait_for(2, 30, "deploy of v2")

        seen = send_traffic(pod)
        assert seen == {"ok": 241, "bad": 5}
        deadline = time.monotonic() + 30
        while not log_objects(server, bucket):
            assert time.monotonic() < deadline, f"no prediction log reached s3://{bucket}\n{pod.output()}"
            time.sleep(0.2)
        time.sleep(1.5)  # the last flush (every 0.5 s) lands
        records = log_records(server, bucket)
        print("a logged request:", json.dumps(records[0])[:600])
        statuses = [r.get("status") for r in records]
        assert sum(1 for s in statuses if isinstance(s, int) and 400 <= s < 500) == seen["bad"], statuses
        assert sum(1 for s in statuses if s == 200) == seen["ok"], statuses
        assert [
            r.get("rows") for r in records if r.get("route") == "/predict/batch" and r.get("status") == 200
        ] == [60]

        # runner B: the scheduled monitor, running monitor.yml's own steps
        runner_b = Runner("runner-b", root, origin, server, data)
        checked_out = runner_b.git("rev-parse", "HEAD").strip()
        done = runner_b.step("monitor.yml", "Run the monitors")
        rolled_back_at = time.monotonic()
        out = (runner_b.dir / "monitor-report.txt").read_text()
        print(out)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "status=2" in (runner_b.dir / "github-output.txt").read_text()  # a monitor fired
        assert f"prediction log s3://{bucket}/{PREFIX}/" in out, out  # read from the bucket
        assert "production v2 -> v1" in out, out
        # the serving monitor (read from the bucket's request log) fires too: one step back only
        assert "246 requests" in out, out
        assert "already rolled back by monitor churn-drift in this run" in out, out
        took = pod.wait_for(1, SWAP_DEADLINE + 1, "auto-rollback")  # measured from here, checked below
        swap = time.monotonic() - rolled_back_at
        print(f"the pod served v1 {swap:.2f} s after the monitor's rollback")
        assert swap <= SWAP_DEADLINE, (
            f"the pod took {swap:.1f} s to serve v1 (bound {SWAP_DEADLINE} s; poll {took:.1f})"
        )
        status, body = pod.request("POST", "/predict", shifted_rows(1, seed=10)[0])
        assert status == 200 and body["version"] == 1, body

        # runner B's write-back commit: rollback --commit's format, pushed by the next step
        head = runner_b.git("rev-parse", "HEAD").strip()
        assert head != checked_out
        message = runner_b.git("log", "-1", "--format=%B")
        assert message.startswith(f"mlctl rollback: {MODEL} in prod production v2 -> v1\n\n"), message
        assert "Reason: auto-rollback by monitor churn-drift" in message and "To-Version: 1" in message
        changed = runner_b.git("show", "--name-only", "--format=", "HEAD").split()
        assert changed == ["environments/prod/models.yaml"]
        done = runner_b.step("monitor.yml", "Push the auto-rollback's pin")
        assert done.returncode == 0, done.stdout + done.stderr
        assert sh(["git", "--git-dir", str(origin), "rev-parse", "main"], root, laptop).strip() == head

        # a fresh runner plans: git and the bucket agree
        runner_c = Runner("runner-c", root, origin, server, data)
        out = runner_c.mlctl("plan", "-e", "prod", "--detailed-exitcode")
        assert "No changes." in out, out
        assert pod.serving() == 1
    finally:
        pod.stop()


def test_run_files_are_restored_only_when_intact(
    tmp_path: Path, s3_server: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run files a monitor restores on a machine that did not train are verified against
    the index apply wrote: a tampered file or a path leaving the runs folder is refused."""
    from mlctl.errors import MlctlError
    from mlctl.providers.runfiles import restore_run, run_key, ship_run
    from mlctl.providers.s3 import S3ArtifactStore

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = fresh_bucket(s3_server)
    store = S3ArtifactStore(
        tmp_path,
        bucket,
        "artifacts",
        "prod",
        cache_root=tmp_path / "cache",
        endpoint_url=s3_server.endpoint_url,
    )
    run_id = "20260315T101010123456Z-abc123"
    trained = tmp_path / "trainer" / run_id
    (trained / "artifacts").mkdir(parents=True)
    (trained / "run.json").write_text(json.dumps({"run_id": run_id}))
    (trained / "artifacts" / "signature.json").write_text('{"inputs": []}')
    assert ship_run(store, trained, run_key("m", run_id)) == 2

    runs = tmp_path / "monitor" / "runs"
    assert restore_run(store, runs, "m", run_id)
    assert (runs / run_id / "artifacts" / "signature.json").read_text() == '{"inputs": []}'
    assert not restore_run(store, runs, "m", "20260315T101010123456Z-def456")  # never shipped

    client = s3_server.client()
    client.put_object(
        Bucket=bucket, Key=f"artifacts/prod/m/{run_id}/run/artifacts/signature.json", Body=b"{}"
    )
    other = tmp_path / "other" / "runs"  # another machine: its own download cache
    store = S3ArtifactStore(
        tmp_path,
        bucket,
        "artifacts",
        "prod",
        cache_root=tmp_path / "cache2",
        endpoint_url=s3_server.endpoint_url,
    )
    with pytest.raises(MlctlError, match=r"tampered|sha256"):
        restore_run(store, other, "m", run_id)
    assert not (other / run_id).exists()

    index = json.loads(
        client.get_object(Bucket=bucket, Key=f"artifacts/prod/m/{run_id}/run/index.json")["Body"].read()
    )
    index["../../escape.json"] = index.pop("run.json")
    client.put_object(
        Bucket=bucket, Key=f"artifacts/prod/m/{run_id}/run/index.json", Body=json.dumps(index).encode()
    )
    with pytest.raises(MlctlError, match="not a plain relative path"):
        restore_run(store, other, "m", run_id)
    assert not (tmp_path / "other" / "escape.json").exists()
    with pytest.raises(MlctlError, match="not a run id"):
        restore_run(store, other, "m", "../outside")
