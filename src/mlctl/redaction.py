"""Values that came from ``${VAR}``, and the one step that shows each as its placeholder.

A ground helper (it imports nothing of mlctl): the spec loader fills it, and everything that
prints (the CLI's error boundary, the plan renderers, the PR comment) reads it.

Contract: :class:`Secrets` maps resolved values to the text a user may see instead
(``hunter2`` -> ``${DB_PASSWORD}``, ``s3://b/hunter2/x`` -> ``s3://b/${KEY}/x``);
:meth:`Secrets.redact` replaces every occurrence of every value, and of the forms a value takes
once quoted (JSON and Python string escapes, URL and HTML escapes), in any text. The YAML
reader records each value it interpolates twice: in its own :class:`Secrets` (carried by the
:class:`~mlctl.spec.envspec.EnvSpec` and used for its diagnostics) and in this process's
registry (:func:`remember`), which :func:`redact` reads. The CLI's error boundary opens a fresh
registry per command (:func:`scope`), adds the values of well-known credential variables
(:data:`CREDENTIAL_VARIABLES`) and passes everything the command prints through
:func:`redact`; the plan renderers and the PR comment call it on their output too, so no code
path that prints needs to remember to.

Values shorter than :data:`MIN_LENGTH` characters are not replaced inside other text (``1`` or
``dev`` would garble every line, and hide nothing); the messages that name such a field show
its placeholder on their own.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

MIN_LENGTH = 4
"""Shorter values are not replaced inside other text (see the module docstring)."""

CREDENTIAL_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "MLCTL_SERVE_TOKEN",
    "REDIS_PASSWORD",
)
"""Environment variables whose values are redacted from CLI output even when no YAML names them."""


def _forms(value: str) -> Iterator[str]:
    """``value`` and the forms it takes once quoted by the code that prints it."""
    from html import escape
    from urllib.parse import quote

    yield value
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield repr(value)[1:-1]
    yield quote(value, safe="")
    yield quote(value)
    yield escape(value, quote=False)


class Secrets:
    """Resolved secret values and their placeholders; :meth:`redact` swaps one for the other."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._replacements: dict[str, str] = {}
        self._lock = threading.Lock()
        for value, placeholder in (values or {}).items():
            self.add(value, placeholder)

    def add(self, value: str, placeholder: str) -> None:
        """Show ``placeholder`` wherever ``value`` would appear (a first placeholder wins)."""
        if not isinstance(value, str) or value == placeholder:
            return
        with self._lock:
            if value not in self._values:
                self._values[value] = placeholder
                self._pattern = None

    def update(self, other: Secrets | Mapping[str, str]) -> None:
        for value, placeholder in dict(other.values() if isinstance(other, Secrets) else other).items():
            self.add(value, placeholder)

    def values(self) -> dict[str, str]:
        """value -> placeholder (a copy)."""
        with self._lock:
            return dict(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def _compiled(self) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        with self._lock:
            if self._pattern is None and self._values:
                replacements: dict[str, str] = {}
                for value, placeholder in self._values.items():
                    replacements.setdefault(placeholder, placeholder)  # a placeholder stays itself
                    if len(value) < MIN_LENGTH:
                        continue
                    for form in _forms(value):
                        replacements.setdefault(form, placeholder)
                # longest first: a composite value wins over the variable inside it
                ordered = sorted(replacements, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(text) for text in ordered))
                self._replacements = replacements
            return self._pattern, self._replacements

    def redact(self, text: str) -> str:
        """``text`` with every secret value (in any quoted form) replaced by its placeholder."""
        if not self._values or not isinstance(text, str) or not text:
            return text
        pattern, replacements = self._compiled()
        if pattern is None:
            return text
        return pattern.sub(lambda match: replacements[match.group(0)], text)

    def redact_value(self, value: Any) -> Any:
        """A copy of ``value`` (strings, lists, dicts) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_value(v) for v in value)
        return value


_registry = Secrets()


def remember(value: str, placeholder: str) -> None:
    """Record one resolved value for :func:`redact` (the YAML reader calls this)."""
    _registry.add(value, placeholder)


def redact(text: str) -> str:
    """``text`` with every value this process resolved from ``${VAR}`` shown as its placeholder."""
    return _registry.redact(text)


def redact_lines(lines: Iterable[str]) -> list[str]:
    return [redact(line) for line in lines]


def credential_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """value -> ``${NAME}`` of the :data:`CREDENTIAL_VARIABLES` that are set."""
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name in CREDENTIAL_VARIABLES:
        value = environ.get(name)
        if value:
            found.setdefault(value, "${" + name + "}")
    return found


@contextmanager
def scope(environ: Mapping[str, str] | None = None) -> Iterator[Secrets]:
    """A fresh registry for one command (with the credential variables' values); the previous
    one is restored afterwards, so one command's secrets never rewrite another's output."""
    global _registry
    previous = _registry
    _registry = Secrets(credential_values(environ))
    try:
        yield _registry
    finally:
        _registry = previous


__all__ = [
    "CREDENTIAL_VARIABLES",
    "MIN_LENGTH",
    "Secrets",
    "credential_values",
    "redact",
    "redact_lines",
    "remember",
    "scope",
]
