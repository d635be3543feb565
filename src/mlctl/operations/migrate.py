"""``migrate_state``: move an environment's state to the backend ``environment.yaml`` now declares.

Workflow (Terraform's ``init -migrate-state``): change ``backend`` in
``environments/ENV/environment.yaml`` (e.g. from ``type: local`` to ``type: s3``), then
migrate. Contract: the state is copied from the previous backend (``source``; by default the
local file ``state/ENV.json``) to the configured one with its lineage and serial unchanged,
under both backends' locks, which the operation takes itself; the copy is read back and
verified; the old copy is left in place. Running it again is a no-op (``migrated`` False); a
destination holding a *different* state (another lineage, or a newer serial) is never
overwritten (:class:`~mlctl.errors.MlctlError`). A bucket without versioning is a warning.
"""

from __future__ import annotations

from pathlib import Path

from mlctl.errors import Diagnostic, MlctlError
from mlctl.operations.results import MigrateResult
from mlctl.state.backend import StateBackend
from mlctl.workspace import Workspace


def source_backend(repo: Path, env: str, source: str | None) -> StateBackend:
    """The previous backend named by ``source``: ``s3://bucket/key`` or a local path (relative
    to ``repo``; default ``state/ENV.json``)."""
    if source and source.startswith("s3://"):
        from mlctl.providers.s3 import split_s3_url
        from mlctl.state.s3 import S3Backend

        bucket, key = split_s3_url(source)
        return S3Backend(bucket, key)
    from mlctl.state.local import LocalBackend

    path = Path(source) if source else Path("state") / f"{env}.json"
    return LocalBackend(path if path.is_absolute() else repo / path)


def migrate_state(
    ws: Workspace, source: StateBackend | str | None = None, *, lock_timeout: float = 0.0
) -> MigrateResult:
    """Copy the state of ``ws`` from ``source`` to its configured backend; see the module
    contract. ``lock_timeout``: seconds to wait for either lock while another operation holds it."""
    from mlctl.state.backend import locked

    env = ws.env
    target = ws.backend
    origin = source if isinstance(source, StateBackend) else source_backend(ws.repo, env, source)
    if origin.describe() == target.describe():
        raise MlctlError(
            f"the configured backend is already {target.describe()}; change `backend` in "
            f"environments/{env}/environment.yaml first, or name the old one with --from"
        )
    with (
        locked(origin, "init-backend", env, timeout=lock_timeout),
        locked(target, "init-backend", env, timeout=lock_timeout),
    ):
        state = origin.read()
        if state is None:
            raise MlctlError(f"nothing to migrate: {origin.describe()} holds no state")
        result = MigrateResult(
            environment=env,
            source=origin.describe(),
            target=target.describe(),
            lineage=state.lineage,
            serial=state.serial,
            migrated=False,
        )
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
                return result
        target.write(state)
        check = target.read()
        if check is None or (check.lineage, check.serial) != (state.lineage, state.serial):
            raise MlctlError(
                f"migration to {target.describe()} could not be verified; the source is unchanged"
            )
    result.migrated = True
    versioning = getattr(target, "versioning", None)
    if versioning is not None and versioning() != "Enabled":
        result.diagnostics.append(
            Diagnostic(
                "Bucket versioning is off: enable it to keep every state snapshot (mlctl state history).",
                severity="warning",
            )
        )
    return result
