"""The image, checked statically (no Docker engine here): its Dockerfile, and its ENTRYPOINT /
CMD against the command lines the Kubernetes manifests render, combined as the kubelet
combines them and parsed by the real CLI (``tests/test_image_commands.py`` runs them)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from container_image import final_stage, image_config, instructions, kubelet_argv
from mlctl.cli.main import cli
from mlctl.providers.k8s_manifests import (
    PORT,
    REPO_DIR,
    RUN_AS,
    WRITABLE_DIRS,
    endpoint_manifests,
    training_job_manifest,
)
from mlctl.spec.models import Endpoint, K8sProvider
from mlctl.state.document import Artifact

ROOT = Path(__file__).resolve().parents[1]


PROVIDER = K8sProvider(type="k8s", namespace="ml", image="ghcr.io/acme/mlctl:1.0.0")
ARTIFACT = Artifact(uri="s3://b/artifacts/prod/churn/r1/model.joblib", sha256="ab" * 32, size=1)


def parse(argv: list[str]) -> tuple[str, click.Command, list[str], click.Context]:
    """Parse ``argv`` (``mlctl ...``) with the root group: the subcommand, its tokens, and the
    root context (nothing is invoked)."""
    root = cli.make_context("mlctl", argv[1:])
    tokens = [*getattr(root, "_protected_args", []), *root.args]  # click >= 8.2 keeps them apart
    name, command, rest = cli.resolve_command(root, tokens)
    assert name is not None and command is not None, argv
    return name, command, rest, root


def rendered_containers() -> dict[str, dict[str, Any]]:
    out = {}
    for token in (None, "api-token"):
        provider = PROVIDER.model_copy(update={"token_secret": token})
        endpoint = Endpoint(model="churn-predictor", provider="k8s", replicas=2)
        for manifest in endpoint_manifests("prod", "api", endpoint, provider, version=3, artifact=ARTIFACT):
            for container in (
                manifest.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            ):
                out[f"{manifest['kind']}/{container['name']}/token={token}"] = container
    job = training_job_manifest(
        "prod", "churn-predictor", PROVIDER, identity="sha256:" + "1" * 64, result_uri="s3://b/c/x.json"
    )
    out["Job/train"] = job["spec"]["template"]["spec"]["containers"][0]
    return out


def test_slim_base_non_root_and_mlctl_entrypoint() -> None:
    steps = instructions()
    bases = [rest for word, rest in steps if word == "FROM"]
    assert bases and all(re.match(r"python:3\.1[1-9]-slim\b", b) for b in bases)
    config = image_config()
    assert config["User"].split(":")[0] == str(RUN_AS)  # the uid the pods' securityContext runs as
    assert config["Entrypoint"] == ["mlctl"]
    assert config["Cmd"] == ["--help"]
    assert config["WorkingDir"] == REPO_DIR
    exposed = [rest for word, rest in final_stage() if word == "EXPOSE"]
    assert exposed == [str(PORT)]
    # The console script the ENTRYPOINT names is the one the package installs.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[config["Entrypoint"][0]] == "mlctl.cli.main:main"


@pytest.mark.parametrize("name", sorted(rendered_containers()))
def test_every_rendered_command_line_parses_on_the_image(name: str) -> None:
    """ENTRYPOINT + the container's args, parsed by the real click commands (no invocation):
    the root group's options, then the subcommand's arguments and options."""
    container = rendered_containers()[name]
    config = image_config()
    assert "command" not in container, "the manifests rely on the image's ENTRYPOINT"
    argv = kubelet_argv(container, config["Entrypoint"], config["Cmd"])
    assert argv[0] == "mlctl", shlex.join(argv)
    sub_name, sub, rest, root = parse(argv)
    assert sub_name == container["args"][0]
    with sub.make_context(sub_name, rest, parent=root) as parsed:  # UsageError here = a broken manifest
        assert parsed.params
    if name.startswith("Deployment"):
        assert ("--insecure" in argv) == name.endswith("token=None")


def test_a_broken_command_line_fails_the_parse() -> None:
    """The parse check bites: the old image's ENTRYPOINT with the rendered args is refused
    exactly as the issue reported."""
    container = rendered_containers()["Deployment/model-server/token=None"]
    old_entrypoint = ["mlctl", "-C", "/repo", "serve", "--host", "0.0.0.0", "--port", "8000"]
    argv = kubelet_argv(container, old_entrypoint, ["--help"])
    sub_name, sub, rest, root = parse(argv)
    with pytest.raises(click.UsageError, match="unexpected extra argument"):
        sub.make_context(sub_name, rest, parent=root)


def test_the_writable_mounts_are_inside_the_working_directory() -> None:
    """mlctl writes under ``<repo>/.mlctl`` (and /tmp): the emptyDir must sit in the image's
    WORKDIR, where ``mlctl`` runs."""
    mounts = dict((path, name) for name, path in WRITABLE_DIRS)
    assert f"{image_config()['WorkingDir']}/.mlctl" in mounts and "/tmp" in mounts


def test_build_context_copies_only_what_exists_and_skips_secrets() -> None:
    for word, rest in instructions():
        if word == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".mlctl", "state"} <= set(ignored)
