"""``mlctl``: command declarations. Bodies call into ``mlctl.cli.<command>`` lazily."""

from __future__ import annotations

import os
import sys

# mlctl uses no pydantic plugins; without this, pydantic scans the entry points of every
# installed distribution on first use (tens of ms on every command). A user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from pathlib import Path
from typing import Any

import click

from mlctl import __version__
from mlctl.cli.boundary import error_boundary

ENV = click.option("-e", "--env", "env", required=True, metavar="ENV", help="Environment name.")


# Commands that live in their own module (``mlctl.cli.<module>`` exporting ``command``),
# loaded only when named or when help lists them. A module not present yet is skipped.
LAZY_COMMANDS: dict[str, str] = {
    "features": "mlctl.cli.features_cmd",
    "serve": "mlctl.cli.serve_cmd",
    "monitor": "mlctl.cli.monitor_cmd",
    "render": "mlctl.cli.render_cmd",
    "init-backend": "mlctl.cli.backend_cmd",
    "train-job": "mlctl.cli.train_cmd",
}


class MlctlGroup(click.Group):
    """The root group: every invocation runs inside the single error boundary, and the
    commands in :data:`LAZY_COMMANDS` are imported only when used (keeps ``--help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        import importlib.util

        lazy = [name for name, module in LAZY_COMMANDS.items() if importlib.util.find_spec(module)]
        return sorted({*super().list_commands(ctx), *lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        import importlib
        import importlib.util

        if importlib.util.find_spec(LAZY_COMMANDS[cmd_name]) is None:
            return None
        found: click.Command = importlib.import_module(LAZY_COMMANDS[cmd_name]).command
        return found

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        with error_boundary():
            code = super().main(args=args, prog_name=prog_name or "mlctl", standalone_mode=False, **extra)
            if isinstance(code, int) and code:
                sys.exit(code)
        return None


def _repo(ctx: click.Context) -> Path:
    return Path(ctx.obj["repo"]).resolve()


@click.group(
    cls=MlctlGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="mlctl")
@click.option(
    "-C",
    "--chdir",
    "repo",
    default=".",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Repository to work in (default: the current directory).",
)
@click.pass_context
def cli(ctx: click.Context, repo: str) -> None:
    """Declare ML systems in git; plan, apply and roll back like infrastructure."""
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--no-data", is_flag=True, help="Skip generating the example data.")
@click.option("--customers", default=20000, show_default=True, help="Customers in the example data.")
def init(directory: str, no_data: bool, customers: int) -> None:
    """Write a complete working repository (the churn example) into DIRECTORY."""
    from mlctl.cli import init_cmd

    init_cmd.run(Path(directory), generate_data=not no_data, customers=customers)


@cli.command()
@click.option("-e", "--env", "env", metavar="ENV", help="Environment (default: all).")
@click.pass_context
def validate(ctx: click.Context, env: str | None) -> None:
    """Check configuration: schema, references, paths, cron, estimators."""
    from mlctl.cli import validate_cmd

    validate_cmd.run(_repo(ctx), env)


@cli.command()
@click.option("--provider", is_flag=True, help="Print the schema of providers/<name>.yaml instead.")
def schema(provider: bool) -> None:
    """Print the JSON Schema of an environment's merged YAML."""
    from mlctl.cli import validate_cmd

    validate_cmd.schema(provider)


@cli.command()
@click.option("-e", "--env", "env", metavar="ENV", help="Environment name (or --changed).")
@click.option(
    "--changed",
    is_flag=True,
    help="Plan every environment whose files changed since the merge base with --base.",
)
@click.option(
    "--base",
    metavar="REF",
    help="Base of --changed (default: origin/$GITHUB_BASE_REF, else origin/main or main).",
)
@click.option(
    "--evaluate",
    is_flag=True,
    help="Train each candidate now (no state change) and show its metrics next to production's.",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Save the plan to FILE for apply (with --changed: a directory, one ENV.json per environment).",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0: no changes, 1: error, 2: changes.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    help="Plan only ADDR and its dependencies.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDR",
    help="Force ADDR to be replaced (retrained).",
)
@click.option("--refresh/--no-refresh", default=True, help="Read data fingerprints and artifacts first.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.pass_context
def plan(
    ctx: click.Context,
    env: str | None,
    changed: bool,
    base: str | None,
    evaluate: bool,
    out: str | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    refresh: bool,
    fmt: str,
) -> None:
    """Show what apply would change."""
    from mlctl.cli import plan_cmd

    code = plan_cmd.run(
        _repo(ctx),
        env,
        out=out,
        targets=list(targets),
        replace=list(replace),
        refresh=refresh,
        fmt=fmt,
        changed=changed,
        base=base,
        evaluate=evaluate,
    )
    if detailed_exitcode and code:
        sys.exit(2)


@cli.command()
@ENV
@click.argument("planfile", required=False, type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Skip the confirmation.")
@click.option("--target", "targets", multiple=True, metavar="ADDR")
@click.option("--replace", "replace", multiple=True, metavar="ADDR")
@click.option("--refresh/--no-refresh", default=True)
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="In CI (CI=true), apply even with uncommitted changes to environments/ or providers/.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    env: str,
    planfile: str | None,
    auto_approve: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    refresh: bool,
    allow_dirty: bool,
) -> None:
    """Make the environment match its configuration (or apply a saved PLANFILE)."""
    from mlctl.cli import apply_cmd

    apply_cmd.run(
        _repo(ctx),
        env,
        planfile=planfile,
        auto_approve=auto_approve,
        targets=list(targets),
        replace=list(replace),
        refresh=refresh,
        allow_dirty=allow_dirty,
    )


@cli.command()
@click.argument("model")
@ENV
@click.option("--to", "to", type=int, metavar="VERSION", help="Version to restore (default: previous).")
@click.option("--reason", help="Why; recorded in state and the history.")
@click.option("--no-write-back", is_flag=True, help="Do not rewrite the environment's YAML pin.")
@click.option("--commit", "commit", is_flag=True, help="Commit the rewritten pin (names who, why).")
@click.option("--branch", metavar="NAME", help="Make the --commit on branch NAME (created if missing).")
@click.pass_context
def rollback(
    ctx: click.Context,
    model: str,
    env: str,
    to: int | None,
    reason: str | None,
    no_write_back: bool,
    commit: bool,
    branch: str | None,
) -> None:
    """Put MODEL's previous production version back in production, now."""
    from mlctl.cli import rollback_cmd

    rollback_cmd.run(
        _repo(ctx),
        env,
        model,
        to=to,
        reason=reason,
        write_back=not no_write_back,
        commit=commit,
        branch=branch,
    )


@cli.command("force-unlock")
@ENV
@click.argument("lock_id")
@click.pass_context
def force_unlock(ctx: click.Context, env: str, lock_id: str) -> None:
    """Remove the environment's lock LOCK_ID left by a crashed run."""
    from mlctl.cli import state_cmd

    state_cmd.force_unlock(_repo(ctx), env, lock_id)


@cli.group()
def state() -> None:
    """Inspect the state (list, show, pull, history)."""


@state.command("list")
@ENV
@click.pass_context
def state_list(ctx: click.Context, env: str) -> None:
    """List the addresses in state."""
    from mlctl.cli import state_cmd

    state_cmd.list_(_repo(ctx), env)


@state.command("show")
@ENV
@click.argument("address")
@click.pass_context
def state_show(ctx: click.Context, env: str, address: str) -> None:
    """Show one resource (JSON)."""
    from mlctl.cli import state_cmd

    state_cmd.show(_repo(ctx), env, address)


@state.command("pull")
@ENV
@click.option("--version", "version", metavar="ID", help="A stored snapshot (see `state history`).")
@click.pass_context
def state_pull(ctx: click.Context, env: str, version: str | None) -> None:
    """Print the whole state document (or one stored snapshot of it)."""
    from mlctl.cli import state_cmd

    state_cmd.pull(_repo(ctx), env, version=version)


@state.command("history")
@ENV
@click.option("--limit", default=20, show_default=True, help="Newest snapshots to list.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def state_history(ctx: click.Context, env: str, limit: int, as_json: bool) -> None:
    """List stored snapshots of the state (S3 backend with a versioned bucket)."""
    from mlctl.cli import state_cmd

    state_cmd.history(_repo(ctx), env, limit=limit, as_json=as_json)


@cli.group()
def models() -> None:
    """The model registry: models, versions, stages."""


@models.command("list")
@ENV
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_list(ctx: click.Context, env: str, as_json: bool) -> None:
    """Models with their stage holders and versions."""
    from mlctl.cli import models_cmd

    models_cmd.list_(_repo(ctx), env, as_json)


@models.command("versions")
@click.argument("model")
@ENV
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_versions(ctx: click.Context, model: str, env: str, as_json: bool) -> None:
    """Every version of MODEL with status, stage, metrics and artifact."""
    from mlctl.cli import models_cmd

    models_cmd.versions(_repo(ctx), env, model, as_json)


@cli.group()
def runs() -> None:
    """Tracked training runs: params, metrics, data, artifacts."""


@runs.command("list")
@ENV
@click.option("--model", help="Only runs of this model.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs_list(ctx: click.Context, env: str, model: str | None, as_json: bool) -> None:
    """Runs, newest first."""
    from mlctl.cli import runs_cmd

    runs_cmd.list_(_repo(ctx), env, model, as_json)


@runs.command("show")
@ENV
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs_show(ctx: click.Context, env: str, run_id: str, as_json: bool) -> None:
    """One run (RUN_ID or a unique prefix)."""
    from mlctl.cli import runs_cmd

    runs_cmd.show(_repo(ctx), env, run_id, as_json)


@runs.command("compare")
@ENV
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs_compare(ctx: click.Context, env: str, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Params and metrics of several runs side by side."""
    from mlctl.cli import runs_cmd

    runs_cmd.compare(_repo(ctx), env, list(run_ids), as_json)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point (``mlctl``)."""
    return cli.main(args=argv, prog_name="mlctl")


if __name__ == "__main__":
    main()
