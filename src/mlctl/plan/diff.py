"""Human descriptions of how two normalized specs differ, computed with deepdiff.

deepdiff imports numpy and pandas when they are installed (about 0.7 s), which would break the
rule that ``plan`` imports no pandas. They are hidden while deepdiff is first imported; the
values compared here are plain JSON, so nothing is lost. The import happens only when a
resource actually changed: a no-op plan never pays for it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

_HIDDEN = ("numpy", "pandas", "polars", "orjson")
_PATH_PART = re.compile(r"\[(?:'((?:[^'\\]|\\.)*)'|(\d+))\]")


def _deepdiff() -> Any:
    if "deepdiff" in sys.modules:
        return sys.modules["deepdiff"].DeepDiff
    hidden = [name for name in _HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        from deepdiff import DeepDiff
    finally:
        for name in hidden:
            sys.modules.pop(name, None)
    return DeepDiff


def dotted(path: str) -> str:
    """``root['params']['max_depth']`` -> ``params.max_depth``; list indexes as ``[0]``."""
    out = ""
    for key, index in _PATH_PART.findall(path):
        out += f"[{index}]" if index else (f".{key}" if out else key)
    return out


def short(value: Any) -> str:
    """A compact, one-line rendering of a value for plan output."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def describe(before: Any, after: Any) -> list[str]:
    """Lines like ``~ params.max_depth: 15 -> 12``, ``+ tags.owner: "x"``, ``- gates.min_f1``."""
    if before == after:
        return []
    diff = _deepdiff()(before, after, ignore_order=False, verbose_level=2)
    lines: list[str] = []
    for path, change in diff.get("values_changed", {}).items():
        lines.append(f"~ {dotted(path)}: {short(change['old_value'])} -> {short(change['new_value'])}")
    for path, change in diff.get("type_changes", {}).items():
        lines.append(f"~ {dotted(path)}: {short(change['old_value'])} -> {short(change['new_value'])}")
    for key in ("dictionary_item_added", "iterable_item_added"):
        for path, value in diff.get(key, {}).items():
            lines.append(f"+ {dotted(path)}: {short(value)}")
    for key in ("dictionary_item_removed", "iterable_item_removed"):
        for path, value in diff.get(key, {}).items():
            lines.append(f"- {dotted(path)}: {short(value)}")
    return sorted(lines, key=lambda line: line[2:])
