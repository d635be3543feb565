"""``mlctl plan``: build a plan, render it, optionally save it."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.engine.reality import ProviderReality
from mlctl.engine.workspace import open_workspace
from mlctl.plan.planner import make_plan
from mlctl.plan.render import RENDERERS


def run(
    repo: Path,
    env: str,
    *,
    out: str | None,
    targets: list[str],
    replace: list[str],
    refresh: bool,
    fmt: str,
) -> int:
    """Print the plan; return 1 when it has changes (for --detailed-exitcode), else 0."""
    ws = open_workspace(repo, env)
    state = ws.backend.read()
    reality = ProviderReality(ws.spec) if refresh else None
    plan = make_plan(ws.spec, state, reality, targets=targets, replace=replace)
    click.echo(RENDERERS[fmt](plan), nl=False)
    if out:
        plan.save(Path(out))
        if fmt == "text":
            click.echo(
                f"\nSaved the plan to: {out}\nTo perform exactly these actions, run:\n"
                f"  mlctl apply -e {env} {out}"
            )
    return 1 if plan.has_changes else 0
