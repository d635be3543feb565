"""Errors a user can cause, and the diagnostics that describe what went wrong.

Contract: every exception a user can provoke (bad YAML, a held lock, a stale plan, a failed
gate) is an :class:`MlctlError`; a :class:`Diagnostic` is one located problem, with a
severity, that a :class:`ConfigError`, a plan (its warnings, policy findings) or an
operation's result carries. The CLI's single error boundary prints one line per diagnostic
(``str(error)`` for an error without any) through :mod:`mlctl.plan.diagnostics` and exits 1;
anything else is a bug and gets a crash log.
Raising an ``MlctlError`` must never leave state half-written: raise before persisting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in configuration (or by an operation), located where it can be.

    ``path`` is the dotted key path inside the merged environment
    (``models.churn-predictor.training.test_size``) or, for a problem found while changing
    the world, the resource address (``model_version.churn-predictor``); ``file``/``line``
    point at the source node (1-based line: a YAML file, a policy's ``.rego`` file), or are
    ``None`` when the problem has no single source location. ``severity`` is ``error`` (the
    command fails, or apply refuses the plan) or ``warning`` (it succeeds, and says so); it
    does not change how the diagnostic reads.

    ``address`` is the resource the problem is about (``stage.churn.production``), for
    machines: the JSON view carries it, the text shows it only where it is also the ``path``
    or in the summary. ``subject`` names what produced a problem that is not a YAML node
    (``policy``, ``monitor churn-drift``, ``rollout api``); the text starts with it.

    The text (``str``) is one line: ``[subject ][file:line: ][path: ]summary[ (hint)]``, where a
    subject without a location is followed by ``": "``. :func:`mlctl.plan.diagnostics.render_diagnostics`
    renders a list as text or JSON.
    """

    summary: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    hint: str | None = None
    severity: Severity = "error"
    address: str | None = None
    subject: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        if self.subject:
            where = f"{self.subject} {where}" if where else f"{self.subject}: "
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
