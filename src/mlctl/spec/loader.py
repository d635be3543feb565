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

Untrusted input (docs/security.md, "Untrusted input"): a file that is a symbolic link, and an
environment folder that resolves outside the repository, are refused; ``${VAR}`` is refused
in every key of the backend and of provider files except those meant to hold a secret
(:data:`SECRET_KEYS`), and in ``s3://`` dataset paths, because a pull request could otherwise
send a secret of the CI runner to a server of its choosing (in a URL, a bucket, or a region that
botocore signs into every request's ``Authorization`` header); ``${VAR}`` is refused in every
training input (:func:`training_input_paths`: what the version identity covers), because the
identity hashes the placeholder, so a changed variable would change the trained bytes under an
unchanged identity; every diagnostic shows a resolved value as its placeholder, on one line;
and the returned spec's ``providers`` hold only the provider files the
environment uses (its roles and endpoints), so an unused ``providers/*.yaml`` (which the same
pull request can add) widens nothing: not the buckets datasets may be read from, not the
endpoints mlctl talks to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlctl.errors import ConfigError, Diagnostic, NotFoundError
from mlctl.redaction import Secrets
from mlctl.spec.display import one_line
from mlctl.spec.envspec import PROVIDER_PREFIX, EnvSpec, SourceMap
from mlctl.spec.merge import merge_files, read_providers
from mlctl.spec.models import NAME_PATTERN, Environment, ProviderFile
from mlctl.spec.names import did_you_mean
from mlctl.spec.pydantic_errors import translate
from mlctl.spec.validate import validate
from mlctl.spec.yamlreader import YamlReader, inside_repository, is_yaml, relative

if TYPE_CHECKING:
    from mlctl.spec.envspec import ProviderType

ADDRESS_KEYS = ("endpoint_url", "bucket", "key", "prefix", "tracking_uri")
"""Keys of the backend and provider files that decide where requests go (a server, a bucket, an
object): ``${VAR}`` there would send a value of the runner's environment to whatever server the
pull request names. No other backend or provider key may hold ``${VAR}`` either (see
:data:`SECRET_KEYS`); these get the message that says why."""
SECRET_KEYS: dict[str, tuple[str, ...]] = {"redis": ("password", "url")}
"""Provider type -> the keys that may come from ``${VAR}``, because they hold a secret: a redis
``password``, and the password part of a redis ``url`` (``redis://:${REDIS_PASSWORD}@host:6379/0``;
the scheme, host, port and database stay literal). No backend key holds a secret: S3
credentials come from the AWS environment or profile, never from YAML."""
_REDIS_URL = re.compile(r"^(?:rediss?|unix)://[^@/]*@(?P<rest>.*)$")
TRAINING_INPUT = "training inputs cannot come from the environment: they enter the version identity"
ROLES = ("artifacts", "serving", "training", "online", "tracking")
"""The provider roles of ``environment.yaml``'s ``providers`` section."""


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
    env_rel = relative(repo, env_dir)
    if env_dir.is_symlink() or not inside_repository(repo, env_dir):
        raise ConfigError(
            [
                Diagnostic(
                    "is a symbolic link; an environment must be a folder of regular files",
                    file=env_rel,
                    hint="replace the link with the folder it points to",
                )
            ]
        )
    files = sorted(
        (p for p in env_dir.iterdir() if is_yaml(p)),
        key=lambda p: p.name,
    )
    if not files:
        raise ConfigError([Diagnostic(f"no *.yaml files in {env_rel}/", file=env_rel)])

    reader = YamlReader(repo, os.environ if environ is None else environ)
    merged = merge_files(reader, files)
    provider_data = read_providers(reader)
    _refuse_addresses(reader, merged, provider_data)
    _refuse_training_inputs(reader, merged)
    if reader.diagnostics:
        raise ConfigError(_sorted(reader.diagnostics, reader.secrets))

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
        raise ConfigError(_sorted(reader.diagnostics, reader.secrets))

    used = used_providers(config)
    spec = EnvSpec(
        name=env,
        repo=repo,
        config=config,
        providers={stem: p for stem, p in providers.items() if stem in used},
        sources=sources,
        secret_paths=frozenset(reader.placeholders),
        files=tuple(sorted([*files, *reader.provider_files])),
        digest=_digest(merged, provider_data, reader.placeholders),
        placeholders=dict(reader.placeholders),
        secrets=reader.secrets,
    )
    problems = validate(spec, all_providers=providers)
    if problems:
        raise ConfigError(_sorted(problems, reader.secrets))
    return spec


def used_providers(config: Environment) -> set[str]:
    """Names of the provider files an environment uses: its roles and its endpoints'."""
    names = {getattr(config.providers, role) for role in ROLES} - {None}
    names.update(endpoint.provider for endpoint in config.endpoints.values())
    return names


def _refuse_addresses(reader: YamlReader, merged: dict[str, Any], providers: Mapping[str, Any]) -> None:
    """One diagnostic per ``${VAR}`` in a backend or provider key that is not a secret
    (:data:`SECRET_KEYS`), and per ``${VAR}`` in an ``s3://`` dataset path."""
    for path, text in list(reader.placeholders.items()):
        head, _, key = path.rpartition(".")
        refused = _refused_setting(path, text, providers)
        if refused is not None:
            where, key = refused
            if key in ADDRESS_KEYS:
                why = "it decides where mlctl sends requests"
            else:
                why = (
                    "only a secret (a redis password) may come from the environment; "
                    "mlctl sends this value with its requests"
                )
            reader.error(
                path,
                f"${{VAR}} is not allowed in {key} of {where}: {why}, and a pull request could send "
                "a runner's secret to its own server",
                "write the value itself"
                + ("; for a server per machine set AWS_ENDPOINT_URL_S3" if key == "endpoint_url" else "")
                + (
                    "; put the password in `password: ${VAR}`"
                    if where.startswith("providers/") and key == "url"
                    else ""
                ),
            )
        elif head.startswith("datasets.") and key == "path" and head.count(".") == 1:
            dataset = merged.get("datasets", {}).get(head.split(".", 1)[1])
            value = dataset.get("path") if isinstance(dataset, dict) else None
            if text.lstrip().startswith("s3://") or (isinstance(value, str) and value.startswith("s3://")):
                reader.error(
                    path,
                    "${VAR} is not allowed in an s3:// dataset path: the bucket and key decide "
                    "where mlctl sends requests",
                    "write the bucket and key themselves",
                )


def _refused_setting(path: str, text: str, providers: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(where, key)`` when the ``${VAR}`` at ``path`` is in a backend or provider setting that
    may not come from the environment; None when it is elsewhere or in a secret's key."""
    if path.startswith("backend."):
        return "the backend", path.split(".")[1]
    if not path.startswith(PROVIDER_PREFIX):
        return None
    stem, _, rest = path[len(PROVIDER_PREFIX) :].partition(".")
    key = rest.split(".")[0]
    data = providers.get(stem)
    kind = data.get("type") if isinstance(data, dict) else None
    if isinstance(kind, str) and key in SECRET_KEYS.get(kind, ()) and rest == key:
        if key != "url":
            return None
        match = _REDIS_URL.match(text.strip())
        if match and "${" not in match.group("rest") and "${" not in text.split("://", 1)[0]:
            return None  # ${VAR} only in the url's password part
    return f"providers/{stem}.yaml", key


def training_input_paths(merged: Mapping[str, Any]) -> list[str]:
    """Key paths (dotted prefixes) of every value :func:`mlctl.plan.resources.training_inputs`
    reads, found in the merged YAML data (before the schema: shapes are checked defensively).

    Every model's ``training`` section; per feature view a model reads: ``source``, ``ttl``,
    ``features`` and ``entities``; per entity of those views: ``join_key`` and ``value_type``;
    per dataset read (labels and view sources): ``path``, ``timestamp``, ``schema``, ``format``.
    """

    def section(name: str) -> dict[str, Any]:
        found = merged.get(name)
        return found if isinstance(found, dict) else {}

    models, views, entities = section("models"), section("feature_views"), section("entities")
    paths: list[str] = []
    used_views: list[str] = []
    used_datasets: list[str] = []
    for name, model in models.items():
        paths.append(f"models.{name}.training")
        training = model.get("training") if isinstance(model, dict) else None
        if not isinstance(training, dict):
            continue
        if isinstance(training.get("labels"), str):
            used_datasets.append(training["labels"])
        features = training.get("features")
        for ref in features if isinstance(features, list) else []:
            if isinstance(ref, str) and ":" in ref:
                used_views.append(ref.partition(":")[0])
    used_entities: list[str] = []
    for name in dict.fromkeys(used_views):
        view = views.get(name)
        if not isinstance(view, dict):
            continue
        paths += [f"feature_views.{name}.{key}" for key in ("source", "ttl", "features", "entities")]
        if isinstance(view.get("source"), str):
            used_datasets.append(view["source"])
        names = view.get("entities")
        used_entities += [e for e in names if isinstance(e, str)] if isinstance(names, list) else []
    for name in dict.fromkeys(used_entities):
        if name in entities:
            paths += [f"entities.{name}.{key}" for key in ("join_key", "value_type")]
    for name in dict.fromkeys(used_datasets):
        paths += [f"datasets.{name}.{key}" for key in ("path", "timestamp", "schema", "format")]
    return paths


def _refuse_training_inputs(reader: YamlReader, merged: dict[str, Any]) -> None:
    """One diagnostic per ``${VAR}`` in a training input (:func:`training_input_paths`).

    The version identity keeps such a value as its placeholder (state and plans never hold a
    resolved value), so a changed variable would train different bytes under the same
    identity and plan "No changes". None of these values is a secret.
    """
    if not reader.placeholders:
        return
    exact = set(training_input_paths(merged))
    reported = {d.path for d in reader.diagnostics}  # an s3:// path already has its line
    for path, text in list(reader.placeholders.items()):
        parts = path.split(".")
        if path in reported:
            continue
        if any(".".join(parts[:n]) in exact for n in range(1, len(parts) + 1)):
            reader.error(path, f"{text!r}: {TRAINING_INPUT}", "write the value itself")


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


def _sorted(diagnostics: list[Diagnostic], secrets: Secrets) -> list[Diagnostic]:
    """Sorted by file and line, every resolved ``${VAR}`` value shown as its placeholder, each
    on one line (control characters of a value as their repr escapes: :func:`one_line`)."""
    shown = [
        dataclasses.replace(
            d,
            summary=one_line(secrets.redact(d.summary)),
            hint=one_line(secrets.redact(d.hint)) if d.hint else d.hint,
            path=one_line(d.path),
            file=one_line(d.file) if d.file else d.file,
        )
        for d in diagnostics
    ]
    return sorted(shown, key=lambda d: (d.file or "", d.line or 0, d.path, d.summary))
