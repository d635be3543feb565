"""``mlctl init-backend -e ENV``: move an environment's state to the backend now configured,
through :func:`mlctl.operations.migrate_state` (its docstring holds the workflow)."""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, repo_of


@click.command("init-backend")
@ENV
@LOCK_TIMEOUT
@click.option(
    "--from",
    "source",
    metavar="SOURCE",
    help="Previous backend: a local state file (default state/ENV.json) or s3://bucket/key.",
)
@click.pass_context
def command(ctx: click.Context, env: str, source: str | None, lock_timeout: float) -> None:
    """Migrate ENV's state to the backend environment.yaml now declares, keeping lineage."""
    from mlctl import operations
    from mlctl.workspace import open_workspace

    result = operations.migrate_state(open_workspace(repo_of(ctx), env), source, lock_timeout=lock_timeout)
    if not result.migrated:
        click.echo(
            f"{result.target} already holds this state (lineage {result.lineage}, "
            f"serial {result.serial}); nothing to do."
        )
        return
    notes = "".join(f" {d.summary}" for d in result.warnings)
    click.echo(
        f"Migrated state of '{env}' (lineage {result.lineage}, serial {result.serial}) from "
        f"{result.source} to {result.target}. The old copy is left in place; remove it "
        f"once everyone uses the new backend.{notes}"
    )
