"""``mlctl import -e ENV model_version.NAME SOURCE``: adopt an MLflow model version into state."""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, complete_address, repo_of


@click.command("import")
@ENV
@click.argument("address", shell_complete=complete_address)
@click.argument("source")
@LOCK_TIMEOUT
@click.pass_context
def command(ctx: click.Context, env: str, address: str, source: str, lock_timeout: float) -> None:
    """Adopt an existing MLflow model version into the state without retraining.

    ADDRESS is model_version.NAME; SOURCE is models:/NAME/VERSION, models:/NAME@ALIAS or a
    version number of the registered model NAME in the environment's MLflow provider
    (providers.tracking). The artifact's sha256 is recorded; pin the new version in
    stages to serve it.
    """
    from mlctl.operations.importing import import_version
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    result = import_version(ws, address, source, lock_timeout=lock_timeout)
    verdict = (
        "passed its gates" if result.status == "passed" else f"rejected by {', '.join(result.failed_gates)}"
    )
    click.echo(
        f"Imported {result.source} into {result.environment} as {result.model} v{result.version} "
        f"({verdict}; state serial {result.serial})."
    )
    click.echo(f"  artifact {result.uri} sha256 {result.sha256}")
    click.echo(f"  serve it: set stages.production: {result.version} for {result.model}, then plan and apply")
