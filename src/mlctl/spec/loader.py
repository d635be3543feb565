"""Load one environment's desired state from YAML: merge, interpolate, locate, validate.

Contract: :func:`load_environment` reads every ``environments/<env>/*.yaml`` (and ``*.yml``)
in sorted order plus every ``providers/*.yaml``, and either returns a fully validated
:class:`EnvSpec` or raises :class:`~mlctl.errors.ConfigError` carrying every diagnostic it
found (``file:line``, dotted key path, summary, hint), sorted by file and line. It never
imports code named by the YAML, never writes anything, and imports no pandas, scikit-learn
or croniter. An unknown environment name raises :class:`~mlctl.errors.NotFoundError`.

``${VAR}`` in string values is resolved from ``environ`` (``$${`` escapes a literal ``${``).
The resolved values live only in ``EnvSpec.config`` / ``EnvSpec.providers``; the key paths
are in ``EnvSpec.secret_paths`` and the placeholder text in ``EnvSpec.placeholders``, so
plans, state and comments can show ``${VAR}`` instead of the value. The digest hashes the
placeholder text, never the resolved value.

Key paths are dotted (``models.churn-predictor.training.features.0``). Provider files are
addressed as ``provider:<stem>.<key>`` in ``sources``, ``secret_paths`` and diagnostics'
paths, so they never collide with the environment's own ``providers`` section.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mlctl.errors import ConfigError, Diagnostic, NotFoundError
from mlctl.spec.models import NAME_PATTERN, Environment, ProviderFile
from mlctl.spec.validate import did_you_mean, validate

if typing.TYPE_CHECKING:
    from mlctl.spec.models import K8sProvider, LocalProvider, RedisProvider, S3Provider

    ProviderType = LocalProvider | S3Provider | K8sProvider | RedisProvider

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

NAME_SECTIONS = ("datasets", "entities", "feature_views", "models", "endpoints", "monitors")
"""Top-level sections that map names to objects; names are merged across files."""
OBJECT_SECTIONS = ("backend", "providers")
"""Top-level sections that are one object; their keys are merged across files."""
PROVIDER_PREFIX = "provider:"
"""Key paths of provider files start with this (``provider:s3.bucket``)."""

_KIND_ALIASES = {
    "dataset": "datasets",
    "entity": "entities",
    "feature_view": "feature_views",
    "model": "models",
    "endpoint": "endpoints",
    "monitor": "monitors",
}
_MAX_NODES = 2_000_000  # alias expansion bomb guard; a 1,000-model environment is ~100k
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MAP, _SEQ, _MERGE = (_TAG + t for t in ("timestamp", "map", "seq", "merge"))
_VALUE = _TAG + "value"
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = yaml.resolver.Resolver.yaml_implicit_resolvers
_INTERNED = {t: t for t in (_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _MERGE, _VALUE)}
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class SourceMap(Mapping[str, tuple[str, int]]):
    """Dotted key path -> (repo-relative file, 1-based line) of the node that defines it."""

    def __init__(self, entries: dict[str, tuple[str, int]] | None = None):
        self._entries: dict[str, tuple[str, int]] = entries if entries is not None else {}

    def __getitem__(self, path: str) -> tuple[str, int]:
        return self._entries[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def locate(self, path: str) -> tuple[str | None, int | None]:
        """The location of ``path`` or of its nearest defined ancestor; (None, None) if none."""
        while path:
            found = self._entries.get(path)
            if found is not None:
                return found
            cut = path.rfind(".")
            path = path[:cut] if cut > 0 else ""
        return None, None


@dataclass(frozen=True)
class EnvSpec:
    """One environment's validated desired state and where every part of it came from."""

    name: str
    repo: Path
    config: Environment
    providers: dict[str, ProviderType]
    sources: SourceMap
    secret_paths: frozenset[str]
    files: tuple[Path, ...]
    """Every YAML file read: the environment's and ``providers/*.yaml`` (sorted)."""
    digest: str
    placeholders: Mapping[str, str] = field(default_factory=dict)
    """Secret key path -> its text before interpolation (``"${DB_URL}"``): show that instead."""

    def locate(self, path: str) -> tuple[str | None, int | None]:
        """(repo-relative file, 1-based line) of the nearest defined node for a dotted path."""
        return self.sources.locate(path)

    def file_of(self, kind: str, name: str) -> Path:
        """The YAML file (absolute) that defines ``kind`` ``name``, e.g. ("models", "churn")."""
        section = _KIND_ALIASES.get(kind, kind)
        found = self.sources.get(f"{section}.{name}")
        if found is None:
            names = sorted(getattr(self.config, section, None) or {})
            hint = did_you_mean(name, names)
            raise NotFoundError(
                f"{section.rstrip('s')} '{name}' is not defined in environment '{self.name}'"
                + (f" ({hint})" if hint else "")
            )
        return self.repo / found[0]

    def display(self, path: str, value: object) -> str:
        """``value`` as it may be shown to a user: the placeholder when ``path`` is a secret."""
        return self.placeholders.get(path, str(value))


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
        (p for p in env_dir.iterdir() if _is_yaml(p)),
        key=lambda p: p.name,
    )
    env_rel = _rel(repo, env_dir)
    if not files:
        raise ConfigError([Diagnostic(f"no *.yaml files in {env_rel}/", file=env_rel)])

    reader = _Reader(repo, os.environ if environ is None else environ)
    merged = _merge(reader, files)
    provider_data = _read_providers(reader)
    if reader.diagnostics:
        raise ConfigError(_sorted(reader.diagnostics))

    backend = merged.get("backend")
    if isinstance(backend, dict) and backend.get("type", "local") == "local":
        backend.setdefault("path", f"state/{env}.json")

    config: Environment | None = None
    try:
        config = Environment.model_validate(merged)
    except ValidationError as error:
        reader.diagnostics.extend(_translate(error, merged, "", reader))
    providers: dict[str, ProviderType] = {}
    for stem, data in provider_data.items():
        prefix = f"{PROVIDER_PREFIX}{stem}"
        if data is None:
            reader.error(f"{prefix}.type", "empty provider file: set 'type' (local, s3 or k8s)")
            continue
        try:
            providers[stem] = ProviderFile.model_validate({"provider": data}).provider
        except ValidationError as error:
            reader.diagnostics.extend(_translate(error, {"provider": data}, prefix, reader))
    if reader.diagnostics or config is None:
        raise ConfigError(_sorted(reader.diagnostics))

    secrets = frozenset(reader.placeholders)
    spec = EnvSpec(
        name=env,
        repo=repo,
        config=config,
        providers=providers,
        sources=SourceMap(reader.sources),
        secret_paths=secrets,
        files=tuple(sorted([*files, *reader.provider_files])),
        digest=_digest(merged, provider_data, reader.placeholders),
        placeholders=dict(reader.placeholders),
    )
    problems = validate(spec)
    if problems:
        raise ConfigError(_sorted(problems))
    return spec


# --------------------------------------------------------------------------- reading YAML


class _Frame:
    """A mapping or sequence being built from parser events."""

    __slots__ = ("anchor", "is_dict", "key", "merges", "path", "prefix", "value")

    def __init__(self, is_dict: bool, path: str | None, anchor: tuple[str, int, int] | None):
        self.is_dict = is_dict
        self.value: Any = {} if is_dict else []
        self.path = path  # None: a complex key, built only to be rejected
        self.prefix = f"{path}." if path else ""
        self.key: Any = _NO_KEY
        self.merges: list[Any] = []
        self.anchor = anchor  # (name, first source entry, first placeholder)


_NO_KEY, _SKIP, _MERGE_KEY = object(), object(), object()
_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
_Anchors = dict[str, tuple[Any, str, int, int, int, int]]


class _Reader:
    """Builds plain Python from parser events, recording lines, secrets and problems.

    Built on the event stream of PyYAML's C parser rather than ``yaml.compose``: composing
    nodes (two Mark objects each) and PyYAML's Python resolver cost most of the load time.
    Scalars are resolved with YAML 1.1's implicit rules (the same regular expressions as
    ``SafeLoader``), memoized by text. The event loop is written for speed (a 1,000-model
    environment is ~120k events); rare cases (anchors, merges, tags, errors) leave it.
    """

    def __init__(self, repo: Path, environ: Mapping[str, str]):
        self.repo = repo
        self.environ = environ
        self.sources: dict[str, tuple[str, int]] = {}
        self.placeholders: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []
        self.file = ""
        self.failed = False
        self.provider_files: list[Path] = []
        self._entries: list[tuple[str, int]] = []  # source entries in order (for aliases)
        self._secrets: list[tuple[str, str]] = []  # placeholders in order (for aliases)
        self._expanded = 0
        self._tags: dict[str, str] = {}

    def error(self, path: str, summary: str, hint: str | None = None) -> None:
        """Record a diagnostic located at ``path`` (or its nearest defined ancestor)."""
        file, line = SourceMap(self.sources).locate(path)
        self.diagnostics.append(Diagnostic(summary, path, file, line, hint))

    def at(self, line: int, path: str, summary: str, hint: str | None = None) -> None:
        """Record a diagnostic at 1-based ``line`` of the current file."""
        self.diagnostics.append(Diagnostic(summary, path, self.file, line, hint))

    def read(self, path: Path, prefix: str = "") -> Any:
        """Parse one file into Python (None when empty or broken; ``self.failed`` tells which)."""
        self.file = _rel(self.repo, path)
        self.failed = True
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            self.diagnostics.append(Diagnostic(f"not UTF-8 text: {error.reason}", file=self.file))
            return None
        except OSError as error:
            self.diagnostics.append(Diagnostic(f"cannot read: {error.strerror}", file=self.file))
            return None
        before = len(self.diagnostics)
        try:
            value = self._build(text, prefix)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            problem = error.problem or error.context or "syntax error"
            self.diagnostics.append(
                Diagnostic(
                    f"invalid YAML: {problem}",
                    file=self.file,
                    line=mark.line + 1 if mark else None,
                    hint=error.context if error.problem and error.context else None,
                )
            )
            return None
        except yaml.YAMLError as error:
            self.diagnostics.append(Diagnostic(f"invalid YAML: {error}", file=self.file))
            return None
        self.failed = len(self.diagnostics) > before
        return value

    def _build(self, text: str, root_path: str) -> Any:
        parser = _Loader(text)
        get_event = parser.get_event
        sources, entries, file, tags = self.sources, self._entries, self.file, self._tags
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        mapping_start, sequence_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        anchors: _Anchors = {}
        stack: list[_Frame] = []
        top: _Frame | None = None
        root: Any = None
        documents = 0
        try:
            while True:
                event = get_event()
                if event is None:
                    break
                cls = event.__class__
                if cls is scalar_event:
                    value = event.value
                    plain = event.tag is None and event.implicit[0]
                    if plain:
                        tag = tags.get(value) or self._resolve(value)
                    elif event.tag is None or event.tag == "!":
                        tag = _STR
                    else:
                        tag = event.tag
                    if top is not None and top.is_dict and top.key is _NO_KEY:  # a key
                        if (tag is _STR or tag is _BOOL) and event.anchor is None:
                            if value in top.value or top.path is None:
                                self._key(top, value, event)
                                continue
                            top.key = value
                            line = event.start_mark.line + 1
                            path = top.prefix + value
                            sources[path] = (file, line)
                            entries.append((path, line))
                        else:
                            self._key(top, self._key_scalar(tag, event, top.path), event)
                        continue
                    if top is None:
                        path = root_path
                    elif top.is_dict:
                        path = "" if top.key is _SKIP or top.key is _MERGE_KEY else top.key
                        path = top.prefix + path
                    else:
                        path = top.prefix + str(len(top.value))
                        line = event.start_mark.line + 1
                        sources[path] = (file, line)
                        entries.append((path, line))
                    first = (len(entries), len(self._secrets))
                    if tag is _STR:
                        if "$" in value:
                            value = self._interpolate(value, path, event.start_mark.line + 1)
                    else:
                        value = self._scalar(tag, value, path, event.start_mark.line + 1)
                    if event.anchor:
                        anchors[event.anchor] = (
                            value, path, first[0], len(entries), first[1], len(self._secrets),
                        )  # fmt: skip
                    if top is None:
                        root = value
                    else:
                        self._place(top, value)
                elif cls is mapping_start or cls is sequence_start:
                    line = event.start_mark.line + 1
                    path_or_none: str | None
                    if top is None:
                        path_or_none = root_path
                    elif not top.is_dict:
                        path_or_none = top.prefix + str(len(top.value))
                        sources[path_or_none] = (file, line)
                        entries.append((path_or_none, line))
                    elif top.key is _NO_KEY or top.path is None:
                        path_or_none = None
                    elif top.key is _SKIP or top.key is _MERGE_KEY:
                        path_or_none = top.path  # merged keys land in the parent
                    else:
                        path_or_none = top.prefix + top.key
                    expected = _MAP if cls is mapping_start else _SEQ
                    if event.tag not in (None, "!", expected):
                        self.at(line, path_or_none or "", f"unsupported YAML tag '{event.tag}'")
                    anchor = (event.anchor, len(entries), len(self._secrets)) if event.anchor else None
                    if top is not None:
                        stack.append(top)
                    top = _Frame(cls is mapping_start, path_or_none, anchor)
                elif cls is mapping_end or cls is sequence_end:
                    assert top is not None
                    frame = top
                    top = stack.pop() if stack else None
                    value = frame.value
                    for merged in frame.merges:
                        self._merge_into(value, merged, frame.path or "", event)
                    if frame.anchor is not None:
                        name, entry0, secret0 = frame.anchor
                        anchors[name] = (
                            value, frame.path or "", entry0, len(entries),
                            secret0, len(self._secrets),
                        )  # fmt: skip
                    if top is None:
                        root = value
                    elif frame.path is None and top.is_dict and top.key is _NO_KEY:
                        self.at(
                            event.start_mark.line + 1,
                            top.path or "",
                            "a mapping key must be a string, not a list or mapping",
                        )
                        top.key = _SKIP
                    else:
                        self._place(top, value)
                elif cls is alias_event:
                    self._alias(event, anchors, top, root_path)
                    if top is None:
                        root = anchors.get(event.anchor, (None,))[0]
                elif cls is yaml.DocumentStartEvent:
                    documents += 1
                    if documents > 1:
                        line = event.start_mark.line + 1
                        self.at(line, "", "a file may hold only one YAML document (found '---')")
                        break
        finally:
            parser.dispose()
        return root

    @staticmethod
    def _place(top: _Frame, value: Any) -> None:
        """Put a finished value into its parent (a list, or a mapping awaiting a value)."""
        if not top.is_dict:
            top.value.append(value)
            return
        key = top.key
        top.key = _NO_KEY
        if key is _MERGE_KEY:
            top.merges.append(value)
        elif key is not _SKIP:
            top.value[key] = value

    def _key(self, top: _Frame, key: Any, event: Any) -> None:
        """The slow path of a mapping key: duplicates, merge keys, non-string keys."""
        if key is _SKIP or key is _MERGE_KEY or top.path is None:
            top.key = key if top.path is not None else _SKIP
            return
        line = event.start_mark.line + 1
        path = top.prefix + key
        if key in top.value:
            first = self.sources.get(path, (self.file, 0))[1]
            self.at(line, path, f"duplicate key '{key}' (first defined at {self.file}:{first})")
            top.key = _SKIP
            return
        top.key = key
        self.sources[path] = (self.file, line)
        self._entries.append((path, line))

    def _resolve(self, value: str) -> str:
        found = _STR
        for candidate, pattern in _IMPLICIT.get(value[:1], ()):
            if pattern.match(value):
                found = candidate
                break
        found = _INTERNED.get(found, found)
        self._tags[value] = found
        return found

    def _key_scalar(self, tag: str, event: Any, path: str | None) -> Any:
        if tag is _STR or tag is _BOOL or tag in (_STR, _BOOL):
            return event.value  # YAML 1.1 reads `on:`/`yes:` as true; keep the text
        if tag == _MERGE:
            return _MERGE_KEY
        shown = event.value or "null"
        line = event.start_mark.line + 1
        self.at(line, path or "", f"key {shown} is not a string", f"quote it: '{event.value}'")
        return _SKIP

    def _scalar(self, tag: str, value: str, path: str, line: int) -> Any:
        if tag == _INT:
            if value.isdigit() and (value[0] != "0" or value == "0"):
                return int(value)
            return _CONSTRUCTOR.construct_yaml_int(yaml.ScalarNode(tag, value))
        if tag == _FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(yaml.ScalarNode(tag, value))
        if tag == _BOOL:
            return _BOOLS[value.lower()]
        if tag == _NULL:
            return None
        if tag == _STR:
            return self._interpolate(value, path, line) if "$" in value else value
        if tag in (_TIMESTAMP, _MERGE, _VALUE):
            return value  # an ISO date stays a string in this schema
        self.at(line, path, f"unsupported YAML tag '{tag}'")
        return None

    def _merge_into(self, target: Any, merged: Any, path: str, line: int) -> None:
        """YAML merge keys (``<<: *defaults``): keys written explicitly win."""
        sources = merged if isinstance(merged, list) else [merged]
        for source in sources:
            if not isinstance(source, dict) or not isinstance(target, dict):
                self.at(line, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            for key, value in source.items():
                target.setdefault(key, value)

    def _alias(self, event: Any, anchors: _Anchors, top: _Frame | None, root_path: str) -> None:
        """Place an alias; its source entries and secrets are copied under the new path."""
        line = event.start_mark.line + 1
        found = anchors.get(event.anchor)
        is_key = top is not None and top.is_dict and top.key is _NO_KEY
        if top is None:
            path = root_path
        elif not top.is_dict:
            path = top.prefix + str(len(top.value))
            self.sources[path] = (self.file, line)
            self._entries.append((path, line))
        elif top.key is _SKIP or top.key is _MERGE_KEY or is_key:
            path = top.path or ""
        else:
            path = top.prefix + top.key
        if found is None:
            self.at(line, path, f"unknown or recursive alias '*{event.anchor}'")
            if top is not None:
                self._key(top, _SKIP, event) if is_key else self._place(top, None)
            return
        value, anchor_path, entry0, entry1, secret0, secret1 = found
        if is_key:
            assert top is not None
            key = value if isinstance(value, str) else _SKIP
            if key is _SKIP:
                self.at(line, path, "a mapping key must be a string")
            self._key(top, key, event)
            return
        self._expanded += entry1 - entry0 + 1
        if self._expanded > _MAX_NODES:
            raise yaml.YAMLError(f"{self.file}: too many alias expansions (alias bomb?)")
        cut = len(anchor_path)
        for entry_path, entry_line in self._entries[entry0:entry1]:
            new = path + entry_path[cut:]
            self._entries.append((new, entry_line))  # so enclosing anchors count them too
            if new not in self.sources:
                self.sources[new] = (self.file, entry_line)
        for secret_path, text in self._secrets[secret0:secret1]:
            new = path + secret_path[cut:]
            self.placeholders[new] = text
            self._secrets.append((new, text))
        if top is not None:
            self._place(top, value)

    def _interpolate(self, text: str, path: str, line: int) -> str:
        used = False

        def replace(match: re.Match[str]) -> str:
            nonlocal used
            whole = match.group(0)
            if whole == "$${":
                return "${"
            name = match.group(1)
            if name is None:
                self.at(line, path, "malformed variable reference", "write ${NAME}, or $${ for '${'")
                return whole
            value = self.environ.get(name)
            if value is None:
                self.at(line, path, f"environment variable {name} is not set")
                return whole
            used = True
            return value

        result = _VAR.sub(replace, text)
        if used:
            self.placeholders[path] = text
            self._secrets.append((path, text))
        return result


def _merge(reader: _Reader, files: list[Path]) -> dict[str, Any]:
    """Merge the top-level sections of every file; report names/keys defined twice."""
    merged: dict[str, Any] = {}
    owner: dict[str, tuple[str, int]] = {}  # "models.x" / "backend.path" -> first (file, line)
    for path in files:
        document = reader.read(path)
        if document is None:
            continue
        if not isinstance(document, dict):
            reader.at(1, "", "the top level of an environment file must be a mapping")
            continue
        for section, value in document.items():
            _, line = reader.sources.get(section, (reader.file, 1))
            if section in NAME_SECTIONS or section in OBJECT_SECTIONS:
                if value is None:
                    value = {}
                if isinstance(value, dict):
                    target = merged.setdefault(section, {})
                    if isinstance(target, dict):
                        _merge_section(reader, section, value, target, owner)
                        continue
            if section in merged:
                first_file, first_line = owner[section]
                reader.diagnostics.append(
                    Diagnostic(
                        f"'{section}' is defined twice: in {first_file}:{first_line} "
                        f"and {reader.file}:{line}",
                        section,
                        reader.file,
                        line,
                    )
                )
                continue
            owner[section] = (reader.file, line)
            merged[section] = value
    return merged


def _merge_section(
    reader: _Reader,
    section: str,
    value: dict[str, Any],
    target: dict[str, Any],
    owner: dict[str, tuple[str, int]],
) -> None:
    noun = "key" if section in OBJECT_SECTIONS else section.rstrip("s").replace("_", " ")
    if section == "entities":
        noun = "entity"
    for name, item in value.items():
        path = f"{section}.{name}"
        _, line = reader.sources[path]
        if name in target:
            first_file, first_line = owner[path]
            what = f"key '{section}.{name}'" if section in OBJECT_SECTIONS else f"{noun} '{name}'"
            reader.diagnostics.append(
                Diagnostic(
                    f"{what} is defined twice: in {first_file}:{first_line} and {reader.file}:{line}",
                    path,
                    reader.file,
                    line,
                )
            )
            reader.sources[path] = (first_file, first_line)
            continue
        owner[path] = (reader.file, line)
        target[name] = item


def _read_providers(reader: _Reader) -> dict[str, Any]:
    """Every ``providers/*.yaml`` as plain data, by file stem (None for an empty file)."""
    folder = reader.repo / "providers"
    if not folder.is_dir():
        return {}
    result: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not _is_yaml(path):
            continue
        reader.provider_files.append(path)
        stem = path.stem
        prefix = f"{PROVIDER_PREFIX}{stem}"
        data = reader.read(path, prefix)
        if stem in seen:
            reader.diagnostics.append(
                Diagnostic(f"provider '{stem}' is defined twice: {seen[stem]}", file=reader.file)
            )
            continue
        seen[stem] = reader.file
        reader.sources[prefix] = (reader.file, 1)
        if reader.failed:
            continue
        if data is not None and not isinstance(data, dict):
            reader.at(1, prefix, "a provider file must be a mapping with a 'type' key")
            continue
        result[stem] = data  # None: an empty file, reported by the caller
    return result


# --------------------------------------------------------------------------- pydantic errors


def _translate(
    error: ValidationError, data: dict[str, Any], prefix: str, reader: _Reader
) -> list[Diagnostic]:
    """One Diagnostic per failing key path, located through the source map."""
    by_path: dict[str, list[tuple[Any, list[Any]]]] = {}
    for item in error.errors(include_url=False):
        loc = _data_loc(item["loc"], data, item["type"])
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append(str(item.get("ctx", {}).get("discriminator", "")).strip("'"))
        if prefix:  # provider files are validated as {"provider": content}
            loc = loc[1:] if loc and loc[0] == "provider" else loc
        dotted = ".".join([prefix] * bool(prefix) + [str(part) for part in loc])
        by_path.setdefault(dotted, []).append((item, loc))
    sources = SourceMap(reader.sources)
    diagnostics = []
    for path, items in by_path.items():
        file, line = sources.locate(path)
        root_type: Any = ProviderFile if prefix else Environment
        summary, hint = _describe(items, data, root_type, reader.placeholders.get(path), prefix)
        diagnostics.append(Diagnostic(summary, path, file, line, hint))
    return diagnostics


def _data_loc(loc: tuple[int | str, ...], data: Any, kind: str) -> list[Any]:
    """Keep only the parts of a pydantic ``loc`` that are keys of the data (drop union tags)."""
    result: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        part = "schema" if part == "schema_" else part
        if part == "[key]":
            continue
        if isinstance(node, dict):
            if part in node:
                result.append(part)
                node = node[part]
                continue
            is_last = index == len(loc) - 1
            if not is_last and part in (node.get("kind"), node.get("type")):
                continue  # discriminated union tag
            result.append(part)
            node = None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            result.append(part)
            node = node[part]
        elif node is None and kind in ("missing", "extra_forbidden"):
            result.append(part)
        else:
            break  # the rest names members of a union tried on a scalar
    return result


_EXPECTED = re.compile(r"'([^']*)'")


def _describe(
    items: list[tuple[Any, list[Any]]],
    data: dict[str, Any],
    root_type: Any,
    placeholder: str | None,
    prefix: str,
) -> tuple[str, str | None]:
    """(summary, hint) for the pydantic errors of one key path."""
    first, loc = items[0]
    kind = first["type"]
    value = first.get("input")
    shown = placeholder if placeholder is not None else _show(value)
    ctx = first.get("ctx") or {}
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        allowed = _field_names(root_type, loc[:-1], data, prefix)
        hint = did_you_mean(key, allowed)
        if hint is None and allowed:
            hint = "allowed keys: " + ", ".join(sorted(allowed))
        return f"unknown key '{key}'", hint
    if kind == "missing":
        return f"missing required key '{key}'", None
    if kind == "union_tag_invalid":
        tags = _EXPECTED.findall(str(ctx.get("expected_tags", "")))
        disc = str(ctx.get("discriminator", "")).strip("'")
        return f"unknown {disc} '{ctx.get('tag')}'", did_you_mean(str(ctx.get("tag")), tags) or (
            "one of " + ", ".join(tags)
        )
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "")).strip("'")
        return f"missing required key '{disc}'", None
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return (
            f"invalid name {shown}",
            "use letters, digits, '-' and '_', start with a letter or digit, at most 63",
        )
    if kind == "literal_error":
        choices = _EXPECTED.findall(str(ctx.get("expected", "")))
        if len(items) == 1:
            hint = did_you_mean(str(value), choices) if isinstance(value, str) else None
            return f"must be {ctx.get('expected')} (got {shown})", hint
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (got {_type_name(value)})", None
    if kind == "list_type":
        return f"must be a list (got {_type_name(value)})", None
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty", None
    messages = []
    options: list[str] = []
    for item, _ in items:
        message = str(item["msg"])
        for old, new in (("Value error, ", ""), ("Input should be", "must be")):
            message = message.replace(old, new)
        if item["type"].endswith("_parsing"):
            message = message.split(",")[0]
        if len(items) > 1:
            message = message.removeprefix("must be ")
        if item["type"] == "literal_error":
            message = str(item["ctx"]["expected"])
            options += _EXPECTED.findall(message)
        if message not in messages:
            messages.append(message)
    if len(items) > 1:
        hint = did_you_mean(value, options) if isinstance(value, str) else None
        return f"must be {' or '.join(messages)} (got {shown})", hint
    joined = messages[0]
    if kind == "value_error":
        if placeholder is not None and isinstance(value, str):
            joined = joined.replace(value, placeholder)
        return joined, None
    return f"{joined} (got {shown})", None


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return _type_name(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)


def _field_names(root: Any, loc: list[Any], data: Any, prefix: str) -> list[str]:
    """The keys allowed at ``loc`` (the YAML names, i.e. aliases), or [] if unknown."""
    model = _model_at(root, (["provider"] if prefix else []) + loc, data)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(tp: Any, loc: list[Any], data: Any) -> type[BaseModel] | None:
    node = data
    for part in loc:
        tp = _pick(tp, node)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = next(
                (f for n, f in tp.model_fields.items() if (f.alias or n) == part),
                None,
            )
            if info is None:
                return None
            tp = info.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, list):
            node = None
    tp = _pick(tp, node)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _pick(tp: Any, node: Any) -> Any:
    """Unwrap Annotated/Optional; choose a union member by its ``kind``/``type`` literal."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(members) == 1:
            return _pick(members[0], node)
        for model in models:
            for tag in ("kind", "type"):
                info = model.model_fields.get(tag)
                if info is None or not isinstance(node, dict):
                    continue
                if node.get(tag) in typing.get_args(info.annotation):
                    return model
        return models[0] if len(models) == 1 else None
    return tp


# --------------------------------------------------------------------------- helpers


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


def _is_yaml(path: Path) -> bool:
    """A ``*.yaml``/``*.yml`` file that is not hidden (editor backups, ``.#x.yaml``)."""
    return path.suffix in (".yaml", ".yml") and not path.name.startswith(".") and path.is_file()


def _rel(repo: Path, path: Path) -> str:
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:
        return str(path)


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.file or "", d.line or 0, d.path, d.summary))
