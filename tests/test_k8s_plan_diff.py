"""The plan shows a unified diff of an endpoint's Kubernetes manifests: what the last apply
rendered (kept in the endpoint's state) against what the desired state renders now. The
cluster is kmock's in-memory Kubernetes emulator (see k8s_emulator.py)."""

from __future__ import annotations

import json
from pathlib import Path

import kmock  # noqa: F401  (a dev extra: the in-memory Kubernetes API emulator)
import pytest

import k8s_emulator
from conftest import edit, invoke, state_of
from k8s_emulator import EmulatorThread

emulator = k8s_emulator.emulator  # fixtures: kmock's emulator, KUBECONFIG pointing at it
kube = k8s_emulator.kube

DEPLOYMENTS = Path("environments/dev/deployments.yaml")


def endpoint_change(repo: Path) -> dict:
    result = invoke(repo, "plan", "-e", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    changes = [
        c for c in json.loads(result.stdout)["resource_changes"] if c["address"] == "endpoint.churn-api"
    ]
    assert len(changes) == 1, changes
    return changes[0]


def diff_of(change: dict) -> list[str]:
    details = change["mlctl"]["details"]
    start = details.index("manifests (last applied -> planned):")
    return details[start + 1 :]


@pytest.fixture
def on_k8s(applied: Path, kube: EmulatorThread) -> Path:
    (applied / "providers" / "k8s.yaml").write_text(
        "type: k8s\nnamespace: ml\nimage: ghcr.io/acme/mlctl:1.0.0\n"
    )
    edit(applied / DEPLOYMENTS, "provider: local ", "provider: k8s   ")
    return applied


def test_first_deploy_shows_the_whole_manifests_as_added(on_k8s: Path) -> None:
    change = endpoint_change(on_k8s)
    assert change["mlctl"]["verbs"] == ["update"]
    diff = diff_of(change)
    assert diff[0] == "--- /dev/null" and diff[1] == "+++ endpoint.churn-api (planned)"
    added = [line for line in diff[2:] if not line.startswith("@@")]
    assert added and all(line.startswith("+") for line in added)
    assert "+kind: Deployment" in added and "+kind: Service" in added
    assert "+    mlctl.dev/model-version: '1'" in added


def test_no_diff_after_apply_then_a_diff_per_change(on_k8s: Path) -> None:
    assert invoke(on_k8s, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    status = state_of(on_k8s)["resources"]["endpoint.churn-api"]["status"]
    assert status["manifests"].startswith("apiVersion: apps/v1\nkind: Deployment\n")
    assert invoke(on_k8s, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0

    # A setting of the endpoint: its diff is the replicas line, and (more than one replica)
    # the PodDisruptionBudget it now needs.
    edit(on_k8s / DEPLOYMENTS, "replicas: 1", "replicas: 3")
    diff = diff_of(endpoint_change(on_k8s))
    assert diff[:2] == ["--- endpoint.churn-api (last applied)", "+++ endpoint.churn-api (planned)"]
    changed = [line for line in diff[2:] if line[:1] in "+-"]
    assert changed[:2] == ["-  replicas: 1", "+  replicas: 3"]
    assert all(line.startswith("+") for line in changed[2:])
    assert "+kind: PodDisruptionBudget" in changed and "+  maxUnavailable: 1" in changed
    edit(on_k8s / DEPLOYMENTS, "replicas: 3", "replicas: 1")

    # A change only in the provider file (a new image) is invisible in the endpoint's spec,
    # but not in its manifests: the plan updates the endpoint and shows why.
    edit(on_k8s / "providers" / "k8s.yaml", "mlctl:1.0.0", "mlctl:1.1.0")
    change = endpoint_change(on_k8s)
    assert change["mlctl"]["verbs"] == ["update"]
    assert "rendered Kubernetes manifests changed" in change["mlctl"]["reason"]
    changed = [line for line in diff_of(change)[2:] if line[:1] in "+-"]
    assert changed == ["-        image: ghcr.io/acme/mlctl:1.0.0", "+        image: ghcr.io/acme/mlctl:1.1.0"]
    text = invoke(on_k8s, "plan", "-e", "dev").stdout
    assert "manifests (last applied -> planned):" in text
    assert "+        image: ghcr.io/acme/mlctl:1.1.0" in text
    markdown = invoke(on_k8s, "plan", "-e", "dev", "--format", "markdown").stdout
    assert "+        image: ghcr.io/acme/mlctl:1.1.0" in markdown
    assert invoke(on_k8s, "apply", "-e", "dev", "--auto-approve").exit_code == 0
    assert invoke(on_k8s, "plan", "-e", "dev", "--detailed-exitcode").exit_code == 0

    # A new version still to be trained: the version-bearing lines are "(known after apply)".
    edit(on_k8s / "environments" / "dev" / "models.yaml", "max_depth: 8", "max_depth: 7")
    changed = [line for line in diff_of(endpoint_change(on_k8s))[2:] if line[:1] in "+-"]
    assert "-    mlctl.dev/model-version: '1'" in changed
    assert "+    mlctl.dev/model-version: (known after apply)" in changed
    assert "+          value: (known after apply)" in changed


def test_local_endpoints_have_no_manifest_diff(applied: Path) -> None:
    edit(applied / DEPLOYMENTS, "replicas: 1", "replicas: 2")
    change = endpoint_change(applied)
    assert not any("manifests" in line for line in change["mlctl"]["details"])
