"""Training as a Kubernetes Job, end to end: apply submits the Job to kmock's in-memory
Kubernetes emulator (which runs no containers), and the test plays the kubelet: it runs the
Job's container command from the rendered manifest as a local process (same args, same env)
against a real S3-compatible server (SeaweedFS), then marks the Job finished in the emulator.
Apply must register the version from the Job's result, with no training of its own."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock  # noqa: F401  (a dev extra: the in-memory Kubernetes API emulator)
import pytest

import k8s_emulator
import seaweed
from conftest import edit, invoke, state_of
from container_image import process_of
from k8s_emulator import EmulatorThread, patch_object
from mlctl.providers.s3 import S3ArtifactStore
from mlctl.state.document import Artifact
from seaweed import Seaweed, fresh_bucket

emulator = k8s_emulator.emulator  # fixtures: kmock's emulator, KUBECONFIG pointing at it
kube = k8s_emulator.kube
pytestmark = pytest.mark.slow
s3_server = seaweed.s3_server
s3 = seaweed.s3

ENVIRONMENT = Path("environments/dev/environment.yaml")


class Kubelet:
    """Runs each new Job's container as a local process, then sets its condition."""

    def __init__(
        self,
        kube: EmulatorThread,
        repo: Path,
        mode: str = "run",
        after: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.kube, self.repo, self.mode, self.after = kube, repo, mode, after
        self.handled: dict[str, Any] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(0.1):
            for (namespace, name), job in self.kube.objects("jobs").items():
                if name in self.handled or job.get("status", {}).get("conditions"):
                    continue
                self.handled[name] = job
                self.run(namespace, name, job)

    def run(self, namespace: str, name: str, job: dict[str, Any]) -> None:
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
        if self.mode == "hang":
            return
        if self.mode == "fail":
            condition = {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        else:
            container = job["spec"]["template"]["spec"]["containers"][0]
            # The process the kubelet starts on the image, in its working directory (the repo).
            argv, env = process_of(container)
            done = subprocess.run(
                argv,
                cwd=self.repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.handled[name] = {"job": job, "process": done}
            ok = done.returncode == 0
            if ok and self.after is not None:  # someone else writes the bucket meanwhile
                self.after(job)
            condition = {
                "type": "Complete" if ok else "Failed",
                "status": "True",
                "message": "" if ok else done.stderr[-300:],
            }
        patch_object(self.kube.url, path, {"status": {"conditions": [condition]}})

    def __enter__(self) -> Kubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def k8s_training(
    repo: Path, s3: Seaweed, kube: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    from mlctl.engine import remote_training

    bucket = fresh_bucket(s3, versioned=False)
    (repo / "providers" / "s3.yaml").write_text(
        f"type: s3\nbucket: {bucket}\nprefix: artifacts\nendpoint_url: {s3.endpoint_url}\n"
    )
    (repo / "providers" / "k8s-train.yaml").write_text(
        "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\n"
    )
    edit(repo / ENVIRONMENT, "  artifacts: local", "  artifacts: s3")
    edit(repo / ENVIRONMENT, "  training: local", "  training: k8s-train")
    monkeypatch.setattr(remote_training, "POLL_SECONDS", 0.1)

    def no_local_training(*args: Any, **kw: Any) -> Any:
        raise AssertionError("apply trained locally instead of in the Job")

    monkeypatch.setattr("mlctl.engine.training.train_candidate", no_local_training)
    yield repo, bucket


def test_apply_trains_in_a_job_and_registers_its_result(
    k8s_training: tuple[Path, str], kube: EmulatorThread, s3: Seaweed
) -> None:
    repo, bucket = k8s_training
    with Kubelet(kube, repo) as kubelet:
        result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert len(kubelet.handled) == 1
    ((name, ran),) = kubelet.handled.items()
    assert ran["process"].returncode == 0, ran["process"].stderr
    assert name.startswith("train-churn-predictor-")
    container = ran["job"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:5] == ["train-job", "churn-predictor", "-e", "dev", "--identity"]
    # apply gave the Job a one-time key, kept only in the Job, and accepted the sealed result
    (key,) = [e["value"] for e in container["env"] if e["name"] == "MLCTL_RESULT_KEY"]
    assert len(key) == 64
    assert "sealed with this apply's key" in result.output

    state = state_of(repo)
    (version,) = state["models"]["churn-predictor"]["versions"]
    assert version["identity"] == args[5] and version["status"] == "passed"
    assert version["artifact"]["uri"].startswith(f"s3://{bucket}/artifacts/dev/churn-predictor/")
    assert state["models"]["churn-predictor"]["stages"]["production"] == 1
    # The result the Job wrote is what was registered.
    result_uri = args[7]
    key = result_uri.split("/", 3)[3]
    record = json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert record["run_id"] == version["run_id"]
    for field in ("uri", "sha256", "size"):
        assert record["artifact"][field] == version["artifact"][field]
    assert record["metrics"] == version["metrics"]
    assert record["seal"].startswith("hmac-sha256:") and key not in json.dumps(record)
    # The run record was restored from the store (serving and monitors read it), tagged as the Job's.
    run = json.loads((repo / ".mlctl" / "runs" / "dev" / version["run_id"] / "run.json").read_text())
    assert run["tags"]["purpose"] == "training-job"
    # The artifact verifies through the store.
    store = S3ArtifactStore(
        repo, bucket, "artifacts", "dev", cache_root=repo / "fresh-cache", endpoint_url=s3.endpoint_url
    )
    artifact = Artifact.model_validate(version["artifact"])
    assert store.health(artifact) == "ok"
    assert store.fetch(artifact).stat().st_size == artifact.size
    assert invoke(repo, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0

    # A failed Job: apply exits 1 naming the Job, and the model's state is unchanged.
    edit(repo / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 7")
    before = state_of(repo)["models"]["churn-predictor"]
    with Kubelet(kube, repo, mode="fail") as kubelet:
        failed = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert failed.exit_code == 1
    (job,) = kubelet.handled
    assert f"training job ml/{job} failed" in failed.output
    assert "Traceback" not in failed.output
    assert state_of(repo)["models"]["churn-predictor"] == before

    # The rerun replaces the failed Job; one that never finishes times out, naming it.
    os.environ["MLCTL_TRAINING_TIMEOUT"] = "1"
    try:
        with Kubelet(kube, repo, mode="hang"):
            hung = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    finally:
        del os.environ["MLCTL_TRAINING_TIMEOUT"]
    assert hung.exit_code == 1
    assert f"training job ml/{job} did not finish in 1s" in hung.output
    assert state_of(repo)["models"]["churn-predictor"] == before


def test_training_job_needs_an_s3_artifact_store(repo: Path, kube: EmulatorThread) -> None:
    (repo / "providers" / "k8s-train.yaml").write_text("type: k8s\nnamespace: ml\n")
    edit(repo / ENVIRONMENT, "  training: local", "  training: k8s-train")
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 1
    assert "set providers.artifacts to an s3 provider" in result.output
    assert not kube.objects("jobs")


def _forge(repo: Path, s3: Seaweed, bucket: str) -> tuple[str, dict[str, Any]]:
    """What a pull request's plan job with write access to the bucket can do before apply:
    put a result for the identity apply will compute (with the exact training inputs and
    data, a model whose sha256 matches, metrics that pass every gate). Returns its key."""
    import hashlib

    from mlctl.engine.candidates import manifest_key
    from mlctl.operations.plan import plan
    from mlctl.plan.resources import desired_resources
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, "dev")
    made = plan(ws).plan
    change = next(c for c in made.resource_changes if c.address == "model_version.churn-predictor")
    assert isinstance(change.after, dict)
    identity = change.after["identity"]
    training = desired_resources(ws.spec.config, ws.spec.placeholders)["model_version.churn-predictor"]
    run_id = "20260101T000000000000Z-abcdef"
    client = s3.client()

    def put(key: str, body: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(body).hexdigest()
        full = f"artifacts/dev/{key}"
        client.put_object(Bucket=bucket, Key=full, Body=body, Metadata={"sha256": digest})
        return {"uri": f"s3://{bucket}/{full}", "sha256": digest, "size": len(body)}

    record = json.dumps(
        {"run_id": run_id, "model": "churn-predictor", "environment": "dev", "started_at": "x"}
    )
    manifest = {
        "format_version": 1,
        "model": "churn-predictor",
        "environment": "dev",
        "identity": identity,
        "run_id": run_id,
        "metrics": {"auc": 0.999, "accuracy": 0.999, "latency_p95_ms": 0.1},
        "artifact": put(f"churn-predictor/{run_id}/model.joblib", b"forged model"),
        "signature": {},
        "run_files": {"run.json": put("forged/run.json", record.encode())},
        "training": training.spec,
        "data": {k: v for k, v in made.data.items() if f"dataset.{k}" in training.depends_on},
    }
    key = f"artifacts/dev/{manifest_key('churn-predictor', identity)}"
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return key, manifest


def test_a_result_apply_did_not_seal_is_never_registered(
    k8s_training: tuple[Path, str], kube: EmulatorThread, s3: Seaweed
) -> None:
    """A result pre-seeded in the bucket is not reused (apply submits its own Job); a result
    rewritten in the bucket after the Job wrote it fails the seal, and nothing is registered."""
    repo, bucket = k8s_training
    key, forged = _forge(repo, s3, bucket)

    def tamper(job: dict[str, Any]) -> None:
        body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        record = json.loads(body)
        record["metrics"] = {**record["metrics"], "auc": 0.999}
        s3.client().put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())

    with Kubelet(kube, repo, after=tamper) as kubelet:
        result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert len(kubelet.handled) == 1  # the pre-seeded result did not replace the Job
    assert result.exit_code == 1
    assert "refused: it is not sealed with the key apply gave the Job" in result.output
    assert "Traceback" not in result.output
    assert state_of(repo)["models"].get("churn-predictor", {}).get("versions", []) == []

    with Kubelet(kube, repo) as kubelet:  # the rerun: a new Job with a new key
        again = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert again.exit_code == 0, again.output
    (version,) = state_of(repo)["models"]["churn-predictor"]["versions"]
    assert version["artifact"]["sha256"] != forged["artifact"]["sha256"]
    assert version["metrics"]["auc"] != 0.999
