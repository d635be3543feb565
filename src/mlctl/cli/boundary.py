"""The one error boundary of the program (pre-commit's ``error_handler`` shape).

Expected failures (:class:`~mlctl.errors.MlctlError`, click usage errors) print one line per
problem to stderr and exit 1: the error's diagnostics (a :class:`~mlctl.errors.ConfigError`'s,
else one per line of its message) through the one diagnostics view,
:func:`mlctl.plan.diagnostics.render_diagnostics`. A command with a JSON output format prints
the same diagnostics as JSON on stdout first (see :mod:`mlctl.cli.plan_cmd`). Anything else
is a bug: the traceback goes to a crash log whose path is printed, and the exit code is 3. The
user never sees a raw traceback.

No secret leaves through it: the boundary opens a fresh redaction registry for the command
(:func:`mlctl.redaction.scope`: every value the command's YAML resolves from ``${VAR}``, and
the well-known credential variables), and while the command runs ``sys.stdout`` and
``sys.stderr`` pass every write through :func:`~mlctl.redaction.redact`, so plans, progress,
log lines and error messages all show ``${VAR}`` placeholders whichever code printed them. The
error lines and the crash log are redacted the same way (a CI job may upload the log).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from mlctl import redaction
from mlctl.errors import MlctlError


def crash_log_dir() -> Path:
    """Where crash logs go: ``$MLCTL_CRASH_DIR`` or the system temp directory."""
    return Path(os.environ.get("MLCTL_CRASH_DIR") or tempfile.gettempdir())


class RedactingStream:
    """A text stream that writes through :func:`~mlctl.redaction.redact` (all else delegated)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: Any) -> int:
        if isinstance(text, str):
            text = redaction.redact(text)
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def redacted_output() -> Iterator[None]:
    """A fresh secret registry, and stdout/stderr redacted, for the duration of one command."""
    out, err = sys.stdout, sys.stderr
    with redaction.scope():
        sys.stdout = RedactingStream(out) if out is not None else out
        sys.stderr = RedactingStream(err) if err is not None else err
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err


@contextmanager
def error_boundary() -> Iterator[None]:
    """Turn every exception into an exit code and at most a few clear lines (never a secret)."""
    with redacted_output():
        yield from _boundary()


def _boundary() -> Iterator[None]:
    try:
        yield
    except MlctlError as exc:
        from mlctl.plan.diagnostics import diagnostics_of, render_diagnostics

        click.echo(render_diagnostics(diagnostics_of(exc), "text"), err=True, nl=False)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:
        directory = crash_log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="mlctl-crash-", suffix=".log", dir=directory)
        with os.fdopen(fd, "w") as log:
            log.write(redaction.redact(f"mlctl {' '.join(sys.argv[1:])}\n\n"))
            log.write(redaction.redact(traceback.format_exc()))
        summary = redaction.redact(f"{type(exc).__name__}: {exc}").splitlines()[0][:300]
        click.echo(
            f"Error: mlctl crashed ({summary}). This is a bug; the traceback is in {name}",
            err=True,
        )
        sys.exit(3)
