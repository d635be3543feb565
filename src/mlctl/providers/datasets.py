"""Where a dataset's bytes are: local files in the repository, or ``s3://`` objects.

Two calls with different costs: :func:`dataset_fingerprint` is what plans use (hash a local
file, HEAD an S3 object; never a download), :func:`dataset_path` is what readers use (checks,
training, materialization, monitors) and downloads an S3 object into a local cache keyed by
its ETag first.
"""

from __future__ import annotations

from pathlib import Path

from mlctl.ml.fingerprint import fingerprint_file
from mlctl.spec.loader import EnvSpec
from mlctl.spec.models import Dataset


def dataset_path(spec: EnvSpec, dataset: Dataset) -> Path:
    """The local file holding the dataset's bytes (an S3 object is downloaded first)."""
    if dataset.path.startswith("s3://"):
        from mlctl.providers import local_root, s3_data_client
        from mlctl.providers.s3 import s3_download

        client = s3_data_client(spec, dataset.path)
        return s3_download(client, dataset.path, spec.repo / local_root(spec) / "cache" / "data")
    return spec.repo / dataset.path


def dataset_fingerprint(spec: EnvSpec, dataset: Dataset) -> str | None:
    """The dataset's fingerprint, or None when it does not exist: sha256 of a local file's
    bytes, or ``s3etag:<etag>:<size>`` of an ``s3://`` object from a HEAD (no download)."""
    if dataset.path.startswith("s3://"):
        from mlctl.providers import s3_data_client
        from mlctl.providers.s3 import s3_fingerprint

        return s3_fingerprint(s3_data_client(spec, dataset.path), dataset.path)
    path = spec.repo / dataset.path
    return fingerprint_file(path) if path.is_file() else None
