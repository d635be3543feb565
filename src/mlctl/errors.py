"""Errors a user can cause, and the diagnostics that describe what went wrong.

Contract: every exception a user can provoke (bad YAML, a held lock, a stale plan, a failed
gate) is an :class:`MlctlError`; a :class:`Diagnostic` is one located problem, with a
severity, that a :class:`ConfigError` or an operation's result carries. The CLI's single
error boundary prints ``str(error)`` as one line (or one line per diagnostic) and exits 1;
anything else is a bug and gets a crash log.
Raising an ``MlctlError`` must never leave state half-written: raise before persisting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in configuration, located in its source file.

    ``path`` is the dotted key path inside the merged environment
    (``models.churn-predictor.training.test_size``) or, for a problem found while changing
    the world, the resource address (``model_version.churn-predictor``); ``file``/``line``
    point at the YAML node (1-based line), or are ``None`` when the problem has no single
    source location. ``severity`` is ``error`` (the command fails) or ``warning`` (it
    succeeds, and says so); it does not change how the diagnostic reads.
    """

    summary: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{key}{self.summary}{hint}"


class MlctlError(Exception):
    """A failure the user can cause or fix. The message is one clear line."""


class ConfigError(MlctlError):
    """The desired state is invalid. Carries every diagnostic found, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class LockError(MlctlError):
    """The environment's state lock is held by another operation (message names the holder)."""


class StateConflictError(MlctlError):
    """Lost the race: the stored state changed since it was read (another writer won)."""


class StalePlanError(MlctlError):
    """A saved plan no longer matches the state or the desired state it was made from."""


class ApplyError(MlctlError):
    """Apply finished with failed actions (data checks, gates); state holds what succeeded."""


class NotFoundError(MlctlError):
    """A named thing (environment, model, version, run, address) does not exist."""
