"""``mlctl models list|versions|history``: the registry and its stage timeline, from state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlctl.cli.options import ENV, repo_of

if TYPE_CHECKING:
    from mlctl.state.document import ModelRegistry, ModelVersion, State


def _version(v: ModelVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "status": v.status,
        "stage": v.stage,
        "metrics": v.metrics,
        "failed_gates": v.failed_gates,
        "artifact": {"uri": v.artifact.uri, "sha256": v.artifact.sha256} if v.artifact else None,
        "run_id": v.run_id,
        "created_at": v.created_at,
        "git_commit": v.git_commit,
        "rolled_back": v.rolled_back.model_dump() if v.rolled_back else None,
    }


def _entry(name: str, registry: ModelRegistry | None) -> dict[str, Any]:
    from mlctl.state.document import ModelRegistry

    registry = registry or ModelRegistry()
    return {
        "name": name,
        "stages": {
            "staging": registry.stages.get("staging"),
            "production": registry.stages.get("production"),
        },
        "versions": [_version(v) for v in registry.versions],
    }


def _load(repo: Path, env: str) -> tuple[State, list[str]]:
    from mlctl.state.document import State
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)
    state = ws.backend.read() or State(environment=env)
    names = sorted(set(ws.spec.config.models) | set(state.models))
    return state, names


@click.group("models")
def command() -> None:
    """The model registry: models, versions, stages."""


@command.command("list")
@ENV
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, env: str, as_json: bool) -> None:
    """Models with their stage holders and versions."""
    from mlctl.cli.output import echo_json

    state, names = _load(repo_of(ctx), env)
    entries = [_entry(n, state.models.get(n)) for n in names]
    if as_json:
        echo_json(entries)
        return
    click.echo(f"{'MODEL':<28} {'STAGING':>8} {'PRODUCTION':>10} {'VERSIONS':>8}")
    for e in entries:
        staging = f"v{e['stages']['staging']}" if e["stages"]["staging"] else "-"
        production = f"v{e['stages']['production']}" if e["stages"]["production"] else "-"
        click.echo(f"{e['name']:<28} {staging:>8} {production:>10} {len(e['versions']):>8}")


@command.command("versions")
@click.argument("model")
@ENV
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def versions_cmd(ctx: click.Context, model: str, env: str, as_json: bool) -> None:
    """Every version of MODEL with status, stage, metrics and artifact."""
    from mlctl.cli.output import echo_json
    from mlctl.errors import NotFoundError

    state, names = _load(repo_of(ctx), env)
    if model not in names:
        raise NotFoundError(f"model '{model}' not found in environment '{env}' (known: {', '.join(names)})")
    entry = _entry(model, state.models.get(model))
    if as_json:
        echo_json(entry["versions"])
        return
    click.echo(f"{'VERSION':>7}  {'STATUS':<9} {'STAGE':<11} {'AUC':>6} {'ACC':>6} {'P95 MS':>7}  CREATED")
    for v in entry["versions"]:
        m = v["metrics"]
        mark = " (rolled back)" if v["rolled_back"] else ""
        click.echo(
            f"{'v' + str(v['version']):>7}  {v['status']:<9} {v['stage']:<11} "
            f"{m.get('auc', float('nan')):>6.3f} {m.get('accuracy', float('nan')):>6.3f} "
            f"{m.get('latency_p95_ms', float('nan')):>7.2f}  {v['created_at']}{mark}"
        )


@command.command("history")
@click.argument("model")
@ENV
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Which version served each stage at TIME (ISO-8601, e.g. 2026-01-31T12:00:00Z).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, model: str, env: str, at: str | None, as_json: bool) -> None:
    """Every stage move of MODEL (when, who, why, commit, from -> to), or with --at the stage
    holders at one instant."""
    from mlctl.cli.output import echo_json
    from mlctl.errors import NotFoundError
    from mlctl.state.document import ModelRegistry
    from mlctl.state.history import holders_at, parse_instant, timeline

    instant = parse_instant(at) if at is not None else None  # a bad --at fails before reading
    state, names = _load(repo_of(ctx), env)
    if model not in names:
        raise NotFoundError(f"model '{model}' not found in environment '{env}' (known: {', '.join(names)})")
    registry = state.models.get(model) or ModelRegistry()
    if instant is not None:
        held = holders_at(registry, instant)
        when = instant.isoformat().replace("+00:00", "Z")
        if as_json:
            echo_json({"model": model, "environment": env, "at": when, "stages": held})
            return
        click.echo(f"{model} in {env} at {when}:")
        for stage, version in held.items():
            click.echo(f"  {stage:<11} {'v' + str(version) if version is not None else '-'}")
        return
    moves = timeline(registry)
    if as_json:
        echo_json([m.to_dict() for m in moves])
        return
    if not moves:
        click.echo(f"No stage moves recorded for {model} in {env}.")
        return
    click.echo(f"{'TIME':<21} {'STAGE':<11} {'ACTION':<9} {'MOVE':<11} {'BY':<16} {'COMMIT':<12} REASON")
    for m in moves:
        move = f"{_v(m.from_version)} -> {_v(m.to_version)}"
        click.echo(
            f"{m.time:<21} {m.stage:<11} {m.action:<9} {move:<11} {m.actor or '-':<16} "
            f"{(m.commit or '-')[:12]:<12} {m.reason or ''}".rstrip()
        )


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "-"
