"""``mlctl force-unlock -e ENV LOCK_ID``: the operator's lever for a lock whose holder is gone."""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, repo_of


@click.command("force-unlock")
@ENV
@click.argument("lock_id")
@click.pass_context
def command(ctx: click.Context, env: str, lock_id: str) -> None:
    """Remove the environment's lock LOCK_ID left by a crashed run."""
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    ws.backend.force_unlock(lock_id)
    click.echo(f"Lock {lock_id} on {ws.backend.describe()} removed.")
