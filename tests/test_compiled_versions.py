"""A trained version carries its compiled numpy-only form; the public loader and serving load
it (sha256 verified, nothing unpickled, scikit-learn never imported), locally and on S3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import seaweed
from conftest import invoke, state_of
from mlctl.errors import MlctlError
from mlctl.ml.compiled import PipelinePredictor, differs, same_predictions, with_holes
from mlctl.operations.loading import load_model
from s3_support import stored_state, use_s3
from seaweed import Seaweed

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)

MODEL = "churn-predictor"
HEAVY = ("sklearn", "pandas", "scipy", "joblib", "fastapi", "boto3")


def _rows(repo: Path, features: list[str]) -> list[list[Any]]:
    """Raw rows of the example's feature data (what serving receives), with holes."""
    frame = pd.read_csv(repo / "data" / "customer_activity.csv")
    sample = frame[features].head(300).astype(object)
    rows = [[None if v != v else v for v in row] for row in sample.itertuples(index=False, name=None)]
    return with_holes(rows)


def _pipeline(repo: Path) -> Any:
    """The fitted pipeline of the production version (its pickle, verified)."""
    import io

    import joblib

    from mlctl.providers import artifact_store
    from mlctl.providers.base import read_verified
    from mlctl.workspace import open_workspace

    record = load_model(repo, MODEL, env="dev").record
    assert record.artifact is not None
    data = read_verified(artifact_store(open_workspace(repo, "dev").spec), record.artifact)
    return joblib.load(io.BytesIO(data))


@pytest.mark.slow
def test_a_trained_version_has_a_compiled_form_that_is_its_pipeline_bit_for_bit(applied: Path) -> None:
    version = state_of(applied)["models"][MODEL]["versions"][0]
    compiled, artifact = version["compiled"], version["artifact"]
    assert compiled["uri"].endswith("/model.compiled.npz")
    assert compiled["uri"].rsplit("/", 1)[0] == artifact["uri"].rsplit("/", 1)[0]  # next to the pickle
    loaded = load_model(applied, MODEL, env="dev")
    assert loaded.loaded_from == "compiled" and loaded.kind == "compiled-forest" and loaded.version == 1
    assert loaded.labels is not None and len(loaded.labels) == 2
    pipeline = _pipeline(applied)
    slow = PipelinePredictor(pipeline, loaded.features)
    rows = _rows(applied, loaded.features)
    assert differs(loaded.predictor, slow, rows) is None  # one batch and row by row
    expected = slow.predict(rows)
    assert expected.proba is not None and np.array_equal(loaded.predict_proba(rows), expected.proba)
    assert expected.index is not None and np.array_equal(loaded.predict(rows), expected.index)
    by_name = [dict(zip(loaded.features, row, strict=True)) for row in rows[:5]]
    assert np.array_equal(loaded.predict_proba(by_name), expected.proba[:5])


@pytest.mark.slow
def test_the_public_loader_never_imports_scikit_learn(applied: Path) -> None:
    code = (
        "import sys, json\n"
        "from mlctl.operations.loading import load_model\n"
        f"m = load_model({str(applied)!r}, {MODEL!r}, env='dev')\n"
        "p = m.predict_proba([[None] * len(m.features)])\n"
        f"print(json.dumps([m.loaded_from, [x for x in {HEAVY!r} if x in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == ["compiled", []], out.stderr


@pytest.mark.slow
def test_a_tampered_compiled_model_is_refused(applied: Path) -> None:
    from mlctl.serving.follower import StateFollower

    compiled = state_of(applied)["models"][MODEL]["versions"][0]["compiled"]
    path = applied / compiled["uri"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    path.write_bytes(bytes(data))
    with pytest.raises(MlctlError, match="tampered"):
        load_model(applied, MODEL, env="dev")
    follower = StateFollower(applied, "dev", MODEL)
    follower.refresh(force=True)
    assert follower.current is None and "tampered" in (follower.status.last_error or "")


@pytest.mark.slow
def test_a_version_without_a_compiled_form_loads_its_pickle(applied: Path) -> None:
    state_file = applied / "state" / "dev.json"
    state = json.loads(state_file.read_text())
    state["models"][MODEL]["versions"][0]["compiled"] = None  # trained before it existed
    state_file.write_text(json.dumps(state))
    loaded = load_model(applied, MODEL, env="dev")
    assert loaded.loaded_from == "pickle" and loaded.kind == "pipeline"
    rows = _rows(applied, loaded.features)
    assert loaded.predict_proba(rows).shape == (len(rows), 2)
    with pytest.raises(MlctlError, match="no version of 'churn-predictor' is in staging"):
        state["models"][MODEL]["stages"]["staging"] = None
        state_file.write_text(json.dumps(state))
        load_model(applied, MODEL, env="dev", stage="staging")


@pytest.mark.slow
def test_the_follower_serves_the_compiled_form_without_scikit_learn(applied: Path) -> None:
    code = (
        "import sys, json\n"
        "from mlctl.serving.follower import StateFollower\n"
        f"f = StateFollower(__import__('pathlib').Path({str(applied)!r}), 'dev', {MODEL!r})\n"
        "f.refresh(force=True)\n"
        "c = f.current\n"
        "p = c.predictor.predict([[None] * len(c.features)])\n"
        "print(json.dumps([c.loaded_from, c.predictor.kind, c.pipeline is None, c.signature['task'],"
        f" [x for x in {HEAVY[:4]!r} if x in sys.modules], p.proba.tolist()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded_from, kind, no_pipeline, task, heavy, proba = json.loads(out.stdout.splitlines()[-1])
    assert (loaded_from, kind, no_pipeline, task, heavy) == (
        "compiled",
        "compiled-forest",
        True,
        "classification",
        [],
    )
    # the same answer as the pickle path (which checks its fast path against the pipeline)
    from mlctl.serving.follower import load_version
    from mlctl.workspace import open_workspace

    ws = open_workspace(applied, "dev")
    state = ws.backend.read()
    assert state is not None
    record = state.models[MODEL].get(1)
    assert record is not None
    pickled = load_version(ws.spec, MODEL, record.model_copy(update={"compiled": None}), "production")
    assert pickled.loaded_from == "pickle" and pickled.pipeline is not None
    rows = [[None] * len(pickled.features)]
    assert np.array_equal(np.array(proba), pickled.predictor.predict(rows).proba)  # type: ignore[arg-type]
    compiled = load_version(ws.spec, MODEL, record, "production")
    full = _rows(applied, compiled.features)
    assert same_predictions(compiled.predictor.predict(full), pickled.predictor.predict(full)) is None


@pytest.mark.slow
def test_compiled_models_on_s3(repo: Path, s3: Seaweed) -> None:
    bucket = use_s3(repo, s3, data=False)
    result = invoke(repo, "apply", "-e", "dev", "--auto-approve")
    assert result.exit_code == 0, result.output
    compiled = stored_state(s3, bucket)["models"][MODEL]["versions"][0]["compiled"]
    assert compiled["uri"].startswith(f"s3://{bucket}/artifacts/dev/{MODEL}/")
    assert compiled["uri"].endswith("/model.compiled.npz")
    loaded = load_model(repo, MODEL, env="dev")
    assert loaded.loaded_from == "compiled" and loaded.record.compiled is not None
    assert loaded.predict_proba([[None] * len(loaded.features)]).shape == (1, 2)
    key = compiled["uri"].split("/", 3)[3]
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.client().put_object(Bucket=bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
    for cached in (repo / ".mlctl").rglob(compiled["sha256"]):
        cached.unlink()  # the local cache of the verified bytes: gone, so the store is asked
    with pytest.raises(MlctlError, match="tampered"):
        load_model(repo, MODEL, env="dev")
