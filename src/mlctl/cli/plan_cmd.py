"""``mlctl plan``: plan one environment (or every changed one), render it, save it."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

import click

from mlctl.cli.options import complete_address, env_option, repo_of, use_color

if TYPE_CHECKING:
    from mlctl.gitops.changed import ChangedEnvironments
    from mlctl.operations.results import ChangedPlanResult, PlanResult
    from mlctl.workspace import Workspace


@click.command("plan")
@env_option(required=False, help="Environment name (or --changed).")
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
    shell_complete=complete_address,
    help="Plan only ADDR and its dependencies.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDR",
    shell_complete=complete_address,
    help="Force ADDR to be replaced (retrained).",
)
@click.option("--refresh/--no-refresh", default=True, help="Read data fingerprints and artifacts first.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="LABEL",
    help="A label of the pull request, for policies (repeat; default: $MLCTL_PR_LABELS, comma-separated).",
)
@click.option(
    "--maturity",
    "with_maturity",
    is_flag=True,
    help="Add the environment's maturity report (mlctl maturity) to text and markdown output.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.pass_context
def command(
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
    labels: tuple[str, ...],
    with_maturity: bool,
    fmt: str,
) -> None:
    """Show what apply would change.

    With ``--format markdown``, an error is also written to stdout as the pull-request comment
    body (marker, heading, mlctl's own one-line diagnostics), so CI posts those, never a log.
    With ``--format json``, stdout gets the diagnostics document instead
    (``{"format_version", "valid": false, "errored": true, ..., "diagnostics": [...]}``, see
    docs/plan-json.md), so stdout always parses as JSON. Either way the error boundary still
    prints the text lines on stderr and exits 1.
    """
    from mlctl.errors import MlctlError

    try:
        _plan(
            ctx,
            env,
            changed,
            base,
            evaluate,
            out,
            detailed_exitcode,
            targets,
            replace,
            refresh,
            fmt,
            labels,
            with_maturity,
        )
    except MlctlError as exc:
        if fmt == "markdown":
            click.echo(failure_comment(str(exc)), nl=False)
        elif fmt == "json":
            from mlctl.plan.diagnostics import diagnostics_of, render_diagnostics

            click.echo(render_diagnostics(diagnostics_of(exc), "json"), nl=False)
        raise


def failure_comment(error: str) -> str:
    """The plan comment's body when planning failed: the marker, a heading and ``error`` (the
    diagnostics mlctl prints, already redacted) in a code fence no line of it can close."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", error)), default=0))
    lines = [f"Error: {line}" for line in error.splitlines()] or ["Error: (no message)"]
    return (
        "<!-- mlctl-plan -->\n## mlctl plan failed\n\n"
        "Nothing was planned; fix the problem below and push again.\n\n"
        f"{fence}text\n" + "\n".join(lines) + f"\n{fence}\n"
    )


def _plan(
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
    labels: tuple[str, ...] = (),
    with_maturity: bool = False,
) -> None:
    from mlctl import operations
    from mlctl.errors import MlctlError
    from mlctl.operations.ci import pr_labels

    options = operations.PlanOptions(
        targets=targets, replace=replace, refresh=refresh, evaluate=evaluate, labels=pr_labels(labels)
    )
    if (changed or base) and ctx.get_parameter_source("env") is click.core.ParameterSource.ENVIRONMENT:
        env = None  # $MLCTL_ENV is a default for -e, not an -e: --changed plans every changed one
    if changed or base:
        if env is not None:
            raise MlctlError("-e and --changed exclude each other: --changed plans every changed environment")
        many = operations.plan_changed(
            repo_of(ctx), options, base=base, out=out, progress=_progress, found=_found
        )
        _render_changed(many, fmt, out)
        if many.errors:  # environments not planned before review: the job fails, a reviewer looks
            click.echo("\n".join(f"Error: {d}" for d in many.errors), err=True)
            sys.exit(1)
        has_changes = many.has_changes
    else:
        if env is None:
            raise MlctlError(
                "Missing option '-e' / '--env': plan needs an environment "
                "(or --changed for every changed one)"
            )
        from mlctl.workspace import open_workspace

        ws = open_workspace(repo_of(ctx), env)
        one = operations.plan(ws, options, out=out, progress=_progress)
        _render(one, fmt, env, out, ws if with_maturity else None)
        has_changes = one.has_changes
    if detailed_exitcode and has_changes:
        sys.exit(2)


def _progress(env: str, message: str) -> None:
    click.echo(f"[{env}] {message}", err=True)


def _found(found: ChangedEnvironments) -> None:
    click.echo(f"Changed since {found.base} ({found.merge_base[:12]}): {found.describe()}", err=True)
    for gone in found.removed:
        click.echo(
            f"Note: environments/{gone} was deleted; its state is left alone (nothing to plan)", err=True
        )


def _render(result: PlanResult, fmt: str, env: str, out: str | None, ws: Workspace | None = None) -> None:
    from mlctl.plan.render import RENDERERS

    report = None
    if ws is not None:
        from mlctl.operations.maturity import maturity

        report = maturity(ws)
    if fmt == "markdown":
        from mlctl.operations.maturity import markdown_lines
        from mlctl.plan.comment import Report, build_comment

        appendix = markdown_lines(report, heading="###", collapsed=True) if report is not None else []
        click.echo(build_comment(Report([result.plan], appendix=appendix))[0], nl=False)
    else:
        from mlctl.plan.render import render_text

        text = render_text(result.plan, color=use_color()) if fmt == "text" else RENDERERS[fmt](result.plan)
        click.echo(text, nl=False)
        if report is not None and fmt == "text":
            from mlctl.operations.maturity import render_text as maturity_text

            click.echo("\n" + maturity_text(report), nl=False)
    if out and fmt == "text":
        click.echo(
            f"\nSaved the plan to: {out}\nTo perform exactly these actions, run:\n"
            f"  mlctl apply -e {env} {out}"
        )


def _render_changed(result: ChangedPlanResult, fmt: str, out: str | None) -> None:
    from mlctl.plan.render import changed_json, render_text

    found, plans = result.changes, result.plans
    held = [str(d) for d in result.errors]
    if fmt == "markdown":
        from mlctl.plan.comment import Report, build_comment

        notes = [f"environments/{g} deleted" for g in found.removed]
        report = Report(plans, base=found.base, head=found.head, notes=notes, held=held)
        click.echo(build_comment(report)[0], nl=False)
    elif fmt == "json":
        click.echo(changed_json(found, plans, held), nl=False)
    else:
        for line in held:
            click.echo(click.style(line, fg="red", bold=True))
        if not plans and not held:
            click.echo("No environment changed. Nothing to plan.")
        for index, plan in enumerate(plans):
            if index:
                click.echo("")
            click.echo(click.style(f"=== environment {plan.environment} ===", bold=True))
            click.echo(render_text(plan, color=use_color()), nl=False)
        if out and plans:
            click.echo(
                f"\nSaved {len(plans)} plan(s) to {out}/ (apply one with: mlctl apply -e ENV {out}/ENV.json)"
            )
