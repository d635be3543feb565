"""The example repository on S3 (SeaweedFS): :func:`use_s3` moves the dev environment's
state, artifacts and datasets to a fresh versioned bucket; :func:`stored_state` reads the
state document the bucket holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import edit
from seaweed import Seaweed, fresh_bucket

ENVIRONMENT = Path("environments/dev/environment.yaml")
KEY = "state/dev.json"  # the state object's key in the bucket


def use_s3(repo: Path, server: Seaweed, *, artifacts: bool = True, data: bool = True) -> str:
    """Point the example's dev environment at a fresh bucket: state, artifacts, datasets."""
    bucket = fresh_bucket(server, versioned=True)
    edit(
        repo / ENVIRONMENT,
        "  type: local\n  path: state/dev.json",
        f"  type: s3\n  bucket: {bucket}\n  key: {KEY}\n  region: us-east-1\n"
        f"  endpoint_url: {server.endpoint_url}",
    )
    if artifacts:
        (repo / "providers" / "s3.yaml").write_text(
            f"type: s3\nbucket: {bucket}\nprefix: artifacts\nendpoint_url: {server.endpoint_url}\n"
        )
        edit(repo / ENVIRONMENT, "  artifacts: local", "  artifacts: s3")
    if data:
        client = server.client()
        data_yaml = repo / "environments" / "dev" / "data.yaml"
        for name in ("customer_activity", "churn_labels", "churn_outcomes"):
            body = (repo / "data" / f"{name}.csv").read_bytes()
            client.put_object(Bucket=bucket, Key=f"data/{name}.csv", Body=body)
            edit(data_yaml, f"path: data/{name}.csv", f"path: s3://{bucket}/data/{name}.csv")
    return bucket


def stored_state(server: Seaweed, bucket: str) -> dict[str, Any]:
    """The state document stored under :data:`KEY` in ``bucket``, parsed."""
    return json.loads(server.client().get_object(Bucket=bucket, Key=KEY)["Body"].read())
