"""Rollback's core: put the previous production version back in the state, at once.

Contract: no training and no plan. The caller holds the environment's lock and passes the state
it read under it (:func:`mlctl.operations.rollback` does both, then rewrites the YAML pin).
Production moves to the previous production version (or ``to``), which must have passed its
gates and whose artifact must verify -- otherwise :class:`~mlctl.errors.MlctlError` is raised
before anything changes. The version leaving production is marked ``rolled_back`` so following
pins never promote it again quietly; endpoints serving production are redeployed; one state
write records it with actor, time, reason and commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlctl.engine.registry import move_stage
from mlctl.errors import MlctlError, NotFoundError
from mlctl.providers import artifact_store, serving
from mlctl.state.backend import persist
from mlctl.state.document import GitInfo, ModelRegistry, RollbackMark, State, utcnow
from mlctl.workspace import Workspace


@dataclass(frozen=True)
class RolledBack:
    """What the state now says: ``model``'s production moved ``from_version`` -> ``to_version``,
    ``endpoints`` redeployed, written as state ``serial``."""

    model: str
    from_version: int
    to_version: int
    endpoints: list[str]
    serial: int
    mirror: str | None = None  # what the MLflow mirror did, or why it failed (state stands)


def require_model(ws: Workspace, model: str) -> None:
    """NotFoundError (with a did-you-mean hint) unless ``model`` is defined in ``ws``."""
    if model not in ws.spec.config.models:
        from mlctl.spec.names import not_defined

        raise not_defined("model", model, ws.env, ws.spec.config.models)


def previous_production(registry: ModelRegistry) -> int | None:
    """The most recent earlier production holder that passed and was not itself rolled back."""
    current = registry.stages.get("production")
    for event in reversed(registry.history):
        if event.stage != "production":
            continue
        for number in (event.from_version, event.to_version):
            if number is None or number == current:
                continue
            version = registry.get(number)
            if version is not None and version.status == "passed" and version.rolled_back is None:
                return number
    return None


def rollback(
    ws: Workspace,
    state: State | None,
    model: str,
    *,
    to: int | None,
    reason: str | None,
    actor: str,
    git: GitInfo,
    pin: bool,
) -> RolledBack:
    """Move ``model``'s production back in ``state`` and persist it; see the module contract.

    ``pin``: also record ``to_version`` as the production pin of the state's last applied spec
    (the caller rewrites the YAML to match, so the next plan shows no changes).
    """
    require_model(ws, model)
    registry = state.models.get(model) if state else None
    if state is None or registry is None or registry.stages.get("production") is None:
        raise MlctlError(f"{model} has no production version in '{ws.env}' to roll back")
    current = registry.stages["production"]
    assert current is not None
    target = to if to is not None else previous_production(registry)
    if target is None:
        raise MlctlError(f"{model} has no earlier production version to roll back to (use --to)")
    if target == current:
        raise MlctlError(f"v{target} of {model} is already in production")
    version = registry.get(target)
    if version is None:
        known = ", ".join(f"v{v.version}" for v in registry.versions)
        raise NotFoundError(f"{model} has no version {target} (known: {known})")
    if version.status != "passed":
        raise MlctlError(f"v{target} of {model} did not pass its gates; it cannot serve production")
    if version.artifact is None:
        raise MlctlError(f"v{target} of {model} has no artifact")
    store = artifact_store(ws.spec)
    health = store.health(version.artifact, deep=True)
    if health != "ok":
        raise MlctlError(f"refusing to roll back to v{target}: artifact {version.artifact.uri} is {health}")

    leaving = registry.get(current)
    if leaving is not None:
        leaving.rolled_back = RollbackMark(at=utcnow(), by=actor, reason=reason)
    move_stage(
        registry,
        "production",
        target,
        action="rollback",
        actor=actor,
        reason=reason or "rollback",
        commit=git.commit,
    )
    endpoints = []
    for name, endpoint in ws.spec.config.endpoints.items():
        address = f"endpoint.{name}"
        resource = state.resources.get(address)
        if endpoint.model != model or endpoint.stage != "production" or resource is None:
            continue
        status = serving(ws.spec, endpoint.provider).deploy(name, model, target, version.artifact)
        resource.status = {**status, "stage": "production", "deployed_at": utcnow()}
        endpoints.append(name)
    stage_resource = state.resources.get(f"stage.{model}.production")
    if stage_resource is not None:
        stage_resource.status = {"version": target}
    model_resource = state.resources.get(f"model.{model}")
    if pin:
        if stage_resource is not None:
            stage_resource.spec = {**stage_resource.spec, "pin": target}
        if model_resource is not None:
            stages = dict(model_resource.spec.get("stages", {}))
            stages["production"] = target
            model_resource.spec = {**model_resource.spec, "stages": stages}
    persist(ws.backend, state, git=git)
    mirror = None
    if ws.spec.config.providers.tracking is not None:
        from mlctl.engine.mirror import sync

        try:
            mirror = sync(ws.spec, state, store).summary()
        except MlctlError as exc:
            mirror = f"MLflow mirror not updated ({exc}); the next apply retries"
    return RolledBack(model, current, target, endpoints, state.serial, mirror)
