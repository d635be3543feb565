"""``mlctl plan``: build a plan (one environment, or every changed one), render it, save it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlctl.engine.reality import ProviderReality
from mlctl.errors import MlctlError
from mlctl.plan.model import Plan, check_writable
from mlctl.plan.planner import make_plan
from mlctl.plan.render import RENDERERS, plan_json
from mlctl.workspace import open_workspace


def _one(
    repo: Path,
    env: str,
    *,
    targets: list[str],
    replace: list[str],
    refresh: bool,
    evaluate: bool,
) -> Plan:
    ws = open_workspace(repo, env)
    state = ws.backend.read()
    reality = ProviderReality(ws.spec) if refresh else None
    plan = make_plan(ws.spec, state, reality, targets=targets, replace=replace)
    if evaluate and plan.has_changes:
        from mlctl.engine.candidates import evaluate_plan
        from mlctl.gitops.git import current_actor, git_info

        def progress(message: str) -> None:
            click.echo(f"[{env}] {message}", err=True)

        plan, _ = evaluate_plan(
            ws, plan, state, git=git_info(ws.repo), actor=current_actor(ws.repo), progress=progress
        )
    return plan


def run(
    repo: Path,
    env: str | None,
    *,
    out: str | None,
    targets: list[str],
    replace: list[str],
    refresh: bool,
    fmt: str,
    changed: bool = False,
    base: str | None = None,
    evaluate: bool = False,
) -> int:
    """Print the plan; return 1 when it has changes (for --detailed-exitcode), else 0."""
    if evaluate and not refresh:
        raise MlctlError("--evaluate needs the data fingerprints: drop --no-refresh")
    if changed or base:
        return _run_changed(
            repo,
            env,
            out=out,
            targets=targets,
            replace=replace,
            refresh=refresh,
            fmt=fmt,
            base=base,
            evaluate=evaluate,
        )
    if env is None:
        raise MlctlError(
            "Missing option '-e' / '--env': plan needs an environment (or --changed for every changed one)"
        )
    if out:
        check_writable(Path(out))
    plan = _one(repo, env, targets=targets, replace=replace, refresh=refresh, evaluate=evaluate)
    if fmt == "markdown":
        from mlctl.plan.comment import Report, build_comment

        click.echo(build_comment(Report([plan]))[0], nl=False)
    else:
        click.echo(RENDERERS[fmt](plan), nl=False)
    if out:
        plan.save(Path(out))
        if fmt == "text":
            click.echo(
                f"\nSaved the plan to: {out}\nTo perform exactly these actions, run:\n"
                f"  mlctl apply -e {env} {out}"
            )
    return 1 if plan.has_changes else 0


def _run_changed(
    repo: Path,
    env: str | None,
    *,
    out: str | None,
    targets: list[str],
    replace: list[str],
    refresh: bool,
    fmt: str,
    base: str | None,
    evaluate: bool,
) -> int:
    from mlctl.gitops.changed import changed_environments

    if env is not None:
        raise MlctlError("-e and --changed exclude each other: --changed plans every changed environment")
    if targets or replace:
        raise MlctlError("--target/--replace name addresses of one environment: use -e ENV, not --changed")
    found = changed_environments(repo, base)
    click.echo(f"Changed since {found.base} ({found.merge_base[:12]}): {found.describe()}", err=True)
    for gone in found.removed:
        click.echo(
            f"Note: environments/{gone} was deleted; its state is left alone (nothing to plan)", err=True
        )
    plans = [
        _one(repo, name, targets=[], replace=[], refresh=refresh, evaluate=evaluate)
        for name in found.environments
    ]
    if out:
        folder = Path(out)
        if folder.is_file():
            raise MlctlError(
                f"--out {out}: with --changed it names a directory (one ENV.json per environment)"
            )
        folder.mkdir(parents=True, exist_ok=True)
        for plan in plans:
            plan.save(folder / f"{plan.environment}.json")
    if fmt == "markdown":
        from mlctl.plan.comment import Report, build_comment

        notes = [f"environments/{g} deleted" for g in found.removed]
        report = Report(plans, base=found.base, head=found.head, notes=notes)
        click.echo(build_comment(report)[0], nl=False)
    elif fmt == "json":
        document: dict[str, Any] = {
            "format_version": "1.0",
            "base": found.base,
            "merge_base": found.merge_base,
            "head": found.head,
            "changed_files": found.files,
            "removed_environments": found.removed,
            "environments": [plan_json(p) for p in plans],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        if not plans:
            click.echo("No environment changed. Nothing to plan.")
        for index, plan in enumerate(plans):
            if index:
                click.echo("")
            click.echo(click.style(f"=== environment {plan.environment} ===", bold=True))
            click.echo(RENDERERS["text"](plan), nl=False)
        if out and plans:
            click.echo(
                f"\nSaved {len(plans)} plan(s) to {out}/ (apply one with: mlctl apply -e ENV {out}/ENV.json)"
            )
    return 1 if any(p.has_changes for p in plans) else 0
