"""``mlctl models list|versions``: the registry, from state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlctl.cli.output import echo_json
from mlctl.errors import NotFoundError
from mlctl.state.document import ModelRegistry, ModelVersion, State
from mlctl.workspace import open_workspace


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


def _entry(name: str, registry: ModelRegistry) -> dict[str, Any]:
    return {
        "name": name,
        "stages": {
            "staging": registry.stages.get("staging"),
            "production": registry.stages.get("production"),
        },
        "versions": [_version(v) for v in registry.versions],
    }


def _load(repo: Path, env: str) -> tuple[State, list[str]]:
    ws = open_workspace(repo, env)
    state = ws.backend.read() or State(environment=env)
    names = sorted(set(ws.spec.config.models) | set(state.models))
    return state, names


def list_(repo: Path, env: str, as_json: bool) -> None:
    state, names = _load(repo, env)
    entries = [_entry(n, state.models.get(n) or ModelRegistry()) for n in names]
    if as_json:
        echo_json(entries)
        return
    click.echo(f"{'MODEL':<28} {'STAGING':>8} {'PRODUCTION':>10} {'VERSIONS':>8}")
    for e in entries:
        staging = f"v{e['stages']['staging']}" if e["stages"]["staging"] else "-"
        production = f"v{e['stages']['production']}" if e["stages"]["production"] else "-"
        click.echo(f"{e['name']:<28} {staging:>8} {production:>10} {len(e['versions']):>8}")


def versions(repo: Path, env: str, model: str, as_json: bool) -> None:
    state, names = _load(repo, env)
    if model not in names:
        raise NotFoundError(f"model '{model}' not found in environment '{env}' (known: {', '.join(names)})")
    entry = _entry(model, state.models.get(model) or ModelRegistry())
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
