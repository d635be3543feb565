"""The one view of diagnostics: the same :class:`~mlctl.errors.Diagnostic` values as text lines
or as a JSON document (shape of Terraform's ``validate -json``), documented in
docs/plan-json.md "Diagnostics".

Contract: functions return strings or plain data and never print (the CLI prints). Text is one
line per diagnostic, ``Error: <str(diagnostic)>`` or ``Warning: ...`` -- what the error boundary
has always printed. JSON is :func:`diagnostics_document`: ``format_version``, ``valid``,
``errored``, ``error_count``, ``warning_count`` and ``diagnostics[]`` (:func:`diagnostic_json`).
Every string passes through :func:`~mlctl.redaction.redact`, so a value that came from
``${VAR}`` shows as its placeholder, never as the secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from mlctl.errors import Diagnostic
from mlctl.redaction import redact

#: Version of the diagnostics document (major.minor: a new minor only adds properties).
DIAGNOSTICS_FORMAT_VERSION = "1.0"

Format = Literal["text", "json"]

_LABEL = {"error": "Error", "warning": "Warning"}


def diagnostic_lines(diagnostic: Diagnostic) -> list[str]:
    """``Error: <diagnostic>`` or ``Warning: <diagnostic>``, redacted: one line (one per line
    of the text, each labelled, should a summary hold a line break)."""
    label = _LABEL[diagnostic.severity]
    return [f"{label}: {line}" for line in redact(str(diagnostic)).splitlines() or [""]]


def diagnostic_json(diagnostic: Diagnostic, text: Callable[[str], str] = redact) -> dict[str, Any]:
    """One diagnostic as a JSON object; every key is always present (``null`` when unknown).

    ``severity``, ``summary``, ``detail`` (the hint: ``did you mean ...``), ``message`` (the
    line the text view prints after ``Error:``/``Warning:``), ``address`` (the resource it is
    about), ``path`` (dotted key in the merged environment, or an address), ``subject``
    (``policy``, ``monitor NAME``...) and ``range`` (``{"filename", "start": {"line"}}``, with
    ``start`` null when only the file is known; ``range`` null when there is no file).
    ``text`` is applied to every string (default :func:`~mlctl.redaction.redact`; the plan's
    JSON passes its masking, which shows ``(sensitive)``).
    """
    d = diagnostic
    span = None
    if d.file:
        span = {"filename": d.file, "start": {"line": d.line} if d.line else None}

    def opt(value: str | None) -> str | None:
        return text(value) if value else None

    return {
        "severity": d.severity,
        "summary": text(d.summary),
        "detail": opt(d.hint),
        "message": text(str(d)),
        "address": opt(d.address),
        "path": opt(d.path),
        "subject": opt(d.subject),
        "range": span,
    }


def diagnostics_document(diagnostics: Iterable[Diagnostic]) -> dict[str, Any]:
    """The JSON document of ``mlctl validate --format json`` and of a ``plan --format json``
    that could not be made: ``valid`` when no diagnostic is an error, ``errored`` its negation
    (the key the JSON plan has), the counts by severity, and the diagnostics in order."""
    items = list(diagnostics)
    errors = sum(1 for d in items if d.severity == "error")
    return {
        "format_version": DIAGNOSTICS_FORMAT_VERSION,
        "valid": errors == 0,
        "errored": errors > 0,
        "error_count": errors,
        "warning_count": len(items) - errors,
        "diagnostics": [diagnostic_json(d) for d in items],
    }


def render_diagnostics(diagnostics: Iterable[Diagnostic], fmt: Format = "text") -> str:
    """``diagnostics`` as text (one ``Error:``/``Warning:`` line each, newline-terminated; ""
    when there are none) or as the indented JSON :func:`diagnostics_document`."""
    items = list(diagnostics)
    if fmt == "json":
        return json.dumps(diagnostics_document(items), indent=2) + "\n"
    return "".join(line + "\n" for d in items for line in diagnostic_lines(d))


def diagnostics_of(error: BaseException) -> list[Diagnostic]:
    """The diagnostics an error carries: a :class:`~mlctl.errors.ConfigError`'s (or any error
    with a ``diagnostics`` list), else one error diagnostic per line of its message."""
    carried = getattr(error, "diagnostics", None)
    if isinstance(carried, list) and all(isinstance(d, Diagnostic) for d in carried) and carried:
        return list(carried)
    lines = str(error).splitlines() or [type(error).__name__]
    return [Diagnostic(line) for line in lines]


__all__ = [
    "DIAGNOSTICS_FORMAT_VERSION",
    "diagnostic_json",
    "diagnostic_lines",
    "diagnostics_document",
    "diagnostics_of",
    "render_diagnostics",
]
