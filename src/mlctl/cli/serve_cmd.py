"""``mlctl serve MODEL -e ENV``: run the serving app under uvicorn (it follows the state).

Light at import: uvicorn, FastAPI and scikit-learn are imported only when the command runs.
Refuses (exit 1, one line) to bind anything but a loopback address (127.0.0.0/8, ::1,
``localhost``) without a token in ``MLCTL_SERVE_TOKEN``, unless ``--insecure`` says the open
endpoint is intended. With ``--workers N`` (N > 1) metrics run in Prometheus multiprocess
mode: ``PROMETHEUS_MULTIPROC_DIR`` (default ``$TMPDIR/mlctl-metrics-<port>``) is emptied of
its ``*.db`` files at start, so one scrape shows the sum over the workers.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import tempfile
from pathlib import Path

import click

from mlctl.cli.options import env_option, repo_of
from mlctl.errors import MlctlError


def run(
    repo: Path,
    env: str,
    model: str,
    *,
    stage: str,
    host: str,
    port: int,
    workers: int,
    log_predictions: bool,
    max_body_bytes: int,
    log_level: str,
    insecure: bool = False,
    log_flush_seconds: float | None = None,
) -> None:
    """Check the environment and the bind, then serve until interrupted."""
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)  # a bad environment or model fails here, in one line
    if model not in ws.spec.config.models:
        from mlctl.spec.names import not_defined

        raise not_defined("model", model, env, ws.spec.config.models)
    if workers < 1:
        raise MlctlError("--workers must be at least 1")
    if not is_loopback(host) and not os.environ.get("MLCTL_SERVE_TOKEN") and not insecure:
        raise MlctlError(
            f"refusing to serve on {host} without a token: anyone who reaches it could call the model; "
            "set MLCTL_SERVE_TOKEN (clients send 'Authorization: Bearer <token>') or pass --insecure"
        )
    import uvicorn

    settings = {
        "MLCTL_SERVE_REPO": str(ws.repo),
        "MLCTL_SERVE_ENV": env,
        "MLCTL_SERVE_MODEL": model,
        "MLCTL_SERVE_STAGE": stage,
        "MLCTL_SERVE_LOG_PREDICTIONS": "1" if log_predictions else "0",
        "MLCTL_SERVE_MAX_BODY_BYTES": str(max_body_bytes),
        "MLCTL_SERVE_HOST": host,
        "MLCTL_SERVE_PORT": str(port),
    }
    if log_flush_seconds is not None:
        settings["MLCTL_SERVE_LOG_FLUSH_SECONDS"] = str(log_flush_seconds)
    if workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        settings["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(port))
    os.environ.update(settings)
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,  # per-request logging costs more than the prediction; see /metrics
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        pass
    _check_port(host, port)
    click.echo(
        f"serving {model} ({stage}) of {env} on http://{host}:{port} with {workers} worker(s); "
        "following the state (Ctrl+C to stop)",
        err=True,
    )
    if workers > 1:
        uvicorn.run("mlctl.serving.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    else:
        from mlctl.serving.app import app_from_env

        uvicorn.run(app_from_env(), **options)  # type: ignore[arg-type]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: addresses only this machine reaches."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def metrics_dir(port: int) -> Path:
    """The Prometheus multiprocess directory (``PROMETHEUS_MULTIPROC_DIR`` or one under the
    temp directory), created, and emptied of the ``*.db`` files a previous run left."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(given) if given else Path(tempfile.gettempdir()) / f"mlctl-metrics-{port}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    except OSError as exc:
        raise MlctlError(f"cannot prepare the metrics directory {directory}: {exc.strerror}") from None
    return directory


def _check_port(host: str, port: int) -> None:
    """MlctlError when ``host:port`` cannot be bound (in use, or not an address of this host),
    instead of uvicorn's start-up failure (exit 3, several log lines)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MlctlError(f"cannot serve on {host}:{port}: {exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise MlctlError(f"cannot serve on {host}:{port}: {reason}") from None


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
    )
