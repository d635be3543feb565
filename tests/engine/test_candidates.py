"""The trust boundary of the candidate store, against a real local artifact store and run
store: a training Job's result is accepted only when sealed with the key apply gave the Job,
and no name read from a manifest or a stored run.json builds a path outside its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlctl.engine.candidates import (
    EVIDENCE_PREFIX,
    CandidateRequest,
    manifest_key,
    seal,
    verify_result,
)
from mlctl.errors import MlctlError
from mlctl.ml.tracking import RunStore
from mlctl.plan.resources import desired_resources
from mlctl.providers import artifact_store, runs_root
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import GitInfo
from plan.world import load, write_repo

IDENTITY = "sha256:" + "ab" * 32
KEY = "0f" * 32
DATA = {"labels": "sha256:" + "2" * 64, "activity": "sha256:" + "1" * 64}
ESCAPES = ["/../../outside/pwn", "../../outside/pwn", "a/../../b", "", "20260101T000000000000Z-abcdef\n"]


@pytest.fixture
def spec(tmp_path: Path) -> EnvSpec:
    return load(write_repo(tmp_path / "repo"))


def request(spec: EnvSpec) -> CandidateRequest:
    inputs = desired_resources(spec.config, spec.placeholders)["model_version.churn"].spec
    return CandidateRequest(
        spec=spec,
        model="churn",
        identity=IDENTITY,
        store=artifact_store(spec),
        training=inputs,
        data=dict(DATA),
        production_metrics=None,
        git=GitInfo(commit="c0ffee"),
        actor="tester",
    )


def job_result(spec: EnvSpec, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """What a training Job stores: a model, its run's files, and the manifest naming them."""
    req = request(spec)
    store = req.store
    trained = RunStore(tmp_path / "job-runs").start_run("churn", "dev")
    trained.finish()
    run_id = trained.run_id
    model = tmp_path / "model.joblib"
    model.write_bytes(b"model bytes")
    artifact = store.put(model, f"churn/{run_id}/model.joblib")
    run_json = store.put(tmp_path / "job-runs" / run_id / "run.json", "candidates/churn/x/run/run.json")
    manifest: dict[str, Any] = {
        "model": "churn",
        "identity": IDENTITY,
        "run_id": run_id,
        "metrics": {"auc": 0.93, "accuracy": 0.9, "latency_p95_ms": 1.0},
        "artifact": artifact.model_dump(mode="json"),
        "run_files": {"run.json": run_json.model_dump(mode="json")},
        "training": req.training,
        "data": req.data,
        "signature": {},
    }
    manifest.update(overrides)
    manifest["seal"] = seal(manifest, KEY)
    return manifest


def test_a_sealed_result_is_accepted_and_its_run_restored(spec: EnvSpec, tmp_path: Path) -> None:
    manifest = job_result(spec, tmp_path)
    candidate = verify_result(request(spec), manifest, KEY)
    assert candidate.run_id == manifest["run_id"] and candidate.passed
    assert (runs_root(spec) / candidate.run_id / "run.json").is_file()


def test_a_sealed_result_carries_its_compiled_model_only_from_where_the_job_stores_it(
    spec: EnvSpec, tmp_path: Path
) -> None:
    req = request(spec)
    base = {k: v for k, v in job_result(spec, tmp_path).items() if k != "seal"}
    (tmp_path / "model.compiled.npz").write_bytes(b"compiled bytes")
    run_id = base["run_id"]

    def sealed(key: str) -> dict[str, Any]:
        compiled = req.store.put(tmp_path / "model.compiled.npz", key)
        manifest = {**base, "compiled": compiled.model_dump(mode="json")}
        return {**manifest, "seal": seal(manifest, KEY)}

    manifest = sealed(f"churn/{run_id}/model.compiled.npz")
    candidate = verify_result(req, manifest, KEY)
    assert candidate.compiled is not None and candidate.compiled.sha256 == manifest["compiled"]["sha256"]
    assert verify_result(req, {**base, "seal": seal(base, KEY)}, KEY).compiled is None  # older Jobs
    with pytest.raises(MlctlError, match="not where the Job stores it"):
        verify_result(req, sealed("churn/elsewhere/model.compiled.npz"), KEY)
    stored = req.store.fetch(candidate.compiled)
    stored.write_bytes(b"compiled bytez")  # same size, other bytes
    with pytest.raises(MlctlError, match="tampered"):
        verify_result(req, manifest, KEY)


def test_a_result_not_sealed_with_apply_s_key_is_refused(spec: EnvSpec, tmp_path: Path) -> None:
    manifest = job_result(spec, tmp_path)
    with pytest.raises(MlctlError, match="not sealed"):
        verify_result(request(spec), manifest, "another key")
    forged = {**manifest, "metrics": {"auc": 0.999, "accuracy": 0.999, "latency_p95_ms": 0.1}}
    with pytest.raises(MlctlError, match="not sealed"):
        verify_result(request(spec), forged, KEY)  # metrics changed after sealing
    unsealed = {k: v for k, v in manifest.items() if k != "seal"}
    with pytest.raises(MlctlError, match="not sealed"):
        verify_result(request(spec), unsealed, KEY)


@pytest.mark.parametrize("run_id", ESCAPES)
def test_a_run_id_that_leaves_the_runs_folder_is_refused(spec: EnvSpec, tmp_path: Path, run_id: str) -> None:
    """Even sealed (a compromised Job), a run id is validated before a path is built from it."""
    manifest = job_result(spec, tmp_path, run_id=run_id)
    with pytest.raises(MlctlError, match="not a run id"):
        verify_result(request(spec), manifest, KEY)
    assert not (spec.repo / "outside").exists() and not Path("/outside").exists()
    assert not (spec.repo / ".mlctl" / "outside").exists()


@pytest.mark.parametrize("rel", ["../../escaped.json", "/tmp/escaped.json", "a/./b", "a//b", ""])
def test_a_run_file_name_that_leaves_the_run_is_refused(spec: EnvSpec, tmp_path: Path, rel: str) -> None:
    manifest = job_result(spec, tmp_path)
    manifest = {k: v for k, v in manifest.items() if k != "seal"}
    manifest["run_files"] = {**manifest["run_files"], rel: manifest["run_files"]["run.json"]}
    manifest["seal"] = seal(manifest, KEY)
    with pytest.raises(MlctlError, match="run file"):
        verify_result(request(spec), manifest, KEY)
    assert not (spec.repo / ".mlctl" / "escaped.json").exists()


def test_a_restored_run_record_must_name_its_own_run(spec: EnvSpec, tmp_path: Path) -> None:
    manifest = job_result(spec, tmp_path)
    other = RunStore(tmp_path / "other-runs").start_run("churn", "dev")
    other.finish()
    store = artifact_store(spec)
    lying = store.put(tmp_path / "other-runs" / other.run_id / "run.json", "candidates/churn/y/run/run.json")
    manifest = {k: v for k, v in manifest.items() if k != "seal"}
    manifest["run_files"] = {"run.json": lying.model_dump(mode="json")}
    manifest["seal"] = seal(manifest, KEY)
    with pytest.raises(MlctlError, match="names run"):
        verify_result(request(spec), manifest, KEY)
    assert not (runs_root(spec) / manifest["run_id"]).exists()


@pytest.mark.parametrize("identity", ["sha256:../../x", "../x", "sha256:" + "g" * 64])
def test_keys_are_built_only_from_well_formed_identities(identity: str) -> None:
    with pytest.raises(MlctlError, match="not a version identity"):
        manifest_key("churn", identity, EVIDENCE_PREFIX)
