"""Write-back: make git agree with a stage move (``rollback`` rewrites the pin in YAML).

:func:`set_stage_pin` changes ``models.<model>.stages.<stage>`` in one YAML file and nothing
else. When the pin already exists as a one-line scalar, only that scalar's characters are
replaced in the original text, so every other byte (comments, quoting, spacing, indentation,
flow or block style, line endings) is kept exactly. Otherwise (``stages`` or the stage missing)
the file goes through a ruamel.yaml round trip that keeps comments, key order and quotes, with
the file's own indentation detected and a very large line width so nothing is re-wrapped.
Either way the result is re-parsed and checked to differ from the original in that one value
only before it is written (atomically).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError, NotFoundError
from mlctl.files import atomic_write

_PLAIN_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# Words YAML 1.1 or 1.2 loaders read as booleans or null: never write them unquoted.
_SPECIAL_WORDS = frozenset(
    ["y", "yes", "n", "no", "true", "false", "on", "off", "null", "~"]  # compared lower-cased
)
_WIDTH = 1 << 20


def _render(value: int | str, quote: str | None) -> str:
    """The YAML text of ``value``; strings keep the original quote style when there was one."""
    if isinstance(value, bool):  # bool is an int subclass; a pin is never a bool
        raise MlctlError(f"invalid stage pin {value!r}: expected a version number or a name")
    if isinstance(value, int):
        return str(value)
    if quote == "'":
        return "'" + value.replace("'", "''") + "'"
    if quote == '"' or not _PLAIN_SAFE.fullmatch(value) or value.lower() in _SPECIAL_WORDS:
        return json.dumps(value, ensure_ascii=False)
    return value


def _scalar_end(line: str, start: int, flow: bool) -> int | None:
    """End index (exclusive) of the one-line scalar starting at ``line[start]``, or None."""
    if start >= len(line):
        return None
    first = line[start]
    if first == "'":
        i = start + 1
        while i < len(line):
            if line[i] == "'":
                if i + 1 < len(line) and line[i + 1] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return None
    if first == '"':
        i = start + 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1
            i += 1
        return None
    if first in "&*!|>[{":
        return None  # anchors, aliases, tags, block scalars, collections: not a simple pin
    end = len(line.rstrip("\r\n"))
    comment = line.find(" #", start)
    if comment != -1:
        end = min(end, comment)
    if flow:
        for stop in ",}]":
            pos = line.find(stop, start)
            if pos != -1:
                end = min(end, pos)
    while end > start and line[end - 1] in " \t":
        end -= 1
    return end if end > start else None


def _same(current: Any, value: int | str) -> bool:
    if isinstance(current, bool):
        return False
    if isinstance(value, int):
        return isinstance(current, int) and current == value
    return isinstance(current, str) and str(current) == value


def _detect_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as used in ``text`` (ruamel terms)."""
    from ruamel.yaml.util import load_yaml_guess_indent

    mapping: int | None = None
    prev_key_indent: int | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        lead = len(raw) - len(raw.lstrip(" "))
        if prev_key_indent is not None and lead > prev_key_indent and not stripped.startswith("-"):
            mapping = lead - prev_key_indent
            break
        body = stripped.split(" #", 1)[0].rstrip()
        prev_key_indent = lead if body.endswith(":") and not stripped.startswith("-") else None
    mapping = mapping or 2
    try:
        _, seq, offset = load_yaml_guess_indent(text)
    except Exception:
        seq, offset = None, None
    if offset is None or seq is None:
        return mapping, mapping + 2, mapping
    return mapping, max(seq, offset + 2), offset


def _plain(node: Any) -> Any:
    """A ruamel round-trip tree as plain dicts/lists/scalars, for semantic comparison."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _load(text: str, file: Path) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        return yaml.load(text)
    except YAMLError as exc:
        first = str(exc).strip().splitlines()
        raise MlctlError(f"{file}: invalid YAML: {first[0] if first else exc}") from None


def _model_map(data: Any, file: Path, model: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    models = data.get("models") if isinstance(data, CommentedMap) else None
    if not isinstance(models, CommentedMap) or model not in models:
        known = ", ".join(str(k) for k in models) if isinstance(models, CommentedMap) else ""
        hint = f" (models here: {known})" if known else " (no models in this file)"
        raise NotFoundError(f"{file}: model {model} is not defined{hint}")
    entry = models[model]
    if not isinstance(entry, CommentedMap):
        raise MlctlError(f"{file}: models.{model} is not a mapping")
    return entry


def _surgical(text: str, entry: Any, stage: str, value: int | str) -> str | None:
    """``text`` with the existing one-line pin replaced in place, or None if not possible."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    stages = entry.get("stages")
    if not isinstance(stages, CommentedMap) or stage not in stages:
        return None
    current = stages[stage]
    if isinstance(current, (dict, list)) or current is None:
        return None
    try:
        line_no, col = stages.lc.value(stage)
    except (KeyError, TypeError, AttributeError):
        return None
    lines = text.splitlines(keepends=True)
    if line_no >= len(lines):
        return None
    line = lines[line_no]
    end = _scalar_end(line, col, bool(stages.fa.flow_style()))
    if end is None:
        return None
    quote = None
    if isinstance(current, DoubleQuotedScalarString):
        quote = '"'
    elif isinstance(current, SingleQuotedScalarString):
        quote = "'"
    rendered = _render(value, quote)
    rest = line[end:]
    if not stages.fa.flow_style():
        rest = _keep_comment_column(rest, end - col, len(rendered))
    lines[line_no] = line[:col] + rendered + rest
    return "".join(lines)


_TRAILING_COMMENT = re.compile(r"( +)(#.*)", re.S)


def _keep_comment_column(rest: str, width: int, new_width: int) -> str:
    """``rest``, what follows a scalar ``width`` characters wide, for a scalar ``new_width``
    wide: a trailing ``# comment`` keeps its column (comments aligned in a column stay
    aligned), or sits one space after the new scalar when that would reach it. Anything
    else (no comment, tabs before it) is returned unchanged."""
    found = _TRAILING_COMMENT.fullmatch(rest)
    if found is None:
        return rest
    spaces = len(found.group(1)) + width - new_width
    return " " * max(spaces, 1) + found.group(2)


def _round_trip(text: str, data: Any, entry: Any, stage: str, value: int | str) -> str:
    """Set the pin in the loaded tree and dump it in the file's own layout."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    stages = entry.get("stages")
    if not isinstance(stages, CommentedMap):
        new = CommentedMap()
        if entry.fa.flow_style():
            new.fa.set_flow_style()
        keys = list(entry.keys())
        if "stages" in entry:
            entry["stages"] = new
        else:
            after = next((k for k in ("gates", "training") if k in entry), None)
            pos = keys.index(after) + 1 if after is not None else len(keys)
            entry.insert(pos, "stages", new)
        stages = new
    stages[stage] = value
    mapping, sequence, offset = _detect_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = _WIDTH
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    if text.lstrip().startswith("---"):
        yaml.explicit_start = True
    out = io.StringIO()
    yaml.dump(data, out)
    result = out.getvalue()
    if "\r\n" in text:
        result = result.replace("\r\n", "\n").replace("\n", "\r\n")
    return result


def set_stage_pin(file: Path, model: str, stage: str, value: int | str) -> bool:
    """Set ``models.<model>.stages.<stage>`` to ``value`` in ``file``; True if it changed.

    Keeps comments, key order, quoting and flow/block layout (see the module docstring);
    creates ``stages`` when missing. Raises NotFoundError when the file does not exist or
    does not define ``model``, MlctlError when the YAML is invalid or has an unexpected shape.
    The file is replaced atomically, or not touched at all when the pin already has ``value``.
    """
    file = Path(file)
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise NotFoundError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlctlError(f"cannot read {file}: {exc}") from None
    data = _load(text, file)
    entry = _model_map(data, file, model)
    stages = entry.get("stages")
    if stages is not None and not isinstance(stages, dict):
        raise MlctlError(f"{file}: models.{model}.stages is not a mapping")
    if isinstance(stages, dict) and stage in stages and _same(stages[stage], value):
        return False

    expected = _plain(data)
    expected["models"][model].setdefault("stages", None)
    if expected["models"][model]["stages"] is None:
        expected["models"][model]["stages"] = {}
    expected["models"][model]["stages"][stage] = value

    new_text = _surgical(text, entry, stage, value)
    if new_text is None or _plain(_load(new_text, file)) != expected:
        new_text = _round_trip(text, data, entry, stage, value)
        if _plain(_load(new_text, file)) != expected:  # pragma: no cover - ruamel bug guard
            raise MlctlError(f"{file}: could not rewrite models.{model}.stages.{stage} safely")
    if new_text == text:
        return False
    try:
        atomic_write(file, new_text.encode("utf-8"))
    except OSError as exc:
        raise MlctlError(f"cannot write {file}: {exc}") from None
    return True
