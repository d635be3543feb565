"""The MLflow provider: a tracking server and model registry that mirrors mlctl's state.

Spoken over MLflow's REST API with the standard library (``urllib``), not the ``mlflow``
client: importing ``mlflow`` costs seconds and pulls hundreds of packages into every image,
while mlctl needs a dozen endpoints. ``plan`` and ``--help`` never import this module unless
an environment names an mlflow provider, and then only ``urllib``.

Credentials come from the environment variables MLflow's own client reads:
``MLFLOW_TRACKING_TOKEN`` (Bearer) or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``
(Basic); never from YAML, never written to state. Every failure is an
:class:`~mlctl.errors.MlctlError` naming the server and the call; a missing resource is
:class:`MlflowNotFound`.

Artifacts are uploaded through the server's artifact proxy (``mlflow server
--serve-artifacts``, the default since MLflow 2.0; ``mlflow-artifacts:`` URIs) or, for a
``file:`` artifact root on this machine, copied there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError

API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
TIMEOUT = 30.0


class MlflowNotFound(MlctlError):
    """The MLflow server answered RESOURCE_DOES_NOT_EXIST (HTTP 404)."""


@dataclass(frozen=True)
class MlflowVersion:
    """One version of a registered model as the server reports it."""

    name: str
    version: int
    source: str
    run_id: str | None
    tags: dict[str, str]


class MlflowClient:
    """A thin, typed REST client of one MLflow server (``tracking_uri``)."""

    def __init__(self, tracking_uri: str, *, timeout: float = TIMEOUT) -> None:
        self.uri = tracking_uri.rstrip("/")
        self.timeout = timeout

    # -- transport -------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user:
            password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        return headers

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, data: bytes | None = None
    ) -> Any:
        """Call ``path`` (below the server root); the decoded JSON answer ({} when empty).

        GET sends ``body`` as the query string, other methods as JSON (as the server reads them).
        """
        url = self.uri + path
        payload = data
        if body is not None and method == "GET":
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            payload = json.dumps(body).encode()
        headers = self._headers()
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        req = urllib.request.Request(url, data=payload, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_message(exc.read())
            if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in detail:
                raise MlflowNotFound(f"mlflow {self.uri}: {detail or 'not found'}") from None
            raise MlctlError(f"mlflow {self.uri}: {method} {path} failed ({exc.code}): {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MlctlError(f"mlflow {self.uri} is not reachable: {reason}") from None
        return json.loads(raw) if raw.strip() else {}

    # -- experiments and runs --------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, created when absent."""
        try:
            found = self.request("GET", f"{API}/experiments/get-by-name", {"experiment_name": name})
            return str(found["experiment"]["experiment_id"])
        except MlflowNotFound:
            return str(self.request("POST", f"{API}/experiments/create", {"name": name})["experiment_id"])

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> tuple[str, str]:
        """A new run: (run_id, artifact_uri)."""
        answer = self.request(
            "POST",
            f"{API}/runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
            },
        )
        info = answer["run"]["info"]
        return str(info["run_id"]), str(info["artifact_uri"])

    def log_batch(
        self,
        run_id: str,
        *,
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Params, metrics and tags in as few calls as the server's limits allow."""
        now = int(time.time() * 1000)
        p = [{"key": k, "value": str(v)[:6000]} for k, v in (params or {}).items()]
        m = [{"key": k, "value": float(v), "timestamp": now, "step": 0} for k, v in (metrics or {}).items()]
        t = [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]
        while p or m or t:  # server limits: 100 params, 1000 metrics, 1000 items per call
            body = {"run_id": run_id, "params": p[:100], "metrics": m[:800], "tags": t[:100]}
            p, m, t = p[100:], m[800:], t[100:]
            self.request("POST", f"{API}/runs/log-batch", body)

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0) -> None:
        self.request(
            "POST",
            f"{API}/runs/log-metric",
            {
                "run_id": run_id,
                "key": key,
                "value": value,
                "timestamp": int(time.time() * 1000),
                "step": step,
            },
        )

    def finish_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.request(
            "POST",
            f"{API}/runs/update",
            {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)},
        )

    def upload(self, artifact_uri: str, source: Path, name: str) -> None:
        """Upload ``source`` (a file, or a directory recursively) as ``name`` under the run's
        ``artifact_uri``."""
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            rel = name if path == source else f"{name}/{path.relative_to(source).as_posix()}"
            self._upload_file(artifact_uri, path, rel)

    def _upload_file(self, artifact_uri: str, path: Path, rel: str) -> None:
        parsed = urllib.parse.urlparse(artifact_uri)
        if parsed.scheme == "mlflow-artifacts":
            prefix = parsed.path.lstrip("/")
            quoted = urllib.parse.quote(f"{prefix}/{rel}")
            self.request("PUT", f"{ARTIFACTS_API}/{quoted}", data=path.read_bytes())
        elif parsed.scheme in ("file", ""):
            target = Path(urllib.parse.unquote(parsed.path)) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        else:
            raise MlctlError(
                f"mlflow {self.uri}: artifact root {artifact_uri} is not reachable from mlctl; "
                "start the server with --serve-artifacts"
            )

    def download(self, artifact_uri: str, target: Path) -> Path:
        """Download the file or directory at ``artifact_uri`` (``mlflow-artifacts:`` or
        ``file:``) into ``target``; returns ``target``."""
        parsed = urllib.parse.urlparse(artifact_uri)
        if parsed.scheme in ("file", ""):
            source = Path(urllib.parse.unquote(parsed.path))
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            else:
                raise MlflowNotFound(f"mlflow: {artifact_uri} does not exist")
            return target
        if parsed.scheme != "mlflow-artifacts":
            raise MlctlError(f"mlflow: cannot download {artifact_uri} (need mlflow-artifacts: or file:)")
        prefix = parsed.path.lstrip("/")
        listing = self.request("GET", ARTIFACTS_API, {"path": prefix}).get("files", [])
        if not listing:  # a single file, not a folder
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._get_bytes(prefix))
            return target
        target.mkdir(parents=True, exist_ok=True)
        for entry in listing:
            child = entry["path"].rsplit("/", 1)[-1]
            if child in ("", ".", "..") or "/" in child or "\\" in child:
                raise MlctlError(f"mlflow: refusing artifact name {entry['path']!r}")
            self.download(f"mlflow-artifacts:/{prefix}/{child}", target / child)
        return target

    def _get_bytes(self, prefix: str) -> bytes:
        req = urllib.request.Request(
            f"{self.uri}{ARTIFACTS_API}/{urllib.parse.quote(prefix)}", headers=self._headers()
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            raise MlctlError(f"mlflow {self.uri}: download of {prefix} failed ({exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            raise MlctlError(f"mlflow {self.uri} is not reachable: {getattr(exc, 'reason', exc)}") from None

    def run_artifact_uri(self, run_id: str) -> str:
        return str(self.request("GET", f"{API}/runs/get", {"run_id": run_id})["run"]["info"]["artifact_uri"])

    # -- model registry --------------------------------------------------------------------
    def ensure_registered_model(self, name: str) -> None:
        try:
            self.request("GET", f"{API}/registered-models/get", {"name": name})
        except MlflowNotFound:
            self.request("POST", f"{API}/registered-models/create", {"name": name})

    def aliases(self, name: str) -> dict[str, int] | None:
        """alias -> MLflow version number of registered model ``name``; None when absent."""
        try:
            found = self.request("GET", f"{API}/registered-models/get", {"name": name})
        except MlflowNotFound:
            return None
        return {a["alias"]: int(a["version"]) for a in found["registered_model"].get("aliases", [])}

    def create_version(self, name: str, source: str, run_id: str | None, tags: dict[str, str]) -> int:
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        if run_id:
            body["run_id"] = run_id
        return int(self.request("POST", f"{API}/model-versions/create", body)["model_version"]["version"])

    def versions(self, name: str) -> list[MlflowVersion]:
        """Every version of registered model ``name`` (empty when it does not exist)."""
        found: list[MlflowVersion] = []
        token: str | None = None
        while True:
            query: dict[str, Any] = {"filter": f"name='{_quote_filter(name)}'", "max_results": 200}
            if token:
                query["page_token"] = token
            answer = self.request("GET", f"{API}/model-versions/search", query)
            for v in answer.get("model_versions", []):
                found.append(_version(v))
            token = answer.get("next_page_token")
            if not token:
                return found

    def get_version(self, name: str, version: int) -> MlflowVersion:
        answer = self.request("GET", f"{API}/model-versions/get", {"name": name, "version": str(version)})
        return _version(answer["model_version"])

    def version_by_alias(self, name: str, alias: str) -> MlflowVersion:
        answer = self.request("GET", f"{API}/registered-models/alias", {"name": name, "alias": alias})
        return _version(answer["model_version"])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.request(
            "POST", f"{API}/registered-models/alias", {"name": name, "alias": alias, "version": str(version)}
        )

    def delete_alias(self, name: str, alias: str) -> None:
        with contextlib.suppress(MlflowNotFound):  # already absent
            self.request("DELETE", f"{API}/registered-models/alias", {"name": name, "alias": alias})

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.request(
            "POST",
            f"{API}/model-versions/set-tag",
            {"name": name, "version": str(version), "key": key, "value": value},
        )

    def download_uri(self, name: str, version: int) -> str:
        answer = self.request(
            "GET", f"{API}/model-versions/get-download-uri", {"name": name, "version": str(version)}
        )
        return str(answer["artifact_uri"])


def _version(v: dict[str, Any]) -> MlflowVersion:
    return MlflowVersion(
        name=str(v["name"]),
        version=int(v["version"]),
        source=str(v.get("source", "")),
        run_id=v.get("run_id") or None,
        tags={t["key"]: t.get("value", "") for t in v.get("tags", [])},
    )


def _quote_filter(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _error_message(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]
    if isinstance(body, dict):
        return f"{body.get('error_code', '')}: {body.get('message', '')}".strip(": ")
    return str(body)[:200]
