"""``mlctl rollout status|step|promote|abort ENDPOINT``: through :mod:`mlctl.operations.rollout`."""

from __future__ import annotations

from typing import Any

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, repo_of


@click.group("rollout")
def command() -> None:
    """Progressive delivery of an endpoint's candidate (canary, shadow, A/B)."""


def _workspace(ctx: click.Context, env: str) -> Any:
    from mlctl.workspace import open_workspace

    return open_workspace(repo_of(ctx), env)


def _render(result: Any, as_json: bool) -> None:
    if as_json:
        from mlctl.cli.output import echo_json

        record = result.record
        echo_json(
            {
                "environment": result.environment,
                "endpoint": result.endpoint,
                "model": result.model,
                "steps": result.steps,
                "verdict": result.verdict,
                "reason": result.reason,
                "statistics": result.statistics,
                "rollout": record.model_dump(mode="json") if record is not None else None,
                "written": str(result.written) if result.written else None,
            }
        )
        return
    record = result.record
    if record is None:
        click.echo(f"endpoint.{result.endpoint}: no rollout recorded")
    else:
        steps = ", ".join(f"{s:g}" for s in result.steps)
        click.echo(
            f"endpoint.{result.endpoint}: {record.strategy} of {record.candidate_stage} "
            f"v{record.candidate_version} next to v{record.stable_version}: {record.status}, "
            f"step {record.step + 1}/{len(result.steps)} [{steps}], candidate weight {record.weight:g}%"
        )
    if result.verdict:
        click.echo(f"  verdict: {result.verdict}: {result.reason}")
    elif result.reason:
        click.echo(f"  {result.reason}")
    for name, test in (result.statistics.get("tests") or {}).items():
        click.echo(
            f"  {name}: statistic {test['statistic']}, p {test['p_value']}, effect {test['effect']} "
            f"(tolerance {test['tolerance']}, Holm alpha {test['holm_alpha']})"
            + (" REJECTED" if test["rejected"] else "")
        )
    if result.written:
        click.echo(
            f"  wrote production: {record.candidate_version} to {result.written}; commit it so git agrees"
        )


JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@command.command("status")
@click.argument("endpoint")
@ENV
@JSON
@click.pass_context
def status_cmd(ctx: click.Context, endpoint: str, env: str, as_json: bool) -> None:
    """Show ENDPOINT's rollout and what the analysis would decide now."""
    from mlctl.operations import rollout

    _render(rollout.status(_workspace(ctx, env), endpoint), as_json)


@command.command("step")
@click.argument("endpoint")
@ENV
@LOCK_TIMEOUT
@JSON
@click.option("--no-write-back", is_flag=True, help="On promotion, do not rewrite the YAML pin.")
@click.pass_context
def step_cmd(
    ctx: click.Context, endpoint: str, env: str, lock_timeout: float, as_json: bool, no_write_back: bool
) -> None:
    """Start ENDPOINT's rollout, or analyze its step and advance, promote or abort it."""
    from mlctl.operations import rollout

    ws = _workspace(ctx, env)
    _render(rollout.step(ws, endpoint, write_back=not no_write_back, lock_timeout=lock_timeout), as_json)


@command.command("promote")
@click.argument("endpoint")
@ENV
@LOCK_TIMEOUT
@click.option("--reason", help="Why; recorded in state.")
@click.option("--no-write-back", is_flag=True, help="Do not rewrite the YAML pin.")
@click.pass_context
def promote_cmd(
    ctx: click.Context, endpoint: str, env: str, lock_timeout: float, reason: str | None, no_write_back: bool
) -> None:
    """Promote ENDPOINT's rollout candidate now."""
    from mlctl.operations import rollout

    ws = _workspace(ctx, env)
    result = rollout.promote(
        ws, endpoint, reason=reason, write_back=not no_write_back, lock_timeout=lock_timeout
    )
    _render(result, False)


@command.command("abort")
@click.argument("endpoint")
@ENV
@LOCK_TIMEOUT
@click.option("--reason", help="Why; recorded in state.")
@click.pass_context
def abort_cmd(ctx: click.Context, endpoint: str, env: str, lock_timeout: float, reason: str | None) -> None:
    """Abort ENDPOINT's rollout now: the candidate gets no traffic."""
    from mlctl.operations import rollout

    _render(rollout.abort(_workspace(ctx, env), endpoint, reason=reason, lock_timeout=lock_timeout), False)
