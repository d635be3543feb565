"""``monitor``: run an environment's monitors, record what they found, carry out their actions.

Contract: evaluation reads the state without the lock (read-only,
:func:`mlctl.monitor.evaluation.evaluate_monitors`). Then the operation takes the lock itself:
it reads the state again and records each monitor's result (breach streak, last status, a
point of its bounded history), retraining triggers, and clears triggers whose version is
live, in one write. With ``metrics_file`` or ``pushgateway``, the last recorded run of every
monitor is then exposed as Prometheus metrics (:mod:`mlctl.monitor.exposition`); a failed
export is in the result's ``exports`` and ``diagnostics``, never raised. With the lock
released, a fired monitor with ``rollback`` rolls its model back through
:func:`mlctl.operations.rollback` (which takes the lock again, with the monitor named as its
holder and as the reason, and rewrites the YAML pin). Alerts run last, so their payload lists
what the other actions did. A failed action is recorded in the result, never raised. A model
is rolled back at most once per run: when several of its monitors fire with ``rollback``, the
first one's rollback stands and the others record that it did.
Then, when no monitor is named (the scheduled run) and ``rollouts`` is set, every rollout the
environment declares is stepped through :func:`mlctl.operations.rollout.step_all`, the code
``mlctl rollout step`` runs: it takes the lock itself, starts, advances, promotes (writing
the YAML production pin back, committed with ``commit``) or aborts from the analysis' verdict,
and a failure is that rollout's error in the result, never raised. A rollout of a model that
a monitor rolled back in this run is not stepped (the run says so).
In CI, monitors with actions that change state (``retrain``, ``rollback``), and stepping
rollouts, are refused before anything is read when the state is a local file, unless
``allow_local_state`` (see :mod:`mlctl.operations.ci`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlctl.errors import MlctlError
from mlctl.state.document import GitInfo
from mlctl.workspace import Workspace

if TYPE_CHECKING:
    from mlctl.monitor.findings import ActionResult, MonitorResult
    from mlctl.monitor.run import RolloutOutcome, RunResult
    from mlctl.state.document import State


@dataclass(frozen=True)
class MonitorOptions:
    """``monitors``: names (default: every monitor that is due). ``current``: current data (a
    CSV/Parquet file for drift monitors, or a prediction log directory). ``now``: the time the
    run is for (default: now, UTC). ``allow_local_state``: carry out retrain and rollback
    actions in CI although the state is a local file (lost with the runner). ``commit``: an
    auto-rollback commits the pin it rewrote, exactly as ``rollback --commit`` does."""

    monitors: tuple[str, ...] = ()
    current: Path | None = None
    now: datetime | None = None
    allow_local_state: bool = False
    commit: bool = False
    lock_timeout: float = 0.0  # seconds to wait for a held state lock (0: fail at once naming the holder)
    metrics_file: Path | None = None  # write every monitor's last result there (textfile collector)
    pushgateway: str | None = None  # and/or push them to this Prometheus Pushgateway (http(s) URL)
    rollouts: bool = True  # step the declared rollouts when no monitor is named


def _rollback(
    ws: Workspace, result: MonitorResult, actor: str, git: GitInfo, options: MonitorOptions
) -> ActionResult:
    from mlctl.monitor.actions import rollback_outcome
    from mlctl.monitor.findings import ActionResult
    from mlctl.operations.rollback import RollbackOptions, rollback

    reason = f"auto-rollback by monitor {result.name}: {result.summary}"
    try:
        done = rollback(
            ws,
            result.model,
            RollbackOptions(
                reason=reason,
                write_back=True,
                commit=options.commit,
                allow_local_state=options.allow_local_state,
                lock_timeout=options.lock_timeout,
            ),
            actor=actor,
            git=git,
            operation=f"monitor {result.name}: rollback",
        )
    except MlctlError as exc:
        return ActionResult("rollback", False, str(exc))
    outcome = rollback_outcome(ws.env, done.from_version, done.to_version, done.written, ws.repo)
    if done.commit:
        outcome.detail += f"; committed {done.commit[:12]} (push it so the remote agrees)"
    return outcome


def _export(ws: Workspace, state: State, options: MonitorOptions) -> list[ActionResult]:
    """Expose every monitor's last result (:mod:`mlctl.monitor.exposition`) to the textfile
    and/or Pushgateway of ``options``; a failure is returned, never raised."""
    from mlctl.monitor import exposition
    from mlctl.monitor.findings import ActionResult

    registry = exposition.registry(ws.env, state, ws.spec.config.monitors)
    done: list[ActionResult] = []
    if options.metrics_file is not None:
        try:
            exposition.write_textfile(options.metrics_file, registry)
            done.append(ActionResult("metrics-file", True, f"wrote {options.metrics_file}"))
        except MlctlError as exc:
            done.append(ActionResult("metrics-file", False, str(exc)))
    if options.pushgateway is not None:
        try:
            exposition.push(options.pushgateway, ws.env, registry)
            done.append(ActionResult("pushgateway", True, f"pushed to {options.pushgateway}"))
        except MlctlError as exc:
            done.append(ActionResult("pushgateway", False, str(exc)))
    return done


def monitor(
    ws: Workspace,
    options: MonitorOptions = MonitorOptions(),
    *,
    actor: str | None = None,
    git: GitInfo | None = None,
) -> RunResult:
    """Run the monitors of ``ws``; see the module contract. The result's ``diagnostics`` are
    the monitors that could not be evaluated and the actions that failed."""
    from mlctl.gitops.git import current_actor, git_info
    from mlctl.monitor import actions
    from mlctl.monitor.evaluation import evaluate_monitors, record
    from mlctl.monitor.findings import ActionResult
    from mlctl.monitor.run import remember
    from mlctl.operations.ci import require_lasting_state
    from mlctl.plan.triggers import sweep_cleared
    from mlctl.state.backend import locked, persist
    from mlctl.state.document import State

    if options.pushgateway is not None:  # a user error: refused before anything runs
        from mlctl.monitor.exposition import check_url

        check_url(options.pushgateway)
    from mlctl.operations.rollout import declared

    config = ws.spec.config.monitors
    chosen = [config[n] for n in options.monitors if n in config] or list(config.values())
    stepping = options.rollouts and not options.monitors and bool(declared(ws))
    if any(set(m.actions) & {"retrain", "rollback"} for m in chosen):
        require_lasting_state(
            ws, "run monitors with retrain/rollback actions", allowed=options.allow_local_state
        )
    if stepping:
        require_lasting_state(
            ws, "step rollouts (monitor run without --no-rollouts)", allowed=options.allow_local_state
        )
    actor = actor or current_actor(ws.repo)
    git = git or git_info(ws.repo)
    names = list(options.monitors)
    run, not_due = evaluate_monitors(ws, names, current=options.current, now=options.now or datetime.now(UTC))
    with locked(ws.backend, "monitor", ws.env, timeout=options.lock_timeout):
        fresh = ws.backend.read() or State(environment=ws.env)
        for result in run.results:
            if result.name in not_due:
                continue
            record(fresh, result)
            remember(fresh.monitors[result.name], result, run.time)
            if result.fired and "retrain" in config[result.name].actions:
                result.actions.append(actions.record_trigger(ws.spec, fresh, result, actor))
        for registry in fresh.models.values():
            sweep_cleared(registry)
        persist(ws.backend, fresh, git=git)
    if options.metrics_file is not None or options.pushgateway is not None:
        run.exports += _export(ws, fresh, options)

    rolled_back: dict[str, str] = {}  # model -> the monitor whose rollback moved it in this run
    for result in run.fired:
        if "rollback" not in config[result.name].actions:
            continue
        if result.model in rolled_back:  # one breach, one step back: never two in one run
            detail = f"already rolled back by monitor {rolled_back[result.model]} in this run"
            result.actions.append(ActionResult("rollback", True, detail))
            continue
        outcome = _rollback(ws, result, actor, git, options)
        if outcome.ok:
            rolled_back[result.model] = result.name
        result.actions.append(outcome)
    if stepping:
        run.rollouts = _step_rollouts(ws, actor, options, rolled_back)
    for result in run.fired:
        if "alert" in config[result.name].actions:
            result.actions.insert(0, actions.alert(ws.env, result))
    return run


def _step_rollouts(
    ws: Workspace, actor: str, options: MonitorOptions, rolled_back: dict[str, str]
) -> list[RolloutOutcome]:
    """Step every declared rollout (see the module contract), as report outcomes."""
    from mlctl.monitor.run import RolloutOutcome
    from mlctl.operations.rollout import as_step, declared, step_all

    endpoints = ws.spec.config.endpoints
    held = {n for n in declared(ws) if endpoints[n].model in rolled_back}
    results = step_all(ws, actor=actor, commit=options.commit, lock_timeout=options.lock_timeout, skip=held)
    state = ws.backend.read()
    out = []
    for result in results:
        if result.endpoint in held:
            model = endpoints[result.endpoint].model
            result.reason = f"not stepped: monitor {rolled_back[model]} rolled {model} back in this run"
        written = _shown_path(ws, result.written) if result.written else None
        out.append(RolloutOutcome(as_step(ws, result, state), written, result.commit))
    return out


def _shown_path(ws: Workspace, path: Path) -> str:
    """``path`` relative to the repository when inside it (POSIX), else as given."""
    try:
        return path.resolve().relative_to(ws.repo.resolve()).as_posix()
    except ValueError:
        return str(path)
