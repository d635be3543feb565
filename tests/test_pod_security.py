"""Rendered pods against Pod Security "restricted" (which includes "baseline"), one rule per
assertion, as the Pod Security admission controller checks them
(https://kubernetes.io/docs/concepts/security/pod-security-standards/), plus mlctl's own rule:
a read-only root filesystem whose writable directories are exactly the emptyDirs mlctl needs.

Each rule is a function returning its violations. ``BITES`` breaks a compliant pod in the one
way each rule forbids and checks that rule (and only a check that bites) reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlctl.providers.k8s_manifests import (
    REPO_DIR,
    RUN_AS,
    WRITABLE_DIRS,
    endpoint_manifests,
    training_job_manifest,
)
from mlctl.spec.models import Autoscale, Endpoint, K8sProvider
from mlctl.state.document import Artifact

Pod = dict[str, Any]
ARTIFACT = Artifact(uri="s3://models/artifacts/prod/churn/run1/model.joblib", sha256="ab" * 32, size=1)
PROVIDER = K8sProvider(type="k8s", namespace="ml", image="ghcr.io/acme/mlctl:1.0.0")


def rendered_pods() -> dict[str, Pod]:
    """Every pod template mlctl renders, by a name for the test id."""
    pods: dict[str, Pod] = {}
    for label, endpoint, provider in (
        ("deployment", Endpoint(model="churn", provider="k8s", replicas=3), PROVIDER),
        (
            "deployment-token-autoscale",
            Endpoint(model="churn", provider="k8s", autoscale=Autoscale(min_replicas=2)),
            PROVIDER.model_copy(update={"token_secret": "churn-api-token"}),
        ),
    ):
        for manifest in endpoint_manifests("prod", "api", endpoint, provider, version=4, artifact=ARTIFACT):
            if manifest["kind"] == "Deployment":
                pods[label] = manifest["spec"]["template"]["spec"]
    job = training_job_manifest(
        "prod", "churn", PROVIDER, identity="sha256:" + "0" * 64, result_uri="s3://b/r"
    )
    pods["training-job"] = job["spec"]["template"]["spec"]
    return pods


def containers(pod: Pod) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]


def context_of(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


# -- baseline ---------------------------------------------------------------------------------


def host_process(pod: Pod) -> list[str]:
    """HostProcess: windowsOptions.hostProcess unset or false (pod and containers)."""
    scopes = [pod.get("securityContext") or {}, *map(context_of, containers(pod))]
    return [
        "windowsOptions.hostProcess is true"
        for s in scopes
        if (s.get("windowsOptions") or {}).get("hostProcess")
    ]


def host_namespaces(pod: Pod) -> list[str]:
    """Host namespaces: hostNetwork, hostPID, hostIPC unset or false."""
    return [f"{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if pod.get(field)]


def privileged(pod: Pod) -> list[str]:
    """Privileged containers: securityContext.privileged unset or false."""
    return [
        f"container {c['name']} is privileged" for c in containers(pod) if context_of(c).get("privileged")
    ]


def host_path_volumes(pod: Pod) -> list[str]:
    """HostPath volumes: forbidden."""
    return [f"volume {v['name']} is a hostPath" for v in pod.get("volumes", []) if "hostPath" in v]


def host_ports(pod: Pod) -> list[str]:
    """Host ports: hostPort unset or 0."""
    return [
        f"container {c['name']} uses hostPort {p['hostPort']}"
        for c in containers(pod)
        for p in c.get("ports", [])
        if p.get("hostPort")
    ]


def app_armor(pod: Pod) -> list[str]:
    """AppArmor: unset, RuntimeDefault or Localhost."""
    scopes = [pod.get("securityContext") or {}, *map(context_of, containers(pod))]
    return [
        f"appArmorProfile {s['appArmorProfile']['type']}"
        for s in scopes
        if "appArmorProfile" in s and s["appArmorProfile"].get("type") not in ("RuntimeDefault", "Localhost")
    ]


def se_linux(pod: Pod) -> list[str]:
    """SELinux: type unset or one of container_t, container_init_t, container_kvm_t,
    container_engine_t; user and role unset."""
    allowed = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
    out = []
    for scope in [pod.get("securityContext") or {}, *map(context_of, containers(pod))]:
        options = scope.get("seLinuxOptions") or {}
        if options.get("type", "") not in allowed or options.get("user") or options.get("role"):
            out.append(f"seLinuxOptions {options}")
    return out


def proc_mount(pod: Pod) -> list[str]:
    """/proc mount type: unset or Default."""
    return [
        f"container {c['name']} procMount {context_of(c)['procMount']}"
        for c in containers(pod)
        if context_of(c).get("procMount", "Default") != "Default"
    ]


def sysctls(pod: Pod) -> list[str]:
    """Sysctls: only the safe set."""
    safe = {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
    found = (pod.get("securityContext") or {}).get("sysctls") or []
    return [f"sysctl {s['name']}" for s in found if s["name"] not in safe]


# -- restricted -------------------------------------------------------------------------------


def volume_types(pod: Pod) -> list[str]:
    """Volume types: configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim,
    projected, secret only."""
    allowed = {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
    return [
        f"volume {v['name']} has type {kind}"
        for v in pod.get("volumes", [])
        for kind in v
        if kind != "name" and kind not in allowed
    ]


def privilege_escalation(pod: Pod) -> list[str]:
    """Privilege escalation: allowPrivilegeEscalation false on every container."""
    return [
        f"container {c['name']} may escalate privileges"
        for c in containers(pod)
        if context_of(c).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(pod: Pod) -> list[str]:
    """Running as non-root: runAsNonRoot true on the pod (and not false on a container), or
    true on every container."""
    pod_level = (pod.get("securityContext") or {}).get("runAsNonRoot")
    out = []
    for c in containers(pod):
        own = context_of(c).get("runAsNonRoot")
        if own is False or (own is None and pod_level is not True):
            out.append(f"container {c['name']} may run as root")
    return out


def run_as_user(pod: Pod) -> list[str]:
    """Running as non-root user: runAsUser unset or non-zero (pod and containers)."""
    scopes = [pod.get("securityContext") or {}, *map(context_of, containers(pod))]
    return ["runAsUser is 0" for s in scopes if s.get("runAsUser") == 0]


def seccomp(pod: Pod) -> list[str]:
    """Seccomp: RuntimeDefault or Localhost, on the pod (not Unconfined on a container) or
    on every container."""
    ok = ("RuntimeDefault", "Localhost")
    pod_type = ((pod.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    out = []
    if pod_type is not None and pod_type not in ok:
        out.append(f"pod seccompProfile {pod_type}")
    for c in containers(pod):
        own = (context_of(c).get("seccompProfile") or {}).get("type")
        if (own is not None and own not in ok) or (own is None and pod_type not in ok):
            out.append(f"container {c['name']} seccompProfile {own or pod_type}")
    return out


def capabilities(pod: Pod) -> list[str]:
    """Capabilities: drop ALL on every container; add nothing but NET_BIND_SERVICE."""
    out = []
    for c in containers(pod):
        caps = context_of(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"container {c['name']} does not drop ALL capabilities")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            out.append(f"container {c['name']} adds {sorted(extra)}")
    return out


# -- mlctl ------------------------------------------------------------------------------------


def read_only_root(pod: Pod) -> list[str]:
    """mlctl: a read-only root filesystem; mlctl's writable directories (``/tmp``, the
    repository's ``.mlctl``) are emptyDirs mounted in every container."""
    out = []
    empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for c in containers(pod):
        if context_of(c).get("readOnlyRootFilesystem") is not True:
            out.append(f"container {c['name']} has a writable root filesystem")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for _, path in WRITABLE_DIRS:
            if mounts.get(path) not in empty:
                out.append(f"container {c['name']}: {path} is not a writable emptyDir")
    return out


RULES: list[Callable[[Pod], list[str]]] = [
    host_process,
    host_namespaces,
    privileged,
    host_path_volumes,
    host_ports,
    app_armor,
    se_linux,
    proc_mount,
    sysctls,
    volume_types,
    privilege_escalation,
    run_as_non_root,
    run_as_user,
    seccomp,
    capabilities,
    read_only_root,
]
PODS = rendered_pods()


@pytest.mark.parametrize("pod_name", sorted(PODS))
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rendered_pod_passes(rule: Callable[[Pod], list[str]], pod_name: str) -> None:
    assert rule(PODS[pod_name]) == []


def _first(pod: Pod) -> dict[str, Any]:
    return pod["containers"][0]


def _ctx(pod: Pod) -> dict[str, Any]:
    return _first(pod)["securityContext"]


#: One way to break a compliant pod per rule.
BITES: dict[str, Callable[[Pod], None]] = {
    "host_process": lambda p: _ctx(p).update(windowsOptions={"hostProcess": True}),
    "host_namespaces": lambda p: p.update(hostNetwork=True),
    "privileged": lambda p: _ctx(p).update(privileged=True),
    "host_path_volumes": lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "host_ports": lambda p: _first(p).update(ports=[{"containerPort": 8080, "hostPort": 8080}]),
    "app_armor": lambda p: _ctx(p).update(appArmorProfile={"type": "Unconfined"}),
    "se_linux": lambda p: _ctx(p).update(seLinuxOptions={"type": "spc_t"}),
    "proc_mount": lambda p: _ctx(p).update(procMount="Unmasked"),
    "sysctls": lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "volume_types": lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    "privilege_escalation": lambda p: _ctx(p).pop("allowPrivilegeEscalation"),
    "run_as_non_root": lambda p: _ctx(p).update(runAsNonRoot=False),
    "run_as_user": lambda p: p["securityContext"].update(runAsUser=0),
    "seccomp": lambda p: _ctx(p).update(seccompProfile={"type": "Unconfined"}),
    "capabilities": lambda p: _ctx(p).update(capabilities={"add": ["SYS_ADMIN"]}),
    "read_only_root": lambda p: _ctx(p).update(readOnlyRootFilesystem=False),
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_each_rule_bites_on_a_failing_fixture(rule: Callable[[Pod], list[str]]) -> None:
    pod = copy.deepcopy(PODS["deployment"])
    BITES[rule.__name__](pod)
    assert rule(pod), f"{rule.__name__} missed a violation"


def test_the_old_pods_would_have_been_rejected() -> None:
    """The pods rendered before restricted-by-default (no capabilities, no seccomp, writable
    root; the Job without any securityContext) fail the rules they broke."""
    old = copy.deepcopy(PODS["deployment"])
    del old["securityContext"]
    _first(old)["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": False,
    }
    assert capabilities(old) and seccomp(old) and read_only_root(old)
    job = copy.deepcopy(PODS["training-job"])
    del job["securityContext"], _first(job)["securityContext"]
    assert privilege_escalation(job) and run_as_non_root(job) and seccomp(job) and capabilities(job)


def test_pods_run_as_the_image_user_and_mount_where_mlctl_writes(repo: Path) -> None:
    """The uid is the image's user, and every directory mlctl writes in a pod (the artifact
    and data caches, run files, the prediction log; temporary files) is under a mounted
    emptyDir, asked of the code that decides those paths, not copied from it."""
    from mlctl.providers import artifact_store, local_root, runs_root
    from mlctl.providers.predlog import prediction_log_dir
    from mlctl.spec.loader import load_environment

    (repo / "providers" / "s3.yaml").write_text("type: s3\nbucket: b\nprefix: artifacts\n")
    path = repo / "environments" / "prod" / "environment.yaml"
    path.write_text(path.read_text().replace("artifacts: local", "artifacts: s3"))
    spec = load_environment(repo, "prod")
    for pod in PODS.values():
        assert pod["securityContext"]["runAsUser"] == RUN_AS
    written = [
        runs_root(spec),
        prediction_log_dir(spec.repo, local_root(spec), "prod", "churn-predictor"),
        spec.repo / local_root(spec) / "cache" / "data",  # S3 datasets (providers/datasets.py)
        artifact_store(spec).cache,  # type: ignore[attr-defined]
    ]
    mounted = [Path(p) for _, p in WRITABLE_DIRS]
    for path in written:
        in_pod = Path(REPO_DIR) / path.relative_to(spec.repo)
        assert any(in_pod.is_relative_to(m) for m in mounted), in_pod
