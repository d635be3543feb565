"""``rollout``: progressive delivery of an endpoint's candidate stage, decided from statistics.

Contract: every mutating function takes the environment's lock itself (a held lock raises
:class:`~mlctl.errors.LockError` naming its holder), reads the state under it and writes it
once; everything a user can get wrong (an unknown endpoint, an endpoint without ``rollout``,
no candidate version, no running rollout) raises :class:`~mlctl.errors.MlctlError` before
any change. The running rollout lives in ``state.rollouts[endpoint]``
(:class:`~mlctl.state.document.RolloutRecord`); serving follows its ``weight``.

* :func:`step` starts a rollout when the candidate stage holds a version production does
  not, otherwise reads the prediction log of the current step, runs
  :func:`mlctl.monitor.rollout_analysis.analyze` and applies its verdict: ``wait`` (nothing
  written), ``advance`` (next step's weight), ``promote`` (at the last step: the candidate
  becomes production, endpoints redeployed, then -- with the lock released -- the YAML
  production pin rewritten as ``rollback`` does) or ``abort`` (weight 0, reason recorded).
  ``ab`` never advances on its own (it holds its split until promoted or aborted);
  ``shadow`` serves no candidate traffic and promotes once the analysis passes.
* :func:`promote` and :func:`abort` are the people's levers: the same end states at once.
* :func:`status` reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlctl.errors import MlctlError, NotFoundError
from mlctl.state.document import GitInfo, RolloutDecision, RolloutRecord, State
from mlctl.workspace import Workspace

__all__ = ["RolloutResult", "abort", "promote", "status", "step"]


@dataclass
class RolloutResult:
    """What a rollout command saw or did: the record after it, the decision it took (None
    when it only read or waited), the analysis it ran and the pin it wrote back."""

    environment: str
    endpoint: str
    model: str
    record: RolloutRecord | None
    steps: list[float]
    decision: RolloutDecision | None = None
    verdict: str | None = None
    reason: str | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    written: Path | None = None
    serial: int | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _declared(ws: Workspace, endpoint: str) -> tuple[Any, Any]:
    endpoints = ws.spec.config.endpoints
    if endpoint not in endpoints:
        from mlctl.spec.names import not_defined

        raise not_defined("endpoint", endpoint, ws.env, endpoints)
    spec = endpoints[endpoint]
    if spec.rollout is None:
        raise MlctlError(f"endpoint '{endpoint}' in '{ws.env}' declares no rollout")
    return spec, spec.rollout


def status(ws: Workspace, endpoint: str) -> RolloutResult:
    """The endpoint's rollout as state records it, and what :func:`step` would decide now."""
    spec, rollout = _declared(ws, endpoint)
    state = ws.backend.read()
    record = state.rollouts.get(endpoint) if state is not None else None
    result = RolloutResult(ws.env, endpoint, spec.model, record, list(rollout.steps))
    if state is None:
        result.reason = "no state yet: apply first"
        return result
    if record is None or record.status != "running":
        start = _start_reason(state, spec, rollout, record)
        result.verdict = "start" if start[0] else None
        result.reason = start[1]
        return result
    verdict = _analyze(ws, state, endpoint, spec, rollout, record)
    result.verdict, result.reason, result.statistics = verdict.action, verdict.reason, verdict.statistics()
    return result


def _start_reason(
    state: State, spec: Any, rollout: Any, record: RolloutRecord | None
) -> tuple[int | None, str]:
    """(candidate version to start with, why) -- version None when nothing is to start."""
    registry = state.models.get(spec.model)
    if registry is None:
        return None, f"{spec.model} has no versions yet"
    candidate = registry.stages.get(rollout.candidate)
    stable = registry.stages.get(spec.stage)
    if candidate is None:
        return None, f"{spec.model} has no {rollout.candidate} version to roll out"
    if candidate == stable:
        return None, f"{rollout.candidate} v{candidate} already serves {spec.stage}"
    if record is not None and record.candidate_version == candidate:
        return None, f"the rollout of v{candidate} ended: {record.status} ({record.reason})"
    first = rollout.steps[0] if rollout.strategy != "shadow" else 0.0
    return candidate, (
        f"start {rollout.strategy} of {rollout.candidate} v{candidate} next to {spec.stage} "
        f"v{stable} at {first:g}%"
    )


def _analyze(
    ws: Workspace, state: State, endpoint: str, spec: Any, rollout: Any, record: RolloutRecord
) -> Any:
    from mlctl.monitor.rollout_analysis import analyze, arm_samples
    from mlctl.providers.predlog import iter_records, prediction_log_store

    since = datetime.fromisoformat(record.since.replace("Z", "+00:00"))
    store = prediction_log_store(ws.spec, spec.model)
    records = (r for r in iter_records(store, since=since) if r.get("endpoint") in (endpoint, None))
    arms = arm_samples(records, since=since)
    candidate = arms["shadow"] if rollout.strategy == "shadow" else arms["candidate"]
    steps = rollout.steps
    # the candidate alone at 100% leaves nothing to compare: passing the step before promotes
    last = rollout.strategy == "shadow" or record.step >= len(steps) - 1 or steps[record.step + 1] >= 100
    return analyze(arms["stable"], candidate, rollout.analysis, last_step=last)


def step(
    ws: Workspace,
    endpoint: str,
    *,
    actor: str | None = None,
    write_back: bool = True,
    lock_timeout: float = 0.0,
) -> RolloutResult:
    """Start, advance, promote or abort the endpoint's rollout as the analysis decides."""
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.state.backend import locked, persist

    spec, rollout = _declared(ws, endpoint)
    actor = actor or current_actor(ws.repo)
    git = git_info(ws.repo)
    with locked(ws.backend, "rollout step", ws.env, timeout=lock_timeout):
        state = ws.backend.read()
        if state is None:
            raise MlctlError(f"'{ws.env}' has no state yet: apply first")
        record = state.rollouts.get(endpoint)
        result = RolloutResult(ws.env, endpoint, spec.model, record, list(rollout.steps))
        if record is None or record.status != "running":
            version, why = _start_reason(state, spec, rollout, record)
            result.reason = why
            if version is None:
                result.verdict = "none"
                return result
            registry = state.models[spec.model]
            now = _now()
            weight = 0.0 if rollout.strategy == "shadow" else float(rollout.steps[0])
            record = RolloutRecord(
                strategy=rollout.strategy,
                candidate_stage=rollout.candidate,
                stable_version=registry.stages.get(spec.stage),
                candidate_version=version,
                step=0,
                weight=weight,
                started_at=now,
                since=now,
            )
            decision = RolloutDecision(step=0, weight=weight, verdict="advance", reason=why, actor=actor)
            record.decisions.append(decision)
            state.rollouts[endpoint] = record
            persist(ws.backend, state, git=git)
            result.record, result.decision, result.verdict, result.serial = (
                record,
                decision,
                "start",
                state.serial,
            )
            return result
        verdict = _analyze(ws, state, endpoint, spec, rollout, record)
        result.verdict, result.reason, result.statistics = (
            verdict.action,
            verdict.reason,
            verdict.statistics(),
        )
        if verdict.action == "wait":
            return result
        action = verdict.action
        if rollout.strategy == "ab" and action in ("advance", "promote"):
            result.verdict = "hold"
            result.reason = (
                f"A/B split holds at {record.weight:g}% ({verdict.reason}); promote or abort by hand"
            )
            return result
        if action == "abort":
            _end(record, "aborted", verdict.reason)
        elif action == "promote":
            record.step = len(rollout.steps) - 1 if rollout.strategy != "shadow" else record.step
            record.weight = 100.0
        elif action == "advance":
            record.step += 1
            record.weight = float(rollout.steps[record.step])
            record.since = _now()
        decision = RolloutDecision(
            step=record.step,
            weight=record.weight,
            verdict=action,
            reason=verdict.reason,
            actor=actor,
            statistics=verdict.statistics(),
        )
        record.decisions.append(decision)
        result.decision = decision
        if action == "promote":
            _promote_in_state(ws, state, spec.model, record, actor, git, verdict.reason)
        persist(ws.backend, state, git=git)
        result.serial = state.serial
    if action == "promote" and write_back:
        result.written = _write_pin(ws, spec.model, record)
    return result


def promote(
    ws: Workspace,
    endpoint: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    write_back: bool = True,
    lock_timeout: float = 0.0,
) -> RolloutResult:
    """Promote the running rollout's candidate to the endpoint's stage now (a person's call)."""
    return _by_hand(ws, endpoint, "promote", actor, reason, write_back, lock_timeout)


def abort(
    ws: Workspace,
    endpoint: str,
    *,
    actor: str | None = None,
    reason: str | None = None,
    lock_timeout: float = 0.0,
) -> RolloutResult:
    """Abort the running rollout now: weight 0, the stable version serves everything."""
    return _by_hand(ws, endpoint, "abort", actor, reason, False, lock_timeout)


def _by_hand(
    ws: Workspace,
    endpoint: str,
    action: str,
    actor: str | None,
    reason: str | None,
    write_back: bool,
    lock_timeout: float,
) -> RolloutResult:
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.state.backend import locked, persist

    spec, rollout = _declared(ws, endpoint)
    actor = actor or current_actor(ws.repo)
    git = git_info(ws.repo)
    why = reason or f"{action} by {actor}"
    with locked(ws.backend, f"rollout {action}", ws.env, timeout=lock_timeout):
        state = ws.backend.read()
        record = state.rollouts.get(endpoint) if state is not None else None
        if state is None or record is None or record.status != "running":
            raise MlctlError(f"endpoint '{endpoint}' in '{ws.env}' has no running rollout to {action}")
        if action == "abort":
            _end(record, "aborted", why)
        decision = RolloutDecision(
            step=record.step,
            weight=record.weight,
            verdict="promote" if action == "promote" else "abort",
            reason=why,
            actor=actor,
        )
        record.decisions.append(decision)
        if action == "promote":
            _promote_in_state(ws, state, spec.model, record, actor, git, why)
        persist(ws.backend, state, git=git)
    result = RolloutResult(ws.env, endpoint, spec.model, record, list(rollout.steps), decision, action, why)
    result.serial = state.serial
    if action == "promote" and write_back:
        result.written = _write_pin(ws, spec.model, record)
    return result


def _end(record: RolloutRecord, status: Any, reason: str) -> None:
    record.status = status
    record.weight = 0.0 if status == "aborted" else 100.0
    record.reason = reason


def _promote_in_state(
    ws: Workspace, state: State, model: str, record: RolloutRecord, actor: str, git: GitInfo, reason: str
) -> None:
    """Production moves to the candidate (gates passed, artifact intact), endpoints serving
    production are redeployed, the state's pin follows; the caller persists."""
    from mlctl.engine.registry import move_stage
    from mlctl.providers import artifact_store, serving
    from mlctl.state.document import utcnow

    registry = state.models[model]
    target = record.candidate_version
    version = registry.get(target) if target is not None else None
    if version is None:
        raise NotFoundError(f"{model} has no version {target}")
    if version.status != "passed" or version.artifact is None:
        raise MlctlError(f"v{target} of {model} did not pass its gates; it cannot serve production")
    health = artifact_store(ws.spec).health(version.artifact, deep=True)
    if health != "ok":
        raise MlctlError(f"refusing to promote v{target}: artifact {version.artifact.uri} is {health}")
    assert target is not None
    move_stage(
        registry,
        "production",
        target,
        action="promote",
        actor=actor,
        reason=f"rollout: {reason}",
        commit=git.commit,
    )
    for name, endpoint in ws.spec.config.endpoints.items():
        resource = state.resources.get(f"endpoint.{name}")
        if endpoint.model != model or endpoint.stage != "production" or resource is None:
            continue
        deployed = serving(ws.spec, endpoint.provider).deploy(name, model, target, version.artifact)
        resource.status = {**deployed, "stage": "production", "deployed_at": utcnow()}
    stage_resource = state.resources.get(f"stage.{model}.production")
    if stage_resource is not None:
        stage_resource.status = {"version": target}
        stage_resource.spec = {**stage_resource.spec, "pin": target}
    model_resource = state.resources.get(f"model.{model}")
    if model_resource is not None:
        stages = dict(model_resource.spec.get("stages", {}))
        stages["production"] = target
        model_resource.spec = {**model_resource.spec, "stages": stages}
    _end(record, "promoted", reason)


def _write_pin(ws: Workspace, model: str, record: RolloutRecord) -> Path | None:
    from mlctl.gitops.writeback import set_stage_pin

    file = ws.spec.file_of("models", model)
    assert record.candidate_version is not None
    return file if set_stage_pin(file, model, "production", record.candidate_version) else None
