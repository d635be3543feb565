"""Every container command line the Kubernetes manifests render runs on the image.

The manifests are rendered as ``mlctl render`` and the k8s provider render them; each
container's process is what the kubelet would start on the image (its ENTRYPOINT/CMD read
from the Dockerfile, combined with the container's ``command``/``args`` by
:func:`container_image.kubelet_argv`), run as a real process through the installed
``mlctl`` console script, in the repository as the image's working directory, with the
container's environment. Nothing of the CLI is mocked. The one change: the serving pod binds
0.0.0.0, the test binds the same command on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import edit, invoke
from container_image import process_of

DEPLOYMENTS = Path("environments/dev/deployments.yaml")
TOKEN = "s3cr3t-token-from-the-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_deployment(repo: Path, tmp_path: Path, port: int, token_secret: str | None) -> dict[str, Any]:
    provider = "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\n"
    if token_secret:
        provider += f"token_secret: {token_secret}\n"
    (repo / "providers" / "k8s.yaml").write_text(provider)
    edit(repo / DEPLOYMENTS, "provider: local", "provider: k8s")
    edit(repo / DEPLOYMENTS, "replicas: 1", f"replicas: 2\n    port: {port}")
    out = tmp_path / f"rendered-{token_secret}"
    result = invoke(repo, "render", "-e", "dev", "--out", str(out))
    assert result.exit_code == 0, result.output
    deployment: dict[str, Any] = yaml.safe_load((out / "deployment-churn-api.yaml").read_text())
    return deployment


def wait_healthy(url: str, process: subprocess.Popen[str], headers: dict[str, str]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"serve exited {process.returncode}: {err[-2000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("token_secret", [None, "churn-api-token"], ids=["insecure", "token-secret"])
def test_the_rendered_serving_container_starts_and_answers(
    applied: Path, tmp_path: Path, token_secret: str | None
) -> None:
    port = free_port()
    deployment = render_deployment(applied, tmp_path, port, token_secret)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    argv, env = process_of(container, {("churn-api-token", "token"): TOKEN})
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert ("--insecure" in argv) == (token_secret is None)  # the decision is in the manifest
    argv[argv.index("--host") + 1] = "127.0.0.1"
    assert container["ports"][0]["containerPort"] == port
    process = subprocess.Popen(
        argv, cwd=applied, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_healthy(base + container["livenessProbe"]["httpGet"]["path"], process, {}) == 200
        assert status_of(base + container["readinessProbe"]["httpGet"]["path"]) == 200
        if token_secret:
            # The token came from the Secret: the scrape path needs it.
            assert status_of(base + "/metrics") == 401
            assert status_of(base + "/metrics", {"Authorization": f"Bearer {TOKEN}"}) == 200
        else:
            assert status_of(base + "/metrics") == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_serve_in_a_pod_refuses_an_open_bind_without_the_rendered_decision(
    applied: Path, tmp_path: Path
) -> None:
    """Why the manifest must carry ``--insecure`` or a token: without either, the very same
    container exits 1 in one line instead of serving 0.0.0.0 openly."""
    port = free_port()
    deployment = render_deployment(applied, tmp_path, port, None)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container["args"].remove("--insecure")
    argv, env = process_of(container)
    done = subprocess.run(argv, cwd=applied, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "--insecure" in lines[0], done.stderr


class RecordingClient:
    """Stands in for the Kubernetes API (not for the CLI): keeps what the provider applies."""

    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest)
        return manifest


def test_the_rendered_training_container_parses_and_runs_to_a_clean_error(applied: Path) -> None:
    """The Job's command line parses on the image and runs ``train-job``, which (here, with
    local artifacts) stops in one line saying what it needs; a parse error would be a usage
    message with exit code 2. ``test_k8s_training.py`` runs it to the end against S3."""
    from mlctl.providers.k8s import K8sTraining
    from mlctl.spec.loader import load_environment

    (applied / "providers" / "k8s.yaml").write_text("type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1\n")
    edit(applied / "environments" / "dev" / "environment.yaml", "  training: local", "  training: k8s")
    spec = load_environment(applied, "dev")
    client = RecordingClient()
    training = K8sTraining(spec, spec.providers["k8s"], client)  # type: ignore[arg-type]
    identity = "sha256:" + "ab" * 32
    training.submit(
        "churn-predictor", identity=identity, result_uri="s3://b/dev/candidates/x.json", result_key="k" * 64
    )
    (job,) = client.applied
    (container,) = job["spec"]["template"]["spec"]["containers"]
    argv, env = process_of(container)
    done = subprocess.run(argv, cwd=applied, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), done.stderr
    assert "Usage:" not in done.stderr and "Traceback" not in done.stderr
    assert "s3" in lines[0]


def test_the_image_without_args_prints_the_help(tmp_path: Path) -> None:
    """A container with neither command nor args runs ENTRYPOINT + CMD."""
    argv, env = process_of({"name": "bare"})
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Usage: mlctl" in done.stdout
