"""The S3 artifact store and s3:// datasets against a real S3-compatible server (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

import seaweed
from mlctl.errors import MlctlError
from mlctl.providers.local import sha256_file
from mlctl.providers.s3 import S3ArtifactStore, s3_download, s3_fingerprint
from mlctl.s3client import s3_client
from seaweed import Seaweed, fresh_bucket

s3_server = seaweed.s3_server  # the session's SeaweedFS (a fixture)
s3 = seaweed.s3  # the server with its credentials in the environment (a fixture)


def store(server: Seaweed, bucket: str, tmp_path: Path) -> S3ArtifactStore:
    return S3ArtifactStore(
        tmp_path, bucket, "models", "dev", cache_root=tmp_path / "cache", endpoint_url=server.endpoint_url
    )


def model_file(tmp_path: Path, payload: bytes = b"pretend this is a joblib pickle\n" * 2000) -> Path:
    path = tmp_path / "model.joblib"
    path.write_bytes(payload)
    return path


def test_round_trip_verifies_sha256_and_caches_by_it(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    st = store(s3, bucket, tmp_path)
    source = model_file(tmp_path)
    artifact = st.put(source, "churn/run123/model.joblib")
    assert artifact.uri == f"s3://{bucket}/models/dev/churn/run123/model.joblib"
    assert artifact.sha256 == sha256_file(source) and artifact.size == source.stat().st_size
    assert st.health(artifact) == "ok"
    fetched = st.fetch(artifact)
    assert fetched == tmp_path / "cache" / artifact.sha256[:2] / artifact.sha256
    assert fetched.read_bytes() == source.read_bytes()
    # A cached artifact is served without a download: it survives the object's removal.
    s3.client().delete_object(Bucket=bucket, Key="models/dev/churn/run123/model.joblib")
    assert st.health(artifact) == "missing"
    assert st.fetch(artifact) == fetched


def test_tampered_object_is_detected_by_head_and_refused_on_download(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    st = store(s3, bucket, tmp_path)
    artifact = st.put(model_file(tmp_path), "churn/run1/model.joblib")
    evil = b"X" * artifact.size  # same size, other bytes
    s3.client().put_object(Bucket=bucket, Key="models/dev/churn/run1/model.joblib", Body=evil)
    assert st.health(artifact) == "tampered"
    assert st.health(artifact, deep=True) == "tampered"
    with pytest.raises(MlctlError, match="tampered"):
        st.fetch(artifact)
    assert not (tmp_path / "cache" / artifact.sha256[:2] / artifact.sha256).exists()


def test_tampered_cache_file_is_downloaded_again(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    st = store(s3, bucket, tmp_path)
    source = model_file(tmp_path)
    artifact = st.put(source, "churn/run2/model.joblib")
    cached = st.fetch(artifact)
    cached.write_bytes(b"corrupted locally")
    assert st.fetch(artifact).read_bytes() == source.read_bytes()


def test_missing_artifact_and_foreign_bucket(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    st = store(s3, bucket, tmp_path)
    artifact = st.put(model_file(tmp_path), "m/r/model.joblib")
    gone = artifact.model_copy(update={"uri": f"s3://{bucket}/models/dev/m/other/model.joblib"})
    assert st.health(gone) == "missing"
    with pytest.raises(MlctlError, match="missing"):
        st.fetch(gone)
    foreign = artifact.model_copy(update={"uri": "s3://somebody-else/x/model.joblib"})
    with pytest.raises(MlctlError, match="not in this store's bucket"):
        st.health(foreign)


def test_dataset_fingerprint_is_a_head_and_download_is_cached(s3: Seaweed, tmp_path: Path) -> None:
    bucket = fresh_bucket(s3)
    client = s3_client(endpoint_url=s3.endpoint_url)
    url = f"s3://{bucket}/data/events.csv"
    assert s3_fingerprint(client, url) is None
    s3.client().put_object(Bucket=bucket, Key="data/events.csv", Body=b"a,b\n1,2\n")
    first = s3_fingerprint(client, url)
    assert first is not None and first.startswith("s3etag:") and first.endswith(":8")
    local = s3_download(client, url, tmp_path / "data")
    assert local.read_bytes() == b"a,b\n1,2\n" and local.suffix == ".csv"
    s3.client().put_object(Bucket=bucket, Key="data/events.csv", Body=b"a,b\n1,3\n")
    second = s3_fingerprint(client, url)
    assert second != first
    assert s3_download(client, url, tmp_path / "data").read_bytes() == b"a,b\n1,3\n"
    with pytest.raises(MlctlError, match="not found"):
        s3_download(client, f"s3://{bucket}/data/missing.csv", tmp_path / "data")
