"""``mlctl state list|show|pull`` and ``mlctl force-unlock``."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.cli.output import echo_json
from mlctl.engine.workspace import open_workspace
from mlctl.errors import NotFoundError
from mlctl.plan.resources import sort_key
from mlctl.state.document import State


def _state(repo: Path, env: str) -> State:
    ws = open_workspace(repo, env)
    state = ws.backend.read()
    if state is None:
        raise NotFoundError(
            f"no state yet for environment '{env}' ({ws.backend.describe()}); run mlctl apply"
        )
    return state


def list_(repo: Path, env: str) -> None:
    for address in sorted(_state(repo, env).resources, key=sort_key):
        click.echo(address)


def show(repo: Path, env: str, address: str) -> None:
    state = _state(repo, env)
    resource = state.resources.get(address)
    if resource is None:
        from difflib import get_close_matches

        close = get_close_matches(address, list(state.resources), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NotFoundError(f"no resource {address} in state{hint}")
    data = resource.model_dump(mode="json")
    data["address"] = address
    if resource.type in ("model", "model_version") and resource.name in state.models:
        data["registry"] = state.models[resource.name].model_dump(mode="json")
    echo_json(data)


def pull(repo: Path, env: str) -> None:
    click.echo(_state(repo, env).to_json(), nl=False)


def force_unlock(repo: Path, env: str, lock_id: str) -> None:
    ws = open_workspace(repo, env)
    ws.backend.force_unlock(lock_id)
    click.echo(f"Lock {lock_id} on {ws.backend.describe()} removed.")
