"""``mlctl state list|show|pull|history`` and ``mlctl force-unlock``."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.cli.output import echo_json
from mlctl.errors import MlctlError, NotFoundError
from mlctl.plan.resources import sort_key
from mlctl.state.document import State
from mlctl.workspace import open_workspace


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


def pull(repo: Path, env: str, version: str | None = None) -> None:
    if version is None:
        click.echo(_state(repo, env).to_json(), nl=False)
        return
    ws = open_workspace(repo, env)
    read_version = getattr(ws.backend, "read_version", None)
    if read_version is None:
        raise MlctlError(
            f"{ws.backend.describe()} keeps no versions; --version needs an s3 backend "
            "(a versioned bucket keeps every snapshot)"
        )
    click.echo(read_version(version).to_json(), nl=False)


def history(repo: Path, env: str, *, limit: int, as_json: bool) -> None:
    ws = open_workspace(repo, env)
    list_versions = getattr(ws.backend, "history", None)
    if list_versions is None:
        raise MlctlError(
            f"{ws.backend.describe()} keeps no history (only its .backup of the previous "
            "command); use an s3 backend on a versioned bucket"
        )
    versions = list_versions(limit=limit)
    if as_json:
        echo_json([v.to_dict() for v in versions])
        return
    if not versions:
        click.echo(f"No state stored yet in {ws.backend.describe()}.")
        return
    click.echo(f"{'VERSION ID':<36}  {'SERIAL':>6}  {'LAST MODIFIED':<25}  {'SIZE':>8}")
    for v in versions:
        serial = "?" if v.serial is None else str(v.serial)
        mark = "  (current)" if v.latest else ""
        click.echo(f"{v.version_id:<36}  {serial:>6}  {v.last_modified:<25}  {v.size:>8}{mark}")
    if len(versions) == 1 and versions[0].version_id == "null":
        click.echo(
            "Bucket versioning is off: only the current state is kept "
            "(aws s3api put-bucket-versioning --versioning-configuration Status=Enabled)."
        )


def force_unlock(repo: Path, env: str, lock_id: str) -> None:
    ws = open_workspace(repo, env)
    ws.backend.force_unlock(lock_id)
    click.echo(f"Lock {lock_id} on {ws.backend.describe()} removed.")
