"""``mlctl serve MODEL -e ENV``: parse the options and call :func:`mlctl.serving.server.run`
(its contract says what is refused before anything listens).

Light at import: uvicorn, FastAPI and scikit-learn are imported only when the command runs.
"""

from __future__ import annotations

import click

from mlctl.cli.options import env_option, repo_of


@click.command("serve")
@click.argument("model")
@env_option(help="Environment (environments/ENV).")
@click.option(
    "--stage",
    type=click.Choice(["production", "staging"]),
    default="production",
    show_default=True,
    help="Stage to serve (followed live).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to bind.")
@click.option(
    "--workers", type=click.IntRange(1, 256), default=1, show_default=True, help="Worker processes."
)
@click.option("--no-prediction-log", is_flag=True, help="Do not write the prediction log.")
@click.option(
    "--log-flush-seconds",
    type=click.FloatRange(0.01, 3600),
    default=None,
    help="Ship the prediction log this often (one object per flush; default 2).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve a non-loopback address without MLCTL_SERVE_TOKEN (an open endpoint).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1024),
    default=4 << 20,
    show_default=True,
    help="Largest request body accepted (413 above).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.pass_context
def command(
    ctx: click.Context,
    model: str,
    env: str,
    stage: str,
    host: str,
    port: int,
    workers: int,
    no_prediction_log: bool,
    log_flush_seconds: float | None,
    insecure: bool,
    max_body_bytes: int,
    log_level: str,
) -> None:
    """Serve MODEL's STAGE version over HTTP; swaps versions live as the state moves.

    Set MLCTL_SERVE_TOKEN to require `Authorization: Bearer <token>`; a non-loopback --host
    needs it (or --insecure).
    """
    from mlctl.serving.server import run

    run(
        repo_of(ctx),
        env,
        model,
        stage=stage,
        host=host,
        port=port,
        workers=workers,
        log_predictions=not no_prediction_log,
        max_body_bytes=max_body_bytes,
        log_level=log_level,
        insecure=insecure,
        log_flush_seconds=log_flush_seconds,
        announce=lambda line: click.echo(line, err=True),
    )
