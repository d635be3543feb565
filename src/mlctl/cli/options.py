"""What every command module shares: the ``-e/--env`` option and the repository from ``-C``.

Light at import (click only), like every ``cli/*_cmd.py`` module: ``mlctl --help`` imports
them all to list the commands.
"""

from __future__ import annotations

from pathlib import Path

import click

ENV = click.option("-e", "--env", "env", required=True, metavar="ENV", help="Environment name.")


def repo_of(ctx: click.Context) -> Path:
    """The repository ``mlctl -C DIR`` names (default: the current directory), resolved."""
    obj = ctx.find_root().obj or {}
    return Path(obj.get("repo", ".")).resolve()
