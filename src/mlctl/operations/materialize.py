"""``materialize``: bring online feature views up to date now, incrementally, as apply does.

Contract: the views must be defined and online (else :class:`~mlctl.errors.MlctlError` before
anything happens). The operation takes the environment's lock itself, reads the state, and
materializes the views in order, persisting the state after each one (the new windows in the
view's status). A view not applied yet, or whose source dataset failed its last data check
(the same gate apply uses, :func:`mlctl.engine.apply.data_check_failure`), fails; the views
after a failure are skipped. Failures are outcomes and error diagnostics of the result, since
the views before them are already written.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlctl.engine.outcomes import ActionOutcome, Status
from mlctl.errors import Diagnostic, MlctlError
from mlctl.operations.results import MaterializeResult
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace


@dataclass(frozen=True)
class MaterializeOptions:
    """``views``: names (default: every online view). ``end``: materialize events up to this
    time (ISO-8601, default now). ``rebuild``: drop the views' online records and write them
    again."""

    views: tuple[str, ...] = ()
    end: str | None = None
    rebuild: bool = False
    lock_timeout: float = 0.0  # seconds to wait for a held state lock (0: fail at once naming the holder)


def _chosen(ws: Workspace, views: tuple[str, ...]) -> list[str]:
    from mlctl.spec.names import did_you_mean

    config = ws.spec.config
    for name in views:
        if name not in config.feature_views:
            hint = did_you_mean(name, config.feature_views)
            raise MlctlError(
                f"no feature view '{name}' in environment '{ws.env}'" + (f" ({hint})" if hint else "")
            )
        if not config.feature_views[name].online:
            raise MlctlError(f"feature view '{name}' is not online (set 'online: true' and run mlctl apply)")
    names = list(views) or [n for n, v in config.feature_views.items() if v.online]
    if not names:
        raise MlctlError(f"no online feature views in environment '{ws.env}'")
    return names


def materialize(
    ws: Workspace, options: MaterializeOptions = MaterializeOptions(), *, git: GitInfo | None = None
) -> MaterializeResult:
    """Materialize ``options.views`` of ``ws``; see the module contract."""
    from mlctl.engine.apply import data_check_failure
    from mlctl.engine.reality import ProviderReality
    from mlctl.features.materialize import materialize_view
    from mlctl.gitops.git import git_info
    from mlctl.state.backend import locked, persist
    from mlctl.state.document import utcnow

    names = _chosen(ws, options.views)
    config = ws.spec.config
    git = git or git_info(ws.repo)
    result = MaterializeResult(environment=ws.env)
    with locked(ws.backend, "features materialize", ws.env, timeout=options.lock_timeout):
        state = ws.backend.read()
        reality = ProviderReality(ws.spec)
        for name in names:
            address = f"feature_view.{name}"
            if not result.ok:
                result.outcomes.append(
                    ActionOutcome(address, "materialize", Status.SKIPPED, "an earlier view failed")
                )
                continue
            try:
                resource = state.resources.get(address) if state else None
                if state is None or resource is None:
                    raise MlctlError(f"{address} is not applied yet: run mlctl apply -e {ws.env} first")
                source = config.feature_views[name].source
                blocked = data_check_failure(state, [source])
                if blocked:
                    raise MlctlError(f"{blocked}; fix it and run apply")
                done = materialize_view(
                    ws.spec,
                    name,
                    resource.status,
                    end=options.end,
                    rebuild="rebuild requested (--rebuild)" if options.rebuild else None,
                    fingerprint=reality.dataset_fingerprint(source, config.datasets[source]),
                )
                resource.status = done.status
                resource.updated_at = utcnow()
                persist(ws.backend, state, git=git)
            except MlctlError as exc:
                result.outcomes.append(ActionOutcome(address, "materialize", Status.FAILED, str(exc)))
                result.diagnostics.append(Diagnostic(str(exc)))
                continue
            result.outcomes.append(ActionOutcome(address, "materialize", Status.OK, done.summary()))
    return result
