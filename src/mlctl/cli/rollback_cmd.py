"""``mlctl rollback``: the incident lever."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.engine.rollback import rollback
from mlctl.engine.workspace import open_workspace
from mlctl.gitops.git import current_actor, git_info


def run(repo: Path, env: str, model: str, *, to: int | None, reason: str | None, write_back: bool) -> None:
    ws = open_workspace(repo, env)
    result = rollback(
        ws,
        model,
        to=to,
        reason=reason,
        actor=current_actor(),
        git=git_info(ws.repo),
        write_back=write_back,
    )
    click.echo(
        f"Rolled back {result.model} in {env}: production v{result.from_version} -> "
        f"v{result.to_version} (state serial {result.serial})."
    )
    for endpoint in result.endpoints:
        click.echo(f"  endpoint.{endpoint} now serves v{result.to_version}")
    if result.written:
        click.echo(
            f"  wrote production: {result.to_version} to {result.written.relative_to(ws.repo)}; "
            "commit it so git agrees"
        )
    elif not write_back:
        click.echo(
            f"  the YAML was left as it is; v{result.from_version} is marked rolled back and will not be "
            "promoted again unless pinned by number"
        )
