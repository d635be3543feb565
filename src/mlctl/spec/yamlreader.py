"""Read one YAML file into plain Python, knowing the file:line of every node.

Contract: :class:`YamlReader` streams the events of PyYAML's C parser (never ``yaml.load``,
never a Python object tag) and builds dicts, lists and scalars with YAML 1.1's implicit types.
While it builds, it records the ``(file, line)`` of every key path in ``sources``, reports
duplicate keys, non-string keys, unknown tags, multiple documents and alias bombs as located
:class:`~mlctl.errors.Diagnostic` values in ``diagnostics`` (it never raises for bad input),
and resolves ``${VAR}`` in strings from ``environ`` (``$${`` escapes a literal ``${``),
keeping the text before interpolation in ``placeholders`` by key path and each resolved value
in ``secrets`` (and in the process's redaction registry, :mod:`mlctl.redaction`). Aliases
copy the anchor's locations and placeholders under their own path. A file nested deeper than
:data:`MAX_DEPTH` levels is one diagnostic (nothing in the schema comes close; deeper input
only exists to exhaust the recursion of whatever reads it next). One reader is used for every
file of an environment, so ``sources`` and ``diagnostics`` accumulate across files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlctl.errors import Diagnostic
from mlctl.redaction import Secrets, remember
from mlctl.spec.envspec import SourceMap

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MAX_NODES = 2_000_000  # alias expansion bomb guard; a 1,000-model environment is ~100k
MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a file may have (the schema needs about 8)."""
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MAP, _SEQ, _MERGE = (_TAG + t for t in ("timestamp", "map", "seq", "merge"))
_VALUE = _TAG + "value"
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = yaml.resolver.Resolver.yaml_implicit_resolvers
_INTERNED = {t: t for t in (_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _MERGE, _VALUE)}
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


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


class _TooDeep(Exception):
    """Raised inside :meth:`YamlReader._build` to stop reading a file nested too deeply."""


_NO_KEY, _SKIP, _MERGE_KEY = object(), object(), object()
_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
_Anchors = dict[str, tuple[Any, str, int, int, int, int]]


class YamlReader:
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
        self.secrets = Secrets()
        """Every value resolved from ``${VAR}`` -> the text to show instead."""
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
        """Parse one file into Python (None when empty or broken; ``self.failed`` tells which).

        A symbolic link is refused without being followed: an environment or provider file is
        reviewed in the pull request as a file, and a link could merge anything the runner can
        read (a file outside the repository, another environment's secrets file).
        """
        self.file = relative(self.repo, path)
        self.failed = True
        if path.is_symlink():
            self.diagnostics.append(
                Diagnostic(
                    "is a symbolic link; environment and provider files must be regular files",
                    file=self.file,
                    hint="replace the link with the file it points to",
                )
            )
            return None
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
        except _TooDeep:
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
                        if len(stack) >= MAX_DEPTH:
                            self.at(
                                line,
                                path_or_none or "",
                                f"nested deeper than {MAX_DEPTH} levels",
                                "nothing in an mlctl file needs more than a few",
                            )
                            raise _TooDeep
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
            self._remember(value, "${" + name + "}")
            return value

        result = _VAR.sub(replace, text)
        if used:
            self.placeholders[path] = text
            self._secrets.append((path, text))
            self._remember(result, text)
        return result

    def _remember(self, value: str, placeholder: str) -> None:
        self.secrets.add(value, placeholder)
        remember(value, placeholder)


def is_yaml(path: Path) -> bool:
    """A ``*.yaml``/``*.yml`` file that is not hidden (editor backups, ``.#x.yaml``); a symbolic
    link of that name counts too, so that :meth:`YamlReader.read` refuses it out loud."""
    if path.suffix not in (".yaml", ".yml") or path.name.startswith("."):
        return False
    return path.is_symlink() or path.is_file()


def inside_repository(repo: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside ``repo``."""
    return path.resolve().is_relative_to(repo.resolve())


def relative(repo: Path, path: Path) -> str:
    """``path`` relative to ``repo`` in POSIX form (as written in diagnostics), else as is."""
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:
        return str(path)
