"""``mlctl init-backend -e ENV``: move an environment's state to the backend now configured.

Workflow (Terraform's ``init -migrate-state``): change ``backend`` in
``environments/ENV/environment.yaml`` (e.g. from ``type: local`` to ``type: s3``), then run
``mlctl init-backend -e ENV``. The state is copied from the previous backend (``--from``;
by default the local file ``state/ENV.json``) to the configured one with its lineage and
serial unchanged, under both backends' locks; the old copy is left in place. Running it again
is a no-op; a destination holding a *different* state (another lineage, or a newer serial) is
never overwritten.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.errors import MlctlError


def source_backend(repo: Path, env: str, source: str | None) -> object:
    """``--from``: ``s3://bucket/key`` or a local path (default ``state/ENV.json``)."""
    if source and source.startswith("s3://"):
        from mlctl.providers.s3 import split_s3_url
        from mlctl.state.s3 import S3Backend

        bucket, key = split_s3_url(source)
        return S3Backend(bucket, key)
    from mlctl.state.local import LocalBackend

    path = Path(source) if source else Path("state") / f"{env}.json"
    return LocalBackend(path if path.is_absolute() else repo / path)


def migrate(repo: Path, env: str, source: str | None) -> str:
    """Copy the state of ``env`` from ``source`` to the configured backend; return a summary."""
    from mlctl.state.backend import StateBackend, locked
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)
    target = ws.backend
    origin = source_backend(ws.repo, env, source)
    assert isinstance(origin, StateBackend)
    if origin.describe() == target.describe():
        raise MlctlError(
            f"the configured backend is already {target.describe()}; change `backend` in "
            f"environments/{env}/environment.yaml first, or name the old one with --from"
        )
    with locked(origin, "init-backend", env), locked(target, "init-backend", env):
        state = origin.read()
        if state is None:
            raise MlctlError(f"nothing to migrate: {origin.describe()} holds no state")
        existing = target.read()
        if existing is not None:
            if existing.lineage != state.lineage:
                raise MlctlError(
                    f"{target.describe()} already holds another state (lineage {existing.lineage}, "
                    f"not {state.lineage}); refusing to overwrite it"
                )
            if existing.serial > state.serial:
                raise MlctlError(
                    f"{target.describe()} is newer (serial {existing.serial}) than "
                    f"{origin.describe()} (serial {state.serial}); nothing to migrate"
                )
            if existing.serial == state.serial:
                return (
                    f"{target.describe()} already holds this state (lineage {state.lineage}, "
                    f"serial {state.serial}); nothing to do."
                )
        target.write(state)
        check = target.read()
        if check is None or (check.lineage, check.serial) != (state.lineage, state.serial):
            raise MlctlError(
                f"migration to {target.describe()} could not be verified; the source is unchanged"
            )
    note = ""
    versioning = getattr(target, "versioning", None)
    if versioning is not None and versioning() != "Enabled":
        note = " Bucket versioning is off: enable it to keep every state snapshot (mlctl state history)."
    return (
        f"Migrated state of '{env}' (lineage {state.lineage}, serial {state.serial}) from "
        f"{origin.describe()} to {target.describe()}. The old copy is left in place; remove it "
        f"once everyone uses the new backend.{note}"
    )


@click.command("init-backend")
@click.option("-e", "--env", "env", required=True, metavar="ENV", help="Environment name.")
@click.option(
    "--from",
    "source",
    metavar="SOURCE",
    help="Previous backend: a local state file (default state/ENV.json) or s3://bucket/key.",
)
@click.pass_context
def command(ctx: click.Context, env: str, source: str | None) -> None:
    """Migrate ENV's state to the backend environment.yaml now declares, keeping lineage."""
    repo = Path(ctx.obj["repo"]).resolve()
    click.echo(migrate(repo, env, source))
