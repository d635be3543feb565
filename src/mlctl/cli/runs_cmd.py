"""``mlctl runs list|show|compare``: the tracked training runs of an environment."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.cli.output import echo_json
from mlctl.providers import local_root
from mlctl.workspace import open_workspace


def _store(repo: Path, env: str):  # type: ignore[no-untyped-def]
    from mlctl.ml.tracking import RunStore

    ws = open_workspace(repo, env)
    return RunStore(ws.repo / local_root(ws.spec) / "runs" / env)


def list_(repo: Path, env: str, model: str | None, as_json: bool) -> None:
    records = _store(repo, env).list_runs(model)
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


def show(repo: Path, env: str, run_id: str, as_json: bool) -> None:
    record = _store(repo, env).get_run(run_id).to_dict()
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


def compare(repo: Path, env: str, run_ids: list[str], as_json: bool) -> None:
    result = _store(repo, env).compare(run_ids)
    if as_json:
        echo_json(result)
        return
    echo_json(result)
