"""Run an environment's monitors: evaluate, record in state, act.

Contract: evaluation reads the state without the lock (read-only). Then, under the
environment's lock, the state is read again and each monitor's record is updated (breach
count for ``consecutive``, last status), retraining triggers are recorded and triggers whose
version is live are cleared, in one write. Rollbacks run after the lock is released (rollback
takes it itself). Alerts run last, so their payload lists what the other actions did. A
monitor fires when it is in breach for ``consecutive`` runs in a row; ``insufficient`` and
``error`` results neither count nor reset the streak. A monitor with its own ``schedule`` runs
only when that cron fired since its last run, unless it is named explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mlctl.errors import MlctlError, NotFoundError
from mlctl.monitor import actions
from mlctl.monitor.checks import MonitorResult, evaluate
from mlctl.plan.triggers import parse_time, sweep_cleared
from mlctl.spec.validate import did_you_mean
from mlctl.state.backend import locked, persist
from mlctl.state.document import GitInfo, MonitorRecord, State, utcnow
from mlctl.workspace import Workspace


@dataclass
class RunResult:
    environment: str
    time: str
    results: list[MonitorResult] = field(default_factory=list)

    @property
    def fired(self) -> list[MonitorResult]:
        return [r for r in self.results if r.fired]

    @property
    def errors(self) -> list[str]:
        out = [f"monitor {r.name}: {r.summary}" for r in self.results if r.status == "error"]
        out += [
            f"monitor {r.name}: {a.action} failed: {a.detail}"
            for r in self.results
            for a in r.actions
            if not a.ok and a.action != "retrain"
        ]
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "format_version": 1,
            "environment": self.environment,
            "time": self.time,
            "fired": [r.name for r in self.fired],
            "monitors": [r.to_dict() for r in self.results],
        }


def _due(schedule: str | None, record: MonitorRecord | None, now: datetime) -> bool:
    if not schedule or record is None or not record.last_run_at:
        return True
    from croniter import croniter

    tick = croniter(schedule, now).get_prev(datetime)
    tick = tick if tick.tzinfo else tick.replace(tzinfo=UTC)
    return tick > parse_time(record.last_run_at)


def select(ws: Workspace, names: list[str]) -> list[str]:
    monitors = ws.spec.config.monitors
    for name in names:
        if name not in monitors:
            hint = did_you_mean(name, monitors)
            known = ", ".join(sorted(monitors)) or "none"
            raise NotFoundError(
                f"monitor '{name}' is not defined in environment '{ws.env}' "
                + (f"({hint})" if hint else f"(defined: {known})")
            )
    return list(dict.fromkeys(names)) if names else list(monitors)


def run_monitors(
    ws: Workspace,
    names: list[str],
    *,
    actor: str,
    git: GitInfo,
    current: Path | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Evaluate monitors ``names`` (all when empty) of ``ws``; see the module contract."""
    now = now or datetime.now(UTC)
    chosen = select(ws, names)
    if current is not None and not current.exists():
        raise MlctlError(f"--current {current}: no such file or directory")
    state = ws.backend.read()
    if state is None:
        raise MlctlError(f"environment '{ws.env}' has no state yet: run mlctl apply -e {ws.env} first")
    run = RunResult(ws.env, now.replace(microsecond=0).isoformat().replace("+00:00", "Z"))
    not_due: set[str] = set()
    for name in chosen:
        monitor = ws.spec.config.monitors[name]
        if not names and not _due(monitor.schedule, state.monitors.get(name), now):
            not_due.add(name)
            record = state.monitors[name]
            run.results.append(
                MonitorResult(
                    name,
                    monitor.kind,
                    monitor.model,
                    "skipped",
                    f"not due (schedule {monitor.schedule}; last run {record.last_run_at})",
                    required=monitor.consecutive,
                )
            )
            continue
        run.results.append(evaluate(ws.spec, name, state, now, current))
    if current is not None:
        # Data the user pointed at could not be used: a user error, so nothing is recorded.
        failed = [r for r in run.results if r.status == "error"]
        if failed:
            raise MlctlError("; ".join(f"{r.name}: {r.summary}" for r in failed))

    with locked(ws.backend, "monitor", ws.env):
        fresh = ws.backend.read() or State(environment=ws.env)
        for result in run.results:
            if result.name in not_due:
                continue
            _record(fresh, result)
            if result.fired and "retrain" in ws.spec.config.monitors[result.name].actions:
                result.actions.append(actions.record_trigger(ws.spec, fresh, result, actor))
        for registry in fresh.models.values():
            sweep_cleared(registry)
        persist(ws.backend, fresh, git=git)

    for result in run.fired:
        if "rollback" in ws.spec.config.monitors[result.name].actions:
            result.actions.append(actions.rollback(ws, ws.env, result, actor, git))
    for result in run.fired:
        if "alert" in ws.spec.config.monitors[result.name].actions:
            result.actions.insert(0, actions.alert(ws.env, result))
    return run


def _record(state: State, result: MonitorResult) -> None:
    record = state.monitors.setdefault(result.name, MonitorRecord())
    if result.status == "breach":
        record.consecutive_breaches += 1
    elif result.status == "ok":
        record.consecutive_breaches = 0
    result.consecutive = record.consecutive_breaches
    result.fired = result.status == "breach" and record.consecutive_breaches >= result.required
    record.last_run_at = utcnow()
    record.last_status = "fired" if result.fired else result.status
    record.last_summary = result.summary
    if result.fired:
        record.last_fired_at = record.last_run_at
