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
* :func:`status` reads only; :func:`preview` is the same reading for every declared rollout
  of an environment from a state the caller already holds (``plan`` shows it).
* :func:`step_all` steps every declared rollout (``monitor run`` calls it): one endpoint's
  failure is its result's ``error``, never raised.

A rollout never starts for a candidate version that an earlier rollout of the endpoint ended
(promoted or aborted), nor for one that a rollback took out of the endpoint's stage: the
candidate stage keeps the version a rollback left, and rolling it out again on the next step
would undo the rollback. Train a new version (or promote by hand) instead.

The analysis reads the prediction log of the current step for latency, errors and
predictions, and the log since the rollout started for quality: each arm's keyed
predictions are joined to the delayed labels of the model's performance monitor
(:func:`mlctl.monitor.quality.delayed_labels`), so labels that arrive days after a step
still count for the arm that served them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlctl.errors import MlctlError, NotFoundError
from mlctl.state.document import GitInfo, RolloutDecision, RolloutRecord, State
from mlctl.workspace import Workspace

if TYPE_CHECKING:
    from mlctl.monitor.rollout_analysis import Verdict
    from mlctl.plan.model import RolloutStep
    from mlctl.spec.models import Endpoint, Rollout
    from mlctl.state.document import ModelRegistry

__all__ = ["RolloutResult", "abort", "declared", "preview", "promote", "status", "step", "step_all"]

log = logging.getLogger("mlctl.rollout")


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
    commit: str | None = None  # the write-back commit (``monitor run --commit``)
    previous_weight: float | None = None  # the candidate's weight before a step that moved it
    error: str | None = None  # :func:`step_all` only: why this endpoint could not be stepped


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


def declared(ws: Workspace) -> list[str]:
    """The endpoints of ``ws`` that declare a rollout, sorted."""
    return sorted(n for n, e in ws.spec.config.endpoints.items() if e.rollout is not None)


def status(ws: Workspace, endpoint: str) -> RolloutResult:
    """The endpoint's rollout as state records it, and what :func:`step` would decide now."""
    _declared(ws, endpoint)
    return _read(ws, ws.backend.read(), endpoint, analyze=True)


def preview(ws: Workspace, state: State | None, *, analyze: bool = True) -> list[RolloutResult]:
    """:func:`status` of every declared rollout of ``ws``, read from ``state`` (the one the
    caller read; nothing is read again but the prediction log and labels, and only when
    ``analyze``). Read-only; a log that cannot be read is the result's ``error``."""
    out = []
    for endpoint in declared(ws):
        try:
            out.append(_read(ws, state, endpoint, analyze=analyze))
        except MlctlError as exc:
            spec, rollout = _declared(ws, endpoint)
            record = state.rollouts.get(endpoint) if state is not None else None
            result = RolloutResult(ws.env, endpoint, spec.model, record, list(rollout.steps))
            result.error = str(exc)
            out.append(result)
    return out


def _read(ws: Workspace, state: State | None, endpoint: str, *, analyze: bool) -> RolloutResult:
    spec, rollout = _declared(ws, endpoint)
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
    if not analyze:
        result.reason = "not analyzed (--no-refresh: the prediction log is not read)"
        return result
    verdict = _analyze(ws, state, endpoint, spec, rollout, record)
    result.verdict, result.reason, result.statistics = verdict.action, verdict.reason, verdict.statistics()
    if rollout.strategy == "ab" and verdict.action in ("advance", "promote"):
        result.verdict, result.reason = "hold", _hold_reason(record, verdict.reason)
    return result


def as_step(ws: Workspace, result: RolloutResult, state: State | None) -> RolloutStep:
    """``result`` as the plan and the monitor report show it (a
    :class:`~mlctl.plan.model.RolloutStep`). For a result of :func:`step` that moved the
    rollout, ``weight`` is the share before and ``next_weight`` the share after; for a reading
    (:func:`status`, :func:`preview`) ``next_weight`` is where the verdict would lead.
    ``state`` gives the stages' versions when no rollout runs."""
    from mlctl.plan.model import RolloutStep

    endpoint = ws.spec.config.endpoints[result.endpoint]
    rollout = endpoint.rollout
    assert rollout is not None
    record = result.record
    live = record is not None and (record.status == "running" or result.decision is not None)
    registry = state.models.get(result.model) if state is not None else None
    stages = registry.stages if registry is not None else {}
    weight = step_index = None
    if record is not None and live:
        weight, step_index = record.weight, record.step
    next_weight = _next_weight(result.verdict, rollout, step_index, weight)
    if result.decision is not None and record is not None:  # done: before -> after
        weight, next_weight = result.previous_weight, record.weight
    return RolloutStep(
        endpoint=result.endpoint,
        model=result.model,
        strategy=rollout.strategy,
        candidate_stage=rollout.candidate,
        status=record.status if record is not None else None,
        stable_version=record.stable_version if live and record else stages.get(endpoint.stage),
        candidate_version=record.candidate_version if live and record else stages.get(rollout.candidate),
        steps=list(rollout.steps),
        step=step_index,
        weight=weight,
        next_weight=next_weight,
        verdict=None if result.verdict == "none" else result.verdict,
        reason=result.reason or "",
        statistics=result.statistics,
        error=result.error,
    )


def _next_weight(verdict: str | None, rollout: Any, step: int | None, weight: float | None) -> float | None:
    """The candidate's share after ``verdict``."""
    if verdict == "start":
        return 0.0 if rollout.strategy == "shadow" else float(rollout.steps[0])
    if verdict == "advance" and step is not None and step + 1 < len(rollout.steps):
        return float(rollout.steps[step + 1])
    if verdict == "promote":
        return 100.0
    if verdict == "abort":
        return 0.0
    return weight


def _hold_reason(record: RolloutRecord, why: str) -> str:
    return f"A/B split holds at {record.weight:g}% ({why}); promote or abort by hand"


def _rolled_back(registry: ModelRegistry, stage: str, version: int) -> str | None:
    """When a rollback last took ``version`` out of ``stage`` (None: never)."""
    for event in reversed(registry.history):
        if event.stage == stage and event.action == "rollback" and event.from_version == version:
            return str(event.time)
    return None


def _start_reason(
    state: State, spec: Endpoint, rollout: Rollout, record: RolloutRecord | None
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
    when = _rolled_back(registry, spec.stage, candidate)
    if when is not None:
        return None, (
            f"{rollout.candidate} v{candidate} was rolled back out of {spec.stage} at {when}: "
            "not rolled out again (train a new version, or promote by hand)"
        )
    first = rollout.steps[0] if rollout.strategy != "shadow" else 0.0
    return candidate, (
        f"start {rollout.strategy} of {rollout.candidate} v{candidate} next to {spec.stage} "
        f"v{stable} at {first:g}%"
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _analyze(
    ws: Workspace, state: State, endpoint: str, spec: Endpoint, rollout: Rollout, record: RolloutRecord
) -> Verdict:
    from mlctl.monitor.quality import delayed_labels
    from mlctl.monitor.rollout_analysis import analyze, arm_samples, join_labels
    from mlctl.providers.predlog import iter_records, prediction_log_store

    since, started = _time(record.since), _time(record.started_at)
    store = prediction_log_store(ws.spec, spec.model)
    records = [r for r in iter_records(store, since=started) if r.get("endpoint") in (endpoint, None)]
    arms = arm_samples(records, since=since)
    unread = ""
    try:
        labels = delayed_labels(ws.spec, state, spec.model)
    except MlctlError as exc:  # quality cannot be judged; latency, errors and predictions can
        labels, unread = None, f"; quality not judged: {exc}"
        log.warning("rollout %s: delayed labels not read: %s", endpoint, exc)
    if labels is not None:
        whole = arm_samples(records, since=started)  # labels arrive late: the whole rollout
        join_labels(whole, labels[0], labels[1])
        for name, arm in arms.items():
            arm.labelled, arm.correct = whole[name].labelled, whole[name].correct
    candidate = arms["shadow"] if rollout.strategy == "shadow" else arms["candidate"]
    steps = rollout.steps
    # the candidate alone at 100% leaves nothing to compare: passing the step before promotes
    last = rollout.strategy == "shadow" or record.step >= len(steps) - 1 or steps[record.step + 1] >= 100
    verdict = analyze(
        arms["stable"], candidate, rollout.analysis, last_step=last, labelled=labels is not None
    )
    if unread and verdict.action != "wait":
        verdict.reason += unread
    return verdict


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
            result.previous_weight = None
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
        result.previous_weight = record.weight
        if rollout.strategy == "ab" and action in ("advance", "promote"):
            result.verdict = "hold"
            result.reason = _hold_reason(record, verdict.reason)
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


def step_all(
    ws: Workspace,
    *,
    actor: str | None = None,
    write_back: bool = True,
    commit: bool = False,
    lock_timeout: float = 0.0,
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[RolloutResult]:
    """:func:`step` every declared rollout of ``ws`` (``monitor run`` does, on its schedule).
    A step that fails (a held lock, an unreadable log, a refused promotion) is that
    endpoint's ``error``, never raised, and the others are still stepped. With ``commit``,
    a promotion's rewritten pin is committed (that one file), as ``rollback --commit`` does.
    Endpoints in ``skip`` are not stepped (their result holds the record only)."""
    out = []
    for endpoint in declared(ws):
        if endpoint in skip:
            spec, rollout = _declared(ws, endpoint)
            state = ws.backend.read()
            record = state.rollouts.get(endpoint) if state is not None else None
            out.append(RolloutResult(ws.env, endpoint, spec.model, record, list(rollout.steps)))
            continue
        try:
            result = step(ws, endpoint, actor=actor, write_back=write_back, lock_timeout=lock_timeout)
            if commit and result.written is not None and result.record is not None:
                from mlctl.gitops.git import commit_files

                who = result.decision.actor if result.decision is not None else actor
                message = (
                    f"rollout: {result.model} v{result.record.candidate_version} promoted to "
                    f"production in {ws.env}\n\n{result.reason}\n\nBy {who}."
                )
                result.commit = commit_files(ws.repo, [result.written], message)
        except MlctlError as exc:
            spec, rollout = _declared(ws, endpoint)
            result = RolloutResult(ws.env, endpoint, spec.model, None, list(rollout.steps))
            result.error = str(exc)
        out.append(result)
    return out


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
        before = record.weight
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
    result.serial, result.previous_weight = state.serial, before
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
