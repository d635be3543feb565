"""Where a dataset's bytes are: local files in the repository, or ``s3://`` objects.

Calls with different costs: :func:`dataset_fingerprint` is what plans use (hash a local
file, HEAD an S3 object; never a download), and so is :func:`dataset_rows` (counts the rows of a
local file without reading values; None for S3); :func:`dataset_path` is what readers use
(checks, training, materialization, monitors) and downloads an S3 object into a local cache
keyed by its ETag first.
"""

from __future__ import annotations

from pathlib import Path

from mlctl.ml.fingerprint import fingerprint_file
from mlctl.spec.envspec import EnvSpec
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


def dataset_rows(spec: EnvSpec, dataset: Dataset) -> int | None:
    """Rows of a local dataset now (what ``retrain.min_new_rows`` counts), or None when they
    cannot be known cheaply: an ``s3://`` object (never downloaded for this), or a file that
    is missing or unreadable (the data checks report it)."""
    if dataset.path.startswith("s3://"):
        return None
    return count_rows(spec.repo / dataset.path, dataset.file_format)


def count_rows(path: Path, fmt: str) -> int | None:
    """Rows of a local CSV (lines after the header) or Parquet file (footer metadata); None
    when the file is not local or cannot be read. Reads no values into memory."""
    if not path.is_file():
        return None
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines = 0
        last = b"\n"
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            lines += 1
        return max(lines - 1, 0)
    except Exception:  # an unreadable file is reported by the data checks
        return None
