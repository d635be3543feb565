"""``mlctl apply``: plan (or load a saved plan), confirm, execute -- through
:func:`mlctl.operations.apply`, which holds the lock; this module renders."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, complete_address, repo_of, use_color

if TYPE_CHECKING:
    from mlctl.plan.model import Plan


def _confirm(env: str) -> None:
    from mlctl.errors import MlctlError

    if not sys.stdin.isatty():
        raise MlctlError(
            "apply needs confirmation but no terminal is attached: pass --auto-approve or a saved plan"
        )
    click.echo(f'Do you want to perform these actions in environment "{env}"?')
    click.echo("  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        raise MlctlError("apply cancelled")


@click.command("apply")
@ENV
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Skip the confirmation.")
@click.option("--target", "targets", multiple=True, metavar="ADDR", shell_complete=complete_address)
@click.option("--replace", "replace", multiple=True, metavar="ADDR", shell_complete=complete_address)
@click.option("--refresh/--no-refresh", default=True)
@LOCK_TIMEOUT
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="In CI (CI=true), apply even with uncommitted changes to environments/ or providers/.",
)
@click.option(
    "--allow-local-state",
    is_flag=True,
    help="In CI (CI=true), apply although the state is a local file, lost when the runner ends.",
)
@click.pass_context
def command(
    ctx: click.Context,
    env: str,
    planfile: str | None,
    auto_approve: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    refresh: bool,
    lock_timeout: float,
    allow_dirty: bool,
    allow_local_state: bool,
) -> None:
    """Make the environment match its configuration (or apply a saved PLANFILE)."""
    from mlctl import operations
    from mlctl.cli.output import Progress
    from mlctl.errors import ApplyError
    from mlctl.workspace import open_workspace

    def review(plan: Plan) -> None:
        from mlctl.plan.render import render_text

        click.echo(render_text(plan, color=use_color()), nl=False)
        if plan.has_changes:
            if not auto_approve:
                _confirm(env)
            click.echo("")

    ws = open_workspace(repo_of(ctx), env)
    options = operations.ApplyOptions(
        planfile=planfile,
        targets=targets,
        replace=replace,
        refresh=refresh,
        allow_dirty=allow_dirty,
        allow_local_state=allow_local_state,
        lock_timeout=lock_timeout,
    )
    result = operations.apply(ws, options, review=review, listener=Progress())
    if not result.plan.has_changes:
        if planfile:
            click.echo("No changes. The environment matches the configuration.")
        return
    trained = ", ".join(f"{m} v{v}" for m, v in result.trained)
    click.echo(
        f"\nApply {'complete' if result.ok else 'finished with errors'}! "
        f"{len(result.applied)} applied, {len(result.failed)} failed, {len(result.skipped)} skipped"
        + (f"; trained {trained}" if trained else "")
        + "."
    )
    if not result.ok:
        raise ApplyError("\n".join(str(d) for d in result.errors))
