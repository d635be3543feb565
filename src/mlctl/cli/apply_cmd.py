"""``mlctl apply``: plan (or load a saved plan), confirm, execute under the lock."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mlctl.cli.output import Progress
from mlctl.engine.apply import Executor
from mlctl.engine.reality import ProviderReality
from mlctl.errors import ApplyError, MlctlError
from mlctl.gitops.git import current_actor, git_info
from mlctl.plan.model import Plan
from mlctl.plan.planner import make_plan
from mlctl.plan.render import render_text
from mlctl.state.backend import locked
from mlctl.state.document import State
from mlctl.workspace import open_workspace


def _confirm(env: str) -> None:
    if not sys.stdin.isatty():
        raise MlctlError(
            "apply needs confirmation but no terminal is attached: pass --auto-approve or a saved plan"
        )
    click.echo(f'Do you want to perform these actions in environment "{env}"?')
    click.echo("  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        raise MlctlError("apply cancelled")


def run(
    repo: Path,
    env: str,
    *,
    planfile: str | None,
    auto_approve: bool,
    targets: list[str],
    replace: list[str],
    refresh: bool,
    allow_dirty: bool = False,
) -> None:
    ws = open_workspace(repo, env)
    git = git_info(ws.repo)
    if git.dirty and not allow_dirty and os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        raise MlctlError(
            "refusing to apply in CI from a dirty tree: environments/ or providers/ have uncommitted "
            "changes, so the recorded commit would not reproduce what is applied (commit them, or "
            "pass --allow-dirty)"
        )
    actor = current_actor()
    with locked(ws.backend, "apply", env):
        state = ws.backend.read()
        reality = ProviderReality(ws.spec)
        if planfile:
            if targets or replace:
                raise MlctlError("--target/--replace belong to the plan; they cannot change a saved plan")
            plan = Plan.load(Path(planfile))
            if plan.environment != env:
                raise MlctlError(f"{planfile} is a plan for environment '{plan.environment}', not '{env}'")
            data = {
                name: reality.dataset_fingerprint(name, ws.spec.config.datasets[name])
                for name in plan.data
                if name in ws.spec.config.datasets
            }
            plan.check_fresh(
                lineage=state.lineage if state else None,
                serial=state.serial if state else 0,
                spec_digest=ws.spec.digest,
                data=data,
            )
        else:
            plan = make_plan(ws.spec, state, reality if refresh else None, targets=targets, replace=replace)
            click.echo(render_text(plan), nl=False)
            if not plan.has_changes:
                return
            if not auto_approve:
                _confirm(env)
            click.echo("")
        if not plan.has_changes:
            click.echo("No changes. The environment matches the configuration.")
            return
        executor = Executor(ws, state or State(environment=env), git=git, actor=actor, listener=Progress())
        result = executor.apply(plan)
    trained = ", ".join(f"{m} v{v}" for m, v in result.trained)
    click.echo(
        f"\nApply {'complete' if not result.errors else 'finished with errors'}! "
        f"{len(result.applied)} applied, {len(result.errors)} failed, {len(result.skipped)} skipped"
        + (f"; trained {trained}" if trained else "")
        + "."
    )
    if result.errors:
        raise ApplyError("\n".join(result.errors))
