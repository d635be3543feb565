"""End to end through the CLI with S3 state, S3 artifacts and s3:// datasets (SeaweedFS).

Real `mlctl` processes: two applies at once, a runner killed holding the lock, wrong
credentials, migration from a local state file, history and pull of a snapshot.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

import seaweed
from conftest import MLCTL, invoke, run_process
from s3_support import KEY, stored_state, use_s3
from seaweed import Seaweed

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)

pytestmark = pytest.mark.slow


def test_apply_end_to_end_on_s3(repo: Path, s3: Seaweed) -> None:
    bucket = use_s3(repo, s3)
    for name in ("customer_activity", "churn_labels", "churn_outcomes"):
        (repo / "data" / f"{name}.csv").unlink()  # the data lives only in the bucket now
    plan = invoke(repo, "plan", "-e", "dev", "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert not (repo / ".mlctl" / "cache" / "data").exists()  # plan never downloads
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert not (repo / "state" / "dev.json").exists()
    state = stored_state(s3, bucket)
    registry = state["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 1
    artifact = registry["versions"][0]["artifact"]
    assert artifact["uri"].startswith(f"s3://{bucket}/artifacts/dev/churn-predictor/")
    head = s3.client().head_object(Bucket=bucket, Key=artifact["uri"].split("/", 3)[3])
    assert head["ContentLength"] == artifact["size"] and head["Metadata"]["sha256"] == artifact["sha256"]
    assert state["resources"]["dataset.customer_activity"]["status"]["fingerprint"].startswith("s3etag:")
    again = invoke(repo, "plan", "-e", "dev", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert s3.client().list_objects_v2(Bucket=bucket, Prefix=KEY + ".lock").get("KeyCount", 0) == 0

    history = invoke(repo, "state", "history", "-e", "dev", "--json")
    assert history.exit_code == 0, history.output
    versions = json.loads(history.stdout)
    assert [v["serial"] for v in versions] == sorted((v["serial"] for v in versions), reverse=True)
    assert versions[0]["serial"] == state["serial"] and len(versions) >= 3
    oldest = versions[-1]
    pulled = invoke(repo, "state", "pull", "-e", "dev", "--version", oldest["version_id"])
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.stdout)["serial"] == oldest["serial"]
    table = invoke(repo, "state", "history", "-e", "dev")
    assert "(current)" in table.stdout

    # New data in the bucket is a new fingerprint: the next plan trains a new version.
    client = s3.client()
    labels = client.get_object(Bucket=bucket, Key="data/churn_labels.csv")["Body"].read()
    client.put_object(Bucket=bucket, Key="data/churn_labels.csv", Body=labels + labels.splitlines(True)[-1])
    changed = json.loads(invoke(repo, "plan", "-e", "dev", "--format", "json").stdout)
    addresses = {c["address"]: c["mlctl"]["verbs"] for c in changed["resource_changes"]}
    assert "train" in addresses.get("model_version.churn-predictor", [])


def test_tampered_s3_artifact_blocks_rollback_and_shows_in_plan(repo: Path, s3: Seaweed) -> None:
    bucket = use_s3(repo, s3, data=False)
    assert invoke(repo, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    state = stored_state(s3, bucket)
    key = state["models"]["churn-predictor"]["versions"][0]["artifact"]["uri"].split("/", 3)[3]
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"not a model")
    plan = invoke(repo, "plan", "-e", "dev", "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert "tampered" in plan.stdout


def start_apply(repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MLCTL, "-C", str(repo), "apply", "-e", "dev", "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_applies_at_once_one_wins_no_lost_update(repo: Path, s3: Seaweed) -> None:
    bucket = use_s3(repo, s3, data=False)
    first, second = start_apply(repo), start_apply(repo)
    outs = [p.communicate(timeout=300)[1] for p in (first, second)]
    codes = sorted((p.returncode, out) for p, out in zip((first, second), outs, strict=True))
    assert codes[0][0] == 0, codes[0][1]
    assert codes[1][0] == 1, codes[1][1]
    loser = codes[1][1]
    assert "locked by another operation" in loser and "Traceback" not in loser
    assert len(loser.strip().splitlines()) <= 2
    state = stored_state(s3, bucket)
    registry = state["models"]["churn-predictor"]
    assert [v["version"] for v in registry["versions"]] == [1]
    versions = json.loads(invoke(repo, "state", "history", "-e", "dev", "--json").stdout)
    assert [v["serial"] for v in versions] == list(range(state["serial"], 0, -1))  # one writer, no gaps


def test_runner_killed_holding_the_lock_then_force_unlock(repo: Path, s3: Seaweed) -> None:
    bucket = use_s3(repo, s3, data=False)
    proc = start_apply(repo)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "training" in line:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    blocked = run_process(repo, "apply", "-e", "dev", "--auto-approve")
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    match = re.search(r"force-unlock -e dev ([0-9a-f-]{36})", blocked.stderr)
    assert match, blocked.stderr
    assert f"pid {proc.pid}" in blocked.stderr
    unlocked = run_process(repo, "force-unlock", "-e", "dev", match.group(1))
    assert unlocked.returncode == 0, unlocked.stderr
    assert "removed" in unlocked.stdout
    rerun = run_process(repo, "apply", "-e", "dev", "--auto-approve")
    assert rerun.returncode == 0, rerun.stderr
    registry = stored_state(s3, bucket)["models"]["churn-predictor"]
    assert registry["stages"]["production"] == 1 and len(registry["versions"]) == 1


def test_wrong_credentials_exit_1_one_line(repo: Path, s3: Seaweed) -> None:
    use_s3(repo, s3, data=False)
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "definitely-wrong"}
    for args in (
        ("plan", "-e", "dev"),
        ("apply", "-e", "dev", "--auto-approve"),
        ("state", "list", "-e", "dev"),
    ):
        result = run_process(repo, *args, env=env)
        assert result.returncode == 1, result.stderr
        assert "secret key does not match" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_migrate_local_state_to_s3_keeps_lineage(applied: Path, s3: Seaweed) -> None:
    local = json.loads((applied / "state" / "dev.json").read_text())
    bucket = use_s3(applied, s3, artifacts=False, data=False)
    before = invoke(applied, "state", "list", "-e", "dev")
    assert before.exit_code == 1 and "no state yet" in before.stderr
    result = invoke(applied, "init-backend", "-e", "dev")
    assert result.exit_code == 0, result.output
    assert f"serial {local['serial']}" in result.stdout and local["lineage"] in result.stdout
    stored = stored_state(s3, bucket)
    assert (stored["lineage"], stored["serial"]) == (local["lineage"], local["serial"])
    assert stored["models"] == local["models"]
    assert invoke(applied, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0
    again = invoke(applied, "init-backend", "-e", "dev")
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    # A destination holding a different state is never overwritten.
    (applied / "state" / "dev.json").write_text(
        json.dumps({**local, "lineage": "00000000-0000-0000-0000-000000000000"})
    )
    refused = invoke(applied, "init-backend", "-e", "dev")
    assert refused.exit_code == 1 and "refusing to overwrite" in refused.stderr
    assert stored_state(s3, bucket)["lineage"] == local["lineage"]


def test_history_needs_s3(applied: Path) -> None:
    result = invoke(applied, "state", "history", "-e", "dev")
    assert result.exit_code == 1 and "keeps no history" in result.stderr
    result = invoke(applied, "state", "pull", "-e", "dev", "--version", "abc")
    assert result.exit_code == 1 and "keeps no versions" in result.stderr
