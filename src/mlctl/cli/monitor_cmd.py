"""``mlctl monitor``: run the environment's monitors; their history as one HTML page; list
retraining triggers.

Light at import: the monitoring code (pandas, scipy, matplotlib) loads when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlctl.cli.options import ENV, LOCK_TIMEOUT, repo_of


@click.group("monitor")
def command() -> None:
    """Drift, quality and serving monitors; retraining triggers."""


@command.command("run")
@ENV
@click.argument("monitors", nargs=-1)
@click.option(
    "--current",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Current data: a CSV/Parquet file (drift monitors), or a prediction log directory.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write monitor-report.json, .md and .html into DIR.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0: nothing fired, 1: error, 2: a monitor fired."
)
@click.option(
    "--allow-local-state",
    is_flag=True,
    help="In CI (CI=true), carry out retrain and rollback actions although the state is a "
    "local file, lost when the runner ends.",
)
@click.option(
    "--commit",
    is_flag=True,
    help="Commit the pin an auto-rollback rewrites (as `rollback --commit` does); push it after.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write every monitor's last result as Prometheus metrics to PATH (node_exporter's "
    "textfile collector format, e.g. DIR/mlctl-monitors.prom).",
)
@click.option(
    "--pushgateway",
    metavar="URL",
    help="Push every monitor's last result as Prometheus metrics to this Pushgateway "
    "(job mlctl_monitor, grouped by environment).",
)
@click.option(
    "--no-rollouts",
    is_flag=True,
    help="Do not step the declared rollouts (stepped by default when no MONITORS are named).",
)
@LOCK_TIMEOUT
@click.pass_context
def run(
    ctx: click.Context,
    env: str,
    monitors: tuple[str, ...],
    current: Path | None,
    report_dir: Path | None,
    as_json: bool,
    detailed_exitcode: bool,
    allow_local_state: bool,
    commit: bool,
    metrics_file: Path | None,
    pushgateway: str | None,
    no_rollouts: bool,
    lock_timeout: float,
) -> None:
    """Evaluate the monitors of ENV (all, or the MONITORS named) and carry out their actions;
    without MONITORS, also step every declared rollout (as `mlctl rollout step` does)."""
    from mlctl import operations
    from mlctl.errors import MlctlError
    from mlctl.monitor import report
    from mlctl.workspace import open_workspace

    if report_dir is not None:  # the HTML report's histograms: fail before anything runs
        from mlctl.extras import require

        require("matplotlib", "report")
    ws = open_workspace(repo_of(ctx), env)
    if current is not None and not current.is_absolute():
        current = Path.cwd() / current
    options = operations.MonitorOptions(
        monitors=monitors,
        current=current,
        allow_local_state=allow_local_state,
        commit=commit,
        lock_timeout=lock_timeout,
        metrics_file=metrics_file,
        pushgateway=pushgateway,
        rollouts=not no_rollouts,
    )
    result = operations.monitor(ws, options)
    click.echo(report.render_json(result) if as_json else report.render_text(result))
    if report_dir is not None:
        paths = report.write_reports(result, report_dir)
        click.echo("Reports: " + ", ".join(str(p) for p in paths), err=True)
    for export in result.exports:
        if export.ok:
            click.echo(f"Metrics: {export.detail}", err=True)
    if result.diagnostics:
        raise MlctlError("\n".join(str(d) for d in result.diagnostics))
    if detailed_exitcode and result.fired:
        sys.exit(2)


@command.command("report")
@ENV
@click.option(
    "--history",
    is_flag=True,
    help="The panels of the Grafana dashboards over time, from the monitor runs kept in state.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where to write the page (default: monitor-history-ENV.html).",
)
@click.pass_context
def report_command(ctx: click.Context, env: str, history: bool, out: Path | None) -> None:
    """Write one self-contained HTML page of ENV's monitor results over time (--history)."""
    from mlctl.errors import MlctlError
    from mlctl.extras import require
    from mlctl.workspace import open_workspace

    if not history:
        raise MlctlError(
            "monitor report needs --history (the report of one run: mlctl monitor run --report DIR)"
        )
    require("matplotlib", "report")  # the page's charts: fail before reading anything
    from mlctl.monitor.history_report import render_history_html

    ws = open_workspace(repo_of(ctx), env)
    state = ws.backend.read()
    if state is None:
        raise MlctlError(f"environment '{env}' has no state yet: run mlctl apply -e {env} first")
    out = out or Path(f"monitor-history-{env}.html")
    page = render_history_html(env, ws.spec.config, state)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    runs = sum(len(record.history) for record in state.monitors.values())
    click.echo(f"Wrote {out} ({runs} monitor runs).")


@command.command("triggers")
@ENV
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def triggers(ctx: click.Context, env: str, as_json: bool) -> None:
    """Retraining triggers recorded in state, with their status (pending, trained, cleared)."""
    from mlctl.cli.output import echo_json
    from mlctl.plan.triggers import due_triggers, trigger_status
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo_of(ctx), env)
    state = ws.backend.read()
    rows = []
    for model, registry in sorted((state.models if state else {}).items()):
        for trigger in registry.triggers:
            rows.append(
                {
                    "model": model,
                    **trigger.model_dump(mode="json"),
                    "status": trigger_status(trigger, registry),
                }
            )
        spec_model = ws.spec.config.models.get(model)
        if spec_model is not None:
            for due in due_triggers(spec_model, registry):
                if not due.stored:
                    rows.append(
                        {
                            "model": model,
                            "id": due.id,
                            "kind": due.kind,
                            "reason": due.reason,
                            "status": "due",
                        }
                    )
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"No retraining triggers in {env}.")
        return
    for row in rows:
        version = f" -> v{row['trained_version']}" if row.get("trained_version") else ""
        click.echo(f"{row['model']}  {row['status']:<8} {row['id']}{version}\n    {row['reason']}")
