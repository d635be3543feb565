"""``mlctl runs list|show|compare``: the tracked training runs of an environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlctl.cli.options import ENV, repo_of

if TYPE_CHECKING:
    from mlctl.ml.tracking import RunStore


def _store(repo: Path, env: str) -> RunStore:
    from mlctl.ml.tracking import RunStore
    from mlctl.providers import runs_root
    from mlctl.workspace import open_workspace

    return RunStore(runs_root(open_workspace(repo, env).spec))


@click.group("runs")
def command() -> None:
    """Tracked training runs: params, metrics, data, artifacts."""


@command.command("list")
@ENV
@click.option("--model", help="Only runs of this model.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, env: str, model: str | None, as_json: bool) -> None:
    """Runs, newest first."""
    from mlctl.cli.output import echo_json

    records = _store(repo_of(ctx), env).list_runs(model)
    if as_json:
        echo_json([r.to_dict() for r in records])
        return
    click.echo(f"{'RUN':<30} {'MODEL':<22} {'STATUS':<9} {'AUC':>6} {'ACC':>6}  STARTED")
    for r in records:
        d = r.to_dict()
        m = d.get("metrics", {})
        click.echo(
            f"{d['run_id']:<30} {d['model']:<22} {d['status']:<9} {m.get('auc', float('nan')):>6.3f} "
            f"{m.get('accuracy', float('nan')):>6.3f}  {d.get('started_at', '')}"
        )


@command.command("show")
@ENV
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show_cmd(ctx: click.Context, env: str, run_id: str, as_json: bool) -> None:
    """One run (RUN_ID or a unique prefix)."""
    from mlctl.cli.output import echo_json

    record = _store(repo_of(ctx), env).get_run(run_id).to_dict()
    if as_json:
        echo_json(record)
        return
    for key in ("run_id", "model", "environment", "status", "started_at", "ended_at", "git_commit"):
        click.echo(f"{key + ':':<13} {record.get(key)}")
    for section in ("params", "metrics", "tags", "data"):
        click.echo(f"{section}:")
        for k, v in sorted((record.get(section) or {}).items()):
            click.echo(f"  {k}: {v}")
    click.echo("artifacts:")
    for a in record.get("artifacts", []):
        click.echo(f"  {a}")


@command.command("compare")
@ENV
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def compare_cmd(ctx: click.Context, env: str, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Params and metrics of several runs side by side."""
    from mlctl.cli.output import echo_json

    echo_json(_store(repo_of(ctx), env).compare(list(run_ids)))
