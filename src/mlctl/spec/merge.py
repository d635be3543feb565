"""Merge the YAML files of one environment into one document, and read the provider files.

Contract: :func:`merge_files` reads each file (in the order given) with one
:class:`~mlctl.spec.yamlreader.YamlReader` and merges the top-level sections: in a name
section (:data:`NAME_SECTIONS`) each name may be defined in one file only, in an object
section (:data:`OBJECT_SECTIONS`) each key may; any other top-level key may appear once. A
name, key or section defined twice is a diagnostic naming both ``file:line`` places, and the
first definition wins; a name or object section that is not a mapping (a list, a number) is a
diagnostic at that file's line and is left out of the merge. :func:`read_providers` reads
``providers/*.yaml`` by file stem, each under the key path ``provider:<stem>``. Problems go to
the reader's ``diagnostics``; nothing here raises for bad input or validates against the schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlctl.errors import Diagnostic
from mlctl.spec.envspec import PROVIDER_PREFIX
from mlctl.spec.yamlreader import YamlReader, inside_repository, is_yaml

NAME_SECTIONS = ("datasets", "entities", "feature_views", "models", "endpoints", "monitors")
"""Top-level sections that map names to objects; names are merged across files."""
OBJECT_SECTIONS = ("backend", "providers")
"""Top-level sections that are one object; their keys are merged across files."""


def merge_files(reader: YamlReader, files: list[Path]) -> dict[str, Any]:
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
                if not isinstance(value, dict):
                    what = "names" if section in NAME_SECTIONS else "keys"
                    reader.diagnostics.append(
                        Diagnostic(
                            f"'{section}' must be a mapping of {what} (got {_kind(value)})",
                            section,
                            reader.file,
                            line,
                        )
                    )
                    continue
                owner.setdefault(section, (reader.file, line))
                _merge_section(reader, section, value, merged.setdefault(section, {}), owner)
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


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _merge_section(
    reader: YamlReader,
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
        _, line = reader.sources.get(path) or reader.sources.get(section) or (reader.file, 1)
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


def read_providers(reader: YamlReader) -> dict[str, Any]:
    """Every ``providers/*.yaml`` as plain data, by file stem (None for an empty file)."""
    folder = reader.repo / "providers"
    if not folder.is_dir():
        return {}
    if folder.is_symlink() or not inside_repository(reader.repo, folder):
        reader.diagnostics.append(
            Diagnostic(
                "is a symbolic link; provider files must be regular files in the repository",
                file="providers",
            )
        )
        return {}
    result: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not is_yaml(path):
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
