"""``mlctl maturity``: the environment's level on the guide's maturity model, with evidence."""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, repo_of


@click.command("maturity")
@ENV
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.pass_context
def command(ctx: click.Context, env: str, fmt: str) -> None:
    """Which maturity level (0 Manual ... 4 Self-Healing) the environment reaches: every
    checklist item, met or not, its evidence and the one change that would meet it."""
    from mlctl.operations.maturity import RENDERERS, maturity
    from mlctl.workspace import open_workspace

    report = maturity(open_workspace(repo_of(ctx), env))
    click.echo(RENDERERS[fmt](report), nl=False)
