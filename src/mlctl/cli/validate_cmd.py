"""``mlctl validate [-e ENV] [--format text|json]``: load every environment (or one) and report
every problem.

Text prints one ``ENV: valid (...)`` line per valid environment; the problems go to stderr
through the error boundary (one ``Error:`` line each, exit 1). ``--format json`` prints the
diagnostics document of :func:`mlctl.plan.diagnostics.render_diagnostics` on stdout instead
(``valid: true`` and no diagnostics when every environment loads), and on failure still exits
1 with the text lines on stderr, like ``plan --format json``.
"""

from __future__ import annotations

import click

from mlctl.cli.options import repo_of


@click.command("validate")
@click.option("-e", "--env", "env", metavar="ENV", help="Environment (default: all).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="json: the diagnostics document on stdout (docs/plan-json.md).",
)
@click.pass_context
def command(ctx: click.Context, env: str | None, fmt: str) -> None:
    """Check configuration: schema, references, paths, cron, estimators."""
    from mlctl.errors import MlctlError

    try:
        _validate(ctx, env, fmt)
    except MlctlError as exc:
        if fmt == "json":
            from mlctl.plan.diagnostics import diagnostics_of, render_diagnostics

            click.echo(render_diagnostics(diagnostics_of(exc), "json"), nl=False)
        raise


def _validate(ctx: click.Context, env: str | None, fmt: str) -> None:
    from mlctl.errors import ConfigError, Diagnostic, MlctlError
    from mlctl.spec import list_environments, load_environment

    repo = repo_of(ctx)
    envs = [env] if env else list_environments(repo)
    if not envs:
        raise MlctlError(f"no environments found under {repo / 'environments'}")
    problems: list[Diagnostic] = []
    for name in envs:
        try:
            spec = load_environment(repo, name)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            continue
        c = spec.config
        if fmt == "text":
            click.echo(
                f"{name}: valid ({len(c.datasets)} datasets, {len(c.feature_views)} feature views, "
                f"{len(c.models)} models, {len(c.endpoints)} endpoints, {len(c.monitors)} monitors)"
            )
    if problems:
        raise ConfigError(problems)
    if fmt == "json":
        from mlctl.plan.diagnostics import render_diagnostics

        click.echo(render_diagnostics([], "json"), nl=False)
