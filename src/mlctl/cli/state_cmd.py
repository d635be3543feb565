"""``mlctl state list|show|pull|history``: read the state of an environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlctl.cli.options import ENV, repo_of

if TYPE_CHECKING:
    from mlctl.state.document import State


def _state(repo: Path, env: str) -> State:
    from mlctl.errors import NotFoundError
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)
    state = ws.backend.read()
    if state is None:
        raise NotFoundError(
            f"no state yet for environment '{env}' ({ws.backend.describe()}); run mlctl apply"
        )
    return state


@click.group("state")
def command() -> None:
    """Inspect the state (list, show, pull, history)."""


@command.command("list")
@ENV
@click.pass_context
def list_cmd(ctx: click.Context, env: str) -> None:
    """List the addresses in state."""
    from mlctl.plan.resources import sort_key

    for address in sorted(_state(repo_of(ctx), env).resources, key=sort_key):
        click.echo(address)


@command.command("show")
@ENV
@click.argument("address")
@click.pass_context
def show_cmd(ctx: click.Context, env: str, address: str) -> None:
    """Show one resource (JSON)."""
    from mlctl.cli.output import echo_json
    from mlctl.errors import NotFoundError

    state = _state(repo_of(ctx), env)
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


@command.command("pull")
@ENV
@click.option("--version", "version", metavar="ID", help="A stored snapshot (see `state history`).")
@click.pass_context
def pull_cmd(ctx: click.Context, env: str, version: str | None) -> None:
    """Print the whole state document (or one stored snapshot of it)."""
    from mlctl.errors import MlctlError
    from mlctl.workspace import open_workspace

    if version is None:
        click.echo(_state(repo_of(ctx), env).to_json(), nl=False)
        return
    from mlctl.state.backend import VersionedBackend

    ws = open_workspace(repo_of(ctx), env)
    if not isinstance(ws.backend, VersionedBackend):
        raise MlctlError(
            f"{ws.backend.describe()} keeps no versions; --version needs an s3 backend "
            "(a versioned bucket keeps every snapshot)"
        )
    click.echo(ws.backend.read_version(version).to_json(), nl=False)


@command.command("history")
@ENV
@click.option("--limit", default=20, show_default=True, help="Newest snapshots to list.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, env: str, limit: int, as_json: bool) -> None:
    """List stored snapshots of the state (S3 backend with a versioned bucket)."""
    from mlctl.cli.output import echo_json
    from mlctl.errors import MlctlError
    from mlctl.state.backend import VersionedBackend
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    if not isinstance(ws.backend, VersionedBackend):
        raise MlctlError(
            f"{ws.backend.describe()} keeps no history (only its .backup of the previous "
            "command); use an s3 backend on a versioned bucket"
        )
    versions = ws.backend.history(limit=limit)
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
