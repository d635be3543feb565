"""Where a pull request's plan may send credentials: only to endpoints the base branch declares.

Contract: :func:`unreviewed_endpoints` compares the endpoint-bearing configuration of one
environment as the pull request has it (its loaded :class:`~mlctl.spec.envspec.EnvSpec`: what
``plan`` would really use) with the same environment at a base revision, read from git as raw
YAML: no ``${VAR}`` is interpolated on the base side, and the pull request's side is compared as
the text written in its YAML (a resolved ``${VAR}`` value goes back to its placeholder), so no
secret enters the comparison or the findings. It returns one :class:`EndpointChange` per key
that is new or differs; an empty list means every server the plan could contact (with the
runner's credentials) was already declared on the base branch for this environment.

What is compared (:data:`AIM_KEYS`): the state backend when it is ``s3`` (``type``,
``endpoint_url``, ``region``, ``profile``, ``bucket``) and every provider file the environment
uses (its roles and its endpoints'): ``s3`` the same keys, ``mlflow`` ``tracking_uri``, ``k8s``
``context``, ``redis`` ``url``/``host``/``port``; a ``local`` provider or backend contacts no
server and contributes nothing. A provider the environment did not use at the base revision, or
an environment that did not exist there, or a change of ``type``, makes the server new (the
finding names its server key, or ``type`` when it has none). A base file that cannot be
read (unparsable YAML, a symbolic link) counts as absent: the comparison fails closed.

``trusted`` (``$MLCTL_TRUSTED_ENDPOINTS``, see :func:`is_trusted`) names servers trusted
whatever the base says: a backend or provider whose server (``endpoint_url``, ``tracking_uri``,
redis ``url``/``host``, k8s ``context``) is listed may change any of its keys.

Read-only; imports GitPython only when called; never raises for what the base revision holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlctl.errors import Diagnostic
from mlctl.spec.envspec import PROVIDER_PREFIX, EnvSpec
from mlctl.spec.loader import ROLES

#: Per backend/provider type: the keys that choose which server a request goes to, and with
#: which credentials. ``type`` is first, so a provider that changes kind is caught on it.
AIM_KEYS: dict[str, tuple[str, ...]] = {
    "s3": ("type", "endpoint_url", "region", "profile", "bucket"),
    "mlflow": ("type", "tracking_uri"),
    "k8s": ("type", "context"),
    "redis": ("type", "url", "host", "port"),
}
#: Per type: the keys naming the server itself, checked against the trusted list.
SERVER_KEYS: dict[str, tuple[str, ...]] = {
    "s3": ("endpoint_url",),
    "mlflow": ("tracking_uri",),
    "k8s": ("context",),
    "redis": ("url", "host"),
}
#: The variable listing trusted servers (comma-separated URLs or hosts).
TRUSTED_VARIABLE = "MLCTL_TRUSTED_ENDPOINTS"


@dataclass(frozen=True)
class EndpointChange:
    """One endpoint-bearing key of the pull request that the base revision does not declare."""

    file: str  # repo-relative file of the pull request that holds the key
    key: str  # ``tracking_uri``, ``backend.endpoint_url``
    new: bool  # absent at the base revision (else: a different value)

    def phrase(self) -> str:
        """``providers/x.yaml tracking_uri is new in this change``."""
        what = "is new in this change" if self.new else "differs from the base branch"
        return f"{self.file} {self.key} {what}"


@dataclass(frozen=True)
class _Group:
    """The backend or one provider file: its type, its file, and its written aim keys."""

    kind: str
    file: str
    values: dict[str, str]


def _text(value: Any) -> str | None:
    """A scalar as comparable text; None for absent or non-scalar values."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _written(data: Mapping[str, Any], kind: str) -> dict[str, str]:
    found = {key: _text(data.get(key)) for key in AIM_KEYS.get(kind, ())}
    return {key: value for key, value in found.items() if value is not None}


def _pr_groups(spec: EnvSpec) -> dict[str, _Group]:
    """The pull request's side, from the loaded spec, each value as written in the YAML."""
    groups: dict[str, _Group] = {}
    backend = spec.config.backend
    if backend.type != "local":
        data = backend.model_dump(exclude_unset=True)
        data["type"] = backend.type
        for key in list(data):
            data[key] = spec.placeholders.get(f"backend.{key}", data[key])
        file = spec.sources.locate("backend")[0] or f"environments/{spec.name}/environment.yaml"
        groups["backend"] = _Group(backend.type, file, _written(data, backend.type))
    for stem, provider in sorted(spec.providers.items()):
        kind = str(provider.type)
        if kind not in AIM_KEYS:
            continue
        data = provider.model_dump(exclude_unset=True)
        data["type"] = kind
        for key in list(data):
            data[key] = spec.placeholders.get(f"{PROVIDER_PREFIX}{stem}.{key}", data[key])
        file = spec.sources.locate(f"{PROVIDER_PREFIX}{stem}")[0] or f"providers/{stem}.yaml"
        groups[f"{PROVIDER_PREFIX}{stem}"] = _Group(kind, file, _written(data, kind))
    return groups


def _base_groups(environment: Mapping[str, Any], providers: Mapping[str, Any]) -> dict[str, _Group]:
    """The base revision's side, from raw YAML: the merged sections and the provider files."""
    groups: dict[str, _Group] = {}
    backend = environment.get("backend")
    if isinstance(backend, dict):
        kind = _text(backend.get("type")) or "local"
        if kind != "local":
            groups["backend"] = _Group(kind, "", _written(backend, kind))
    refs = environment.get("providers")
    refs = refs if isinstance(refs, dict) else {}
    used: set[str] = set()
    for role in ROLES:
        name = refs.get(role, None if role == "tracking" else "local")
        if isinstance(name, str):
            used.add(name)
    endpoints = environment.get("endpoints")
    if isinstance(endpoints, dict):
        for endpoint in endpoints.values():
            if isinstance(endpoint, dict) and isinstance(endpoint.get("provider", "local"), str):
                used.add(endpoint.get("provider", "local"))
    for stem in sorted(used):
        data = providers.get(stem)
        if isinstance(data, dict):
            kind = _text(data.get("type")) or ""
            groups[f"{PROVIDER_PREFIX}{stem}"] = _Group(kind, "", _written(data, kind))
    return groups


def _entries(host: str, rev: str, folder: str) -> list[str]:
    """Paths of the regular files directly in ``folder`` at ``rev`` (no links, no trees)."""
    import git

    try:
        out = git.Git(host).ls_tree("-z", rev, "--", folder + "/")
    except git.GitCommandError:
        return []
    paths = []
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and parts[0] in ("100644", "100755"):
            paths.append(path)
    return sorted(paths)


def _read(host: str, rev: str, path: str) -> Any:
    """The YAML document at ``rev:path``, or None when it is missing or unreadable."""
    import git
    import yaml

    try:
        text = git.Git(host).show(f"{rev}:{path}")
        return yaml.safe_load(text)
    except (git.GitCommandError, ValueError, RecursionError, MemoryError, yaml.YAMLError):
        return None


def _is_yaml(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith((".yaml", ".yml")) and not name.startswith(".")


def base_configuration(project: Path, revision: str, env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(merged backend/providers/endpoints sections, provider files by stem)`` of ``env`` at
    ``revision`` of the git repository holding ``project``; both empty when ``env`` did not
    exist there. Raw YAML, nothing interpolated."""
    import git

    project = Path(project).resolve()
    try:
        handle = git.Repo(project, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {}, {}
    try:
        host = handle.working_tree_dir
        if host is None:
            return {}, {}
        top = Path(host).resolve()
        prefix = project.relative_to(top).as_posix()
    except ValueError:
        return {}, {}
    finally:
        handle.close()
    prefix = "" if prefix == "." else prefix + "/"
    merged: dict[str, Any] = {}
    for path in _entries(str(top), revision, f"{prefix}environments/{env}"):
        document = _read(str(top), revision, path) if _is_yaml(path) else None
        if not isinstance(document, dict):
            continue
        for section in ("backend", "providers", "endpoints"):
            value = document.get(section)
            if isinstance(value, dict):
                merged.setdefault(section, {}).update(value)
    providers: dict[str, Any] = {}
    for path in _entries(str(top), revision, f"{prefix}providers"):
        if _is_yaml(path):
            stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            providers.setdefault(stem, _read(str(top), revision, path))
    return merged, providers


def parse_trusted(text: str | None) -> frozenset[str]:
    """The entries of a comma-separated list of URLs or hosts, normalised (lower case, no
    trailing ``/``)."""
    return frozenset(e.strip().rstrip("/").lower() for e in (text or "").split(",") if e.strip())


def is_trusted(value: str, trusted: Iterable[str]) -> bool:
    """True when ``value`` (a URL, a host, or a k8s context name) is in ``trusted``: as
    written, or by its ``scheme://host[:port]``, ``host:port`` or ``host`` (never by its
    user or password)."""
    entries = set(trusted)
    if not entries:
        return False
    text = value.strip().rstrip("/").lower()
    if text in entries:
        return True
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if not host:
        return False
    forms = {host, f"{host}:{port}" if port else host}
    if parts.scheme:
        forms.add(f"{parts.scheme}://{host}" + (f":{port}" if port else ""))
    return bool(forms & entries)


def _compare(pr: _Group, base: _Group | None, trusted: frozenset[str], label: str) -> list[EndpointChange]:
    servers = [pr.values[k] for k in SERVER_KEYS.get(pr.kind, ()) if k in pr.values]
    if servers and all(is_trusted(s, trusted) for s in servers):
        return []
    if base is None or base.kind != pr.kind:  # a new server: name it, not every key it has
        keys = [k for k in SERVER_KEYS.get(pr.kind, ()) if k in pr.values] or ["type"]
        before = base.values if base is not None else {}
        return [EndpointChange(pr.file, f"{label}{k}", new=k not in before) for k in keys]
    found = []
    for key in AIM_KEYS.get(pr.kind, ()):
        mine, theirs = pr.values.get(key), base.values.get(key)
        if mine != theirs:
            found.append(EndpointChange(pr.file, f"{label}{key}", new=theirs is None))
    return found


def unreviewed_endpoints(
    spec: EnvSpec, revision: str, *, trusted: frozenset[str] = frozenset()
) -> list[EndpointChange]:
    """The endpoint-bearing keys of ``spec`` that ``revision`` does not declare for the same
    environment (see the module contract); empty when the plan may run with credentials."""
    environment, providers = base_configuration(spec.repo, revision, spec.name)
    base = _base_groups(environment, providers)
    changes: list[EndpointChange] = []
    for name, group in _pr_groups(spec).items():
        label = "backend." if name == "backend" else ""
        changes += _compare(group, base.get(name), trusted, label)
    return changes


def not_planned(env: str, changes: list[EndpointChange]) -> Diagnostic:
    """The error diagnostic of an environment held back: one line naming each file and key."""
    named = "; ".join(change.phrase() for change in changes)
    them = "it" if len(changes) == 1 else "them"
    return Diagnostic(
        f"not planned before review: {named}, and plan sends credentials to {them}; "
        "it is planned after merge",
        subject=f"environments/{env}",
        address=f"environment.{env}",
    )


__all__ = [
    "AIM_KEYS",
    "TRUSTED_VARIABLE",
    "EndpointChange",
    "base_configuration",
    "is_trusted",
    "not_planned",
    "parse_trusted",
    "unreviewed_endpoints",
]
