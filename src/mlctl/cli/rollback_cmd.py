"""``mlctl rollback``: the incident lever, through :func:`mlctl.operations.rollback`."""

from __future__ import annotations

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, complete_model, repo_of


@click.command("rollback")
@click.argument("model", shell_complete=complete_model)
@ENV
@LOCK_TIMEOUT
@click.option("--to", "to", type=int, metavar="VERSION", help="Version to restore (default: previous).")
@click.option("--reason", help="Why; recorded in state and the history.")
@click.option("--no-write-back", is_flag=True, help="Do not rewrite the environment's YAML pin.")
@click.option("--commit", "commit", is_flag=True, help="Commit the rewritten pin (names who, why).")
@click.option("--branch", metavar="NAME", help="Make the --commit on branch NAME (created if missing).")
@click.option(
    "--allow-local-state",
    is_flag=True,
    help="In CI (CI=true), roll back although the state is a local file, lost when the runner ends.",
)
@click.pass_context
def command(
    ctx: click.Context,
    model: str,
    env: str,
    to: int | None,
    reason: str | None,
    no_write_back: bool,
    commit: bool,
    branch: str | None,
    allow_local_state: bool,
    lock_timeout: float,
) -> None:
    """Put MODEL's previous production version back in production, now."""
    from mlctl import operations
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    options = operations.RollbackOptions(
        to=to,
        reason=reason,
        write_back=not no_write_back,
        commit=commit,
        branch=branch,
        allow_local_state=allow_local_state,
        lock_timeout=lock_timeout,
    )
    result = operations.rollback(ws, model, options)
    click.echo(
        f"Rolled back {result.model} in {env}: production v{result.from_version} -> "
        f"v{result.to_version} (state serial {result.serial})."
    )
    for endpoint in result.endpoints:
        click.echo(f"  endpoint.{endpoint} now serves v{result.to_version}")
    if result.mirror:
        click.echo(f"  mlflow: {result.mirror}")
    if result.written and result.commit:
        where = f" on branch {result.branch}" if result.branch else ""
        click.echo(
            f"  committed production: {result.to_version} in {result.written.relative_to(ws.repo)}"
            f"{where} ({result.commit[:12]}); push it so the remote agrees"
        )
    elif result.written:
        click.echo(
            f"  wrote production: {result.to_version} to {result.written.relative_to(ws.repo)}; "
            "commit it so git agrees (or pass --commit)"
        )
    elif commit or branch is not None:
        click.echo("  nothing to commit: the YAML already pins this version")
    elif no_write_back:
        click.echo(
            f"  the YAML was left as it is; v{result.from_version} is marked rolled back and will not be "
            "promoted again unless pinned by number"
        )
