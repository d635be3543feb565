"""Turn a pydantic ``ValidationError`` into located, readable :class:`~mlctl.errors.Diagnostic` values.

Contract: :func:`translate` returns one diagnostic per failing key path of the YAML data (not
per pydantic error), located through the loader's :class:`~mlctl.spec.envspec.SourceMap` at
the nearest defined node. Pydantic's internal locations (union tags, ``[key]``, ``schema_``)
are mapped back to the keys the user wrote; summaries are in YAML terms ("unknown key",
"must be a mapping (got a list)") with a did-you-mean hint where one fits. A value that came
from ``${VAR}`` is shown as its placeholder, never as the resolved secret; values are shown
repr-style (quoted, control characters escaped), so every diagnostic is one line.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from mlctl.errors import Diagnostic
from mlctl.spec.display import one_line
from mlctl.spec.envspec import SourceMap
from mlctl.spec.models import NAME_PATTERN, Environment, ProviderFile
from mlctl.spec.names import did_you_mean


def translate(
    error: ValidationError,
    data: dict[str, Any],
    prefix: str,
    sources: SourceMap,
    placeholders: Mapping[str, str],
) -> list[Diagnostic]:
    """One Diagnostic per failing key path of ``data``, located through ``sources``.

    ``prefix`` is ``provider:<stem>`` for a provider file (validated as ``{"provider": data}``)
    and empty for the environment; ``placeholders`` are the texts to show for secret paths.
    """
    by_path: dict[str, list[tuple[Any, list[Any]]]] = {}
    for item in error.errors(include_url=False):
        loc = _data_loc(item["loc"], data, item["type"])
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append(str(item.get("ctx", {}).get("discriminator", "")).strip("'"))
        if prefix:  # provider files are validated as {"provider": content}
            loc = loc[1:] if loc and loc[0] == "provider" else loc
        dotted = ".".join([prefix] * bool(prefix) + [str(part) for part in loc])
        by_path.setdefault(dotted, []).append((item, loc))
    diagnostics = []
    for path, items in by_path.items():
        file, line = sources.locate(path)
        root_type: Any = ProviderFile if prefix else Environment
        summary, hint = _describe(items, data, root_type, placeholders.get(path), prefix)
        diagnostics.append(Diagnostic(one_line(summary), path, file, line, one_line(hint) if hint else hint))
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
