"""``mlctl validate [-e ENV]``: load every environment (or one) and report every problem."""

from __future__ import annotations

import click

from mlctl.cli.options import repo_of


@click.command("validate")
@click.option("-e", "--env", "env", metavar="ENV", help="Environment (default: all).")
@click.pass_context
def command(ctx: click.Context, env: str | None) -> None:
    """Check configuration: schema, references, paths, cron, estimators."""
    from mlctl.errors import ConfigError, MlctlError
    from mlctl.spec import list_environments, load_environment

    repo = repo_of(ctx)
    envs = [env] if env else list_environments(repo)
    if not envs:
        raise MlctlError(f"no environments found under {repo / 'environments'}")
    problems = []
    for name in envs:
        try:
            spec = load_environment(repo, name)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            continue
        c = spec.config
        click.echo(
            f"{name}: valid ({len(c.datasets)} datasets, {len(c.feature_views)} feature views, "
            f"{len(c.models)} models, {len(c.endpoints)} endpoints, {len(c.monitors)} monitors)"
        )
    if problems:
        raise ConfigError(problems)
