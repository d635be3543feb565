"""A pull request's `plan --changed` sends credentials only to servers the base branch declares.

Each test builds a real git repository (a base commit on `main`, the pull request's commit on a
branch) and points an endpoint at a real HTTP listener on 127.0.0.1 that records every request.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import edit, invoke
from mlctl.gitops.endpoints import is_trusted, parse_trusted, unreviewed_endpoints
from mlctl.spec.loader import load_environment

ENVIRONMENT = Path("environments/dev/environment.yaml")
TOKEN = "mlflow-token-of-the-plan-job"
SECRET = "aws-secret-of-the-plan-job"


class Listener:
    """An HTTP server on 127.0.0.1 that records ``(method, path, headers)`` of every request and
    answers 404 (MLflow's "does not exist" JSON, or S3's ``NoSuchKey`` XML)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append((self.command, self.path, dict(self.headers.items())))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path.startswith("/api/"):
                    body, kind = b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}', "application/json"
                else:
                    body = b"<Error><Code>NoSuchKey</Code><Message>none</Message></Error>"
                    kind = "application/xml"
                self.send_response(404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def authorizations(self) -> list[str]:
        return [h["Authorization"] for _, _, h in self.requests if "Authorization" in h]


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a plan job holds: an MLflow token and S3 keys."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPLANJOB")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("MLCTL_TRUSTED_ENDPOINTS", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def base(repo: Path) -> Path:
    """The example repository committed on `main`, with the branch `feature` checked out."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def use_mirror(repo: Path, url: str) -> None:
    (repo / "providers" / "x.yaml").write_text(f"type: mlflow\ntracking_uri: {url}\n")
    edit(repo / ENVIRONMENT, "  training: local\n", "  training: local\n  tracking: x\n")


def use_s3_backend(repo: Path, url: str) -> None:
    edit(
        repo / ENVIRONMENT,
        "  type: local\n  path: state/dev.json",
        f"  type: s3\n  bucket: acme\n  key: state/dev.json\n  endpoint_url: {url}\n ",
    )


def plan_changed(repo: Path, *extra: str) -> tuple[int, str, str]:
    result = invoke(repo, "plan", "--changed", "--base", "main", *extra)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_pr_tracking_uri_gets_no_request(base: Path, listener: Listener) -> None:
    use_mirror(base, listener.url)
    commit(base, "point the mirror at my server")
    code, out, err = plan_changed(base, "--format", "markdown", "--out", str(base / "plans"))
    assert listener.requests == []
    assert code == 1
    line = (
        "environments/dev: not planned before review: providers/x.yaml tracking_uri is new in "
        "this change, and plan sends credentials to it; it is planned after merge"
    )
    assert out.startswith("<!-- mlctl-plan -->\n")
    assert "**Not planned before review:**" in out and line in out
    assert "No environment changed" not in out
    assert err.strip().splitlines()[-1] == f"Error: {line}"
    assert not (base / "plans" / "dev.json").exists()
    assert TOKEN not in out + err


def test_pr_s3_backend_endpoint_gets_no_request(base: Path, listener: Listener) -> None:
    use_s3_backend(base, listener.url)
    commit(base, "keep state on my server")
    code, out, _ = plan_changed(base)
    assert listener.requests == [] and listener.authorizations() == []
    assert code == 1
    assert "environments/dev: not planned before review: environments/dev/environment.yaml" in out
    assert "backend.endpoint_url is new in this change, and plan sends credentials to it" in out
    code, document, _ = plan_changed(base, "--format", "json")
    assert code == 1 and '"not_planned": [' in document and listener.requests == []


def test_unchanged_endpoint_is_still_contacted(base: Path, listener: Listener) -> None:
    use_mirror(base, listener.url)
    git(base, "checkout", "-q", "main")
    commit(base, "the reviewed mirror")
    git(base, "checkout", "-q", "feature")
    git(base, "merge", "-q", "--ff-only", "main")
    edit(base / "environments" / "dev" / "models.yaml", "team: growth", "team: retention")
    commit(base, "a tag")
    code, out, err = plan_changed(base)
    assert code == 0, out + err
    assert "not planned" not in out
    assert f"Bearer {TOKEN}" in listener.authorizations()


def test_trusted_endpoints_let_a_listed_one_through(
    base: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mirror(base, listener.url)
    commit(base, "point the mirror at a trusted server")
    monkeypatch.setenv("MLCTL_TRUSTED_ENDPOINTS", f"https://mlflow.example.com, 127.0.0.1:{listener.port}")
    code, out, err = plan_changed(base)
    assert code == 0, out + err
    assert f"Bearer {TOKEN}" in listener.authorizations()


def test_after_merge_the_apply_workflow_plans_it(
    base: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply.yml's `changed` job runs `plan --changed` on `main` after the merge (event `push`):
    the YAML is reviewed, so the environment is planned; a pull request's event is checked."""
    use_mirror(base, listener.url)
    commit(base, "point the mirror at a new server")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    code, _, _ = plan_changed(base)
    assert code == 1 and listener.requests == []
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    code, out, err = plan_changed(base, "--format", "json")
    assert code == 0, out + err
    assert '"not_planned": []' in out and f"Bearer {TOKEN}" in listener.authorizations()


def test_new_environment_counts_every_endpoint_as_new(base: Path, listener: Listener) -> None:
    import shutil

    shutil.copytree(base / "environments" / "dev", base / "environments" / "qa")
    use_s3_backend(base, listener.url)
    git(base, "checkout", "-q", "--", str(ENVIRONMENT))  # dev unchanged; qa is new with the listener
    edit(
        base / "environments" / "qa" / "environment.yaml",
        "  type: local\n  path: state/dev.json",
        f"  type: s3\n  bucket: acme\n  key: state/qa.json\n  endpoint_url: {listener.url}\n ",
    )
    commit(base, "a new environment")
    code, out, _ = plan_changed(base)
    assert code == 1 and listener.requests == []
    assert "environments/qa: not planned before review" in out
    assert "environments/qa/environment.yaml backend.endpoint_url is new in this change" in out


# --- the comparison itself ---------------------------------------------------------------


def findings(repo: Path) -> list[str]:
    spec = load_environment(repo, "dev")
    return [c.phrase() for c in unreviewed_endpoints(spec, git(repo, "rev-parse", "main"))]


def test_changed_removed_and_new_keys(base: Path) -> None:
    (base / "providers" / "s3.yaml").write_text(
        "type: s3\nbucket: acme\nendpoint_url: http://127.0.0.1:9\nregion: eu-west-1\n"
    )
    edit(base / ENVIRONMENT, "  artifacts: local\n", "  artifacts: s3\n")
    git(base, "checkout", "-q", "main")
    commit(base, "reviewed s3 artifacts")
    git(base, "checkout", "-q", "feature")
    git(base, "merge", "-q", "--ff-only", "main")
    assert findings(base) == []
    (base / "providers" / "s3.yaml").write_text("type: s3\nbucket: acme\nregion: eu-west-1\n")
    assert findings(base) == ["providers/s3.yaml endpoint_url differs from the base branch"]
    (base / "providers" / "s3.yaml").write_text(
        "type: s3\nbucket: other\nendpoint_url: http://127.0.0.1:9\nregion: eu-west-1\nprofile: ci\n"
    )
    assert findings(base) == [
        "providers/s3.yaml profile is new in this change",
        "providers/s3.yaml bucket differs from the base branch",
    ]


def test_is_trusted() -> None:
    trusted = parse_trusted(" https://MLflow.example.com/ , minio:9000,10.0.0.5")
    assert is_trusted("https://mlflow.example.com", trusted)
    assert is_trusted("http://minio:9000/", trusted)
    assert is_trusted("http://user:pw@10.0.0.5:1234/x", trusted)
    assert not is_trusted("http://mlflow.example.com", trusted)  # scheme and host listed together
    assert not is_trusted("http://minio:9001", trusted)
    assert not is_trusted("http://10.0.0.5.attacker.net", trusted)
    assert not is_trusted("https://mlflow.example.com", parse_trusted(""))
