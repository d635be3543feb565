"""Rollback: put the previous production version back, at once, and say so in state and git.

Contract: no training and no plan. Under the environment's lock, production moves to the
previous production version (or ``to``), which must have passed its gates and whose artifact
must verify; the version leaving production is marked ``rolled_back`` so following pins never
promote it again quietly; endpoints serving production are redeployed; one state write
records it with actor, time, reason and commit. Then (unless disabled) the environment's YAML
pin is rewritten with comments kept, so the next plan shows no changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlctl.engine.registry import move_stage
from mlctl.errors import MlctlError, NotFoundError
from mlctl.providers import artifact_store, serving
from mlctl.state.backend import locked, persist
from mlctl.state.document import GitInfo, ModelRegistry, RollbackMark, utcnow
from mlctl.workspace import Workspace


@dataclass
class RollbackResult:
    model: str
    from_version: int
    to_version: int
    endpoints: list[str]
    written: Path | None
    serial: int


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
    model: str,
    *,
    to: int | None,
    reason: str | None,
    actor: str,
    git: GitInfo,
    write_back: bool,
    operation: str = "rollback",
) -> RollbackResult:
    """Move ``model``'s production back; see the module contract."""
    if model not in ws.spec.config.models:
        from difflib import get_close_matches

        close = get_close_matches(model, list(ws.spec.config.models), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NotFoundError(f"model '{model}' is not defined in environment '{ws.env}'{hint}")
    with locked(ws.backend, operation, ws.env):
        state = ws.backend.read()
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
            raise MlctlError(
                f"refusing to roll back to v{target}: artifact {version.artifact.uri} is {health}"
            )

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
        if write_back:
            if stage_resource is not None:
                stage_resource.spec = {**stage_resource.spec, "pin": target}
            if model_resource is not None:
                stages = dict(model_resource.spec.get("stages", {}))
                stages["production"] = target
                model_resource.spec = {**model_resource.spec, "stages": stages}
        persist(ws.backend, state, git=git)

    written = None
    if write_back:
        from mlctl.gitops.writeback import set_stage_pin

        file = ws.spec.file_of("models", model)
        if set_stage_pin(file, model, "production", target):
            written = file
    return RollbackResult(model, current, target, endpoints, written, state.serial)
