"""The one error boundary of the program (pre-commit's ``error_handler`` shape).

Expected failures (:class:`~mlctl.errors.MlctlError`, click usage errors) print one line per
problem to stderr and exit 1. Anything else is a bug: the traceback goes to a crash log whose
path is printed, and the exit code is 3. The user never sees a raw traceback.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mlctl.errors import MlctlError


def crash_log_dir() -> Path:
    """Where crash logs go: ``$MLCTL_CRASH_DIR`` or the system temp directory."""
    return Path(os.environ.get("MLCTL_CRASH_DIR") or tempfile.gettempdir())


@contextmanager
def error_boundary() -> Iterator[None]:
    """Turn every exception into an exit code and at most a few clear lines."""
    try:
        yield
    except MlctlError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"Error: {line}", err=True)
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
            log.write(f"mlctl {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exc(file=log)
        click.echo(
            f"Error: mlctl crashed ({type(exc).__name__}: {exc}). This is a bug; the traceback is in {name}",
            err=True,
        )
        sys.exit(3)
