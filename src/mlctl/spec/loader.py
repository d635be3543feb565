"""Load one environment's desired state: read, merge, interpolate, validate.

Contract: :func:`load_environment` reads every ``environments/<env>/*.yaml`` (and ``*.yml``)
in sorted order plus every ``providers/*.yaml``, and either returns a fully validated
:class:`~mlctl.spec.envspec.EnvSpec` or raises :class:`~mlctl.errors.ConfigError` carrying
every diagnostic it found (``file:line``, dotted key path, summary, hint), sorted by file and
line. It never imports code named by the YAML, never writes anything, and imports no pandas,
scikit-learn or croniter. An unknown environment name raises
:class:`~mlctl.errors.NotFoundError`.

The steps live in their own modules: reading YAML with locations and ``${VAR}``
interpolation (:mod:`~mlctl.spec.yamlreader`), merging the files
(:mod:`~mlctl.spec.merge`), the schema's errors (:mod:`~mlctl.spec.pydantic_errors`) and
the cross-reference rules (:mod:`~mlctl.spec.validate`). This module orders them and computes
the digest, which hashes each secret's placeholder text, never the resolved value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlctl.errors import ConfigError, Diagnostic, NotFoundError
from mlctl.spec.envspec import PROVIDER_PREFIX, EnvSpec, SourceMap
from mlctl.spec.merge import merge_files, read_providers
from mlctl.spec.models import NAME_PATTERN, Environment, ProviderFile
from mlctl.spec.names import did_you_mean
from mlctl.spec.pydantic_errors import translate
from mlctl.spec.validate import validate
from mlctl.spec.yamlreader import YamlReader, is_yaml, relative

if TYPE_CHECKING:
    from mlctl.spec.envspec import ProviderType


def list_environments(repo: Path) -> list[str]:
    """Names of the environment folders under ``repo/environments`` (sorted)."""
    root = Path(repo) / "environments"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_environment(repo: Path, env: str, *, environ: Mapping[str, str] | None = None) -> EnvSpec:
    """Read, merge, interpolate and validate ``environments/<env>``; raise ConfigError if bad."""
    repo = Path(repo).absolute()
    env_dir = repo / "environments" / env
    if not re.match(NAME_PATTERN, env) or not env_dir.is_dir():
        known = list_environments(repo)
        hint = did_you_mean(env, known)
        listing = ", ".join(known) if known else "none"
        raise NotFoundError(
            f"environment '{env}' not found (known: {listing})" + (f"; {hint}" if hint else "")
        )
    files = sorted(
        (p for p in env_dir.iterdir() if is_yaml(p)),
        key=lambda p: p.name,
    )
    env_rel = relative(repo, env_dir)
    if not files:
        raise ConfigError([Diagnostic(f"no *.yaml files in {env_rel}/", file=env_rel)])

    reader = YamlReader(repo, os.environ if environ is None else environ)
    merged = merge_files(reader, files)
    provider_data = read_providers(reader)
    if reader.diagnostics:
        raise ConfigError(_sorted(reader.diagnostics))

    backend = merged.get("backend")
    if isinstance(backend, dict) and backend.get("type", "local") == "local":
        backend.setdefault("path", f"state/{env}.json")

    sources = SourceMap(reader.sources)  # a view: it sees entries added later
    config: Environment | None = None
    try:
        config = Environment.model_validate(merged)
    except ValidationError as error:
        reader.diagnostics.extend(translate(error, merged, "", sources, reader.placeholders))
    providers: dict[str, ProviderType] = {}
    for stem, data in provider_data.items():
        prefix = f"{PROVIDER_PREFIX}{stem}"
        if data is None:
            reader.error(f"{prefix}.type", "empty provider file: set 'type' (local, s3 or k8s)")
            continue
        try:
            providers[stem] = ProviderFile.model_validate({"provider": data}).provider
        except ValidationError as error:
            found = translate(error, {"provider": data}, prefix, sources, reader.placeholders)
            reader.diagnostics.extend(found)
    if reader.diagnostics or config is None:
        raise ConfigError(_sorted(reader.diagnostics))

    secrets = frozenset(reader.placeholders)
    spec = EnvSpec(
        name=env,
        repo=repo,
        config=config,
        providers=providers,
        sources=sources,
        secret_paths=secrets,
        files=tuple(sorted([*files, *reader.provider_files])),
        digest=_digest(merged, provider_data, reader.placeholders),
        placeholders=dict(reader.placeholders),
    )
    problems = validate(spec)
    if problems:
        raise ConfigError(_sorted(problems))
    return spec


def _digest(merged: dict[str, Any], providers: Mapping[str, Any], placeholders: Mapping[str, str]) -> str:
    """sha256 of the merged desired state (sorted-key JSON), secrets as their placeholders.

    Hashes the merged YAML data rather than a pydantic dump (3x cheaper): key order,
    comments and file layout do not change it; writing out a default value does, which
    only makes a saved plan stale when it need not be (the safe direction).
    """
    document: dict[str, Any] = {"environment": merged, "providers": dict(providers)}
    for path, text in placeholders.items():
        if path.startswith(PROVIDER_PREFIX):
            stem, _, rest = path[len(PROVIDER_PREFIX) :].partition(".")
            document["providers"] = _replaced(document["providers"], [stem, *rest.split(".")], text)
        else:
            document["environment"] = _replaced(document["environment"], path.split("."), text)
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _replaced(node: Any, parts: list[str], text: str) -> Any:
    """A copy of ``node`` with the value at ``parts`` set to ``text`` (copies only the path)."""
    if not parts or parts == [""]:
        return text
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        if head not in node:  # a key that itself contains dots
            joined = ".".join(parts)
            return {**node, joined: text} if joined in node else node
        return {**node, head: _replaced(node[head], rest, text)}
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        copy = list(node)
        copy[int(head)] = _replaced(node[int(head)], rest, text)
        return copy
    return node


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.file or "", d.line or 0, d.path, d.summary))
