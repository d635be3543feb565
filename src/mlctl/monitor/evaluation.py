"""Evaluate an environment's monitors against the state, read-only.

Contract: nothing here takes the lock or writes anything. :func:`evaluate_monitors` reads the
state once and evaluates each chosen monitor (a monitor with its own ``schedule`` runs only
when that cron fired since its last run, unless it is named explicitly); :func:`record` folds
one result into the state the caller holds under the lock (breach streak, last status, whether
it fired). :func:`mlctl.operations.monitor` puts the two together and carries out the actions.
A monitor fires when it is in breach for ``consecutive`` runs in a row; ``insufficient`` and
``error`` results neither count nor reset the streak.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mlctl.errors import MlctlError
from mlctl.monitor.findings import MonitorResult
from mlctl.monitor.judge import evaluate
from mlctl.monitor.run import RunResult
from mlctl.plan.triggers import parse_time
from mlctl.spec.names import not_defined
from mlctl.state.document import MonitorRecord, State, utcnow
from mlctl.workspace import Workspace


def is_due(schedule: str | None, record: MonitorRecord | None, now: datetime) -> bool:
    """Whether a monitor with cron ``schedule`` last run at ``record`` should run at ``now``."""
    if not schedule or record is None or not record.last_run_at:
        return True
    from croniter import croniter

    tick = croniter(schedule, now).get_prev(datetime)
    tick = tick if tick.tzinfo else tick.replace(tzinfo=UTC)
    return tick > parse_time(record.last_run_at)


def select(ws: Workspace, names: list[str]) -> list[str]:
    """The monitors to run: ``names`` (each must be defined), or every monitor when empty."""
    monitors = ws.spec.config.monitors
    for name in names:
        if name not in monitors:
            raise not_defined("monitor", name, ws.env, monitors, listing=True)
    return list(dict.fromkeys(names)) if names else list(monitors)


def evaluate_monitors(
    ws: Workspace, names: list[str], *, current: Path | None, now: datetime
) -> tuple[RunResult, set[str]]:
    """Evaluate monitors ``names`` (all when empty) of ``ws`` without recording anything.

    Returns the run and the monitors skipped as not due. Raises MlctlError for an unknown
    monitor, a missing ``current``, an environment without state, or (with ``current``) a
    monitor that could not use the data the user pointed at.
    """
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
        if not names and not is_due(monitor.schedule, state.monitors.get(name), now):
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
    return run, not_due


def record(state: State, result: MonitorResult) -> None:
    """Fold ``result`` into its monitor's record in ``state`` and decide whether it fired."""
    entry = state.monitors.setdefault(result.name, MonitorRecord())
    if result.status == "breach":
        entry.consecutive_breaches += 1
    elif result.status == "ok":
        entry.consecutive_breaches = 0
    result.consecutive = entry.consecutive_breaches
    result.fired = result.status == "breach" and entry.consecutive_breaches >= result.required
    entry.last_run_at = utcnow()
    entry.last_status = "fired" if result.fired else result.status
    entry.last_summary = result.summary
    if result.fired:
        entry.last_fired_at = entry.last_run_at
